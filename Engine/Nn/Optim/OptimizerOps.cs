// Pointwise ops of the optimizers' update rules (AdamW, LARS) and of gradient clipping, so that
// those run on the parameters' device with no host round trip: each is one struct here and one
// line in Kernels/pointwise.cu. They have no gradient (they update state, outside autograd).
// Scalars that are never negative in use (eps, weight decay, the norms' squares) are taken by
// absolute value, so a denominator cannot vanish and a square root never sees a negative number.
using System.Numerics;

namespace ResidualEngine.Pointwise;

/// <summary>alpha * a + beta * b * b (Adam's second moment: v = beta2 v + (1 - beta2) g^2).</summary>
public readonly struct AxpbySquare : IBinaryOp
{
    public static Saves Saves => Saves.None;
    public static T Apply<T>(T a, T b, T alpha, T beta) where T : unmanaged, IFloatingPointIeee754<T> => alpha * a + beta * b * b;
}

/// <summary>max(a, b), NaN propagating (torch.maximum; AMSGrad's running maximum).</summary>
public readonly struct Maximum : IBinaryOp
{
    public static Saves Saves => Saves.None;
    public static T Apply<T>(T a, T b, T alpha, T beta) where T : unmanaged, IFloatingPointIeee754<T> => T.IsNaN(a) || a > b ? a : b;
}

/// <summary>a - alpha * b / (sqrt(|c|) + |beta|): Adam's step w -= step_size * m / (sqrt(v) + eps) with the bias corrections folded into alpha and beta.</summary>
public readonly struct AdamStep : ITernaryOp
{
    public static Saves Saves => Saves.None;
    public static T Apply<T>(T a, T b, T c, T alpha, T beta) where T : unmanaged, IFloatingPointIeee754<T> =>
        a - alpha * b / (T.Sqrt(T.Abs(c)) + T.Abs(beta));
}

/// <summary>
/// LARS's trust ratio from the squared norms a = |w|^2, b = |g|^2 and c = eps (all scalars):
/// alpha sqrt(a) / (sqrt(b) + |beta| sqrt(a) + |c|) with alpha = eta and beta = the weight decay; 1 when a or b is 0.
/// </summary>
public readonly struct LarsTrust : ITernaryOp
{
    public static Saves Saves => Saves.None;
    public static T Apply<T>(T a, T b, T c, T alpha, T beta) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (a == T.Zero || b == T.Zero) return T.One;
        T wn = T.Sqrt(T.Abs(a));
        return alpha * wn / (T.Sqrt(T.Abs(b)) + T.Abs(beta) * wn + T.Abs(c));
    }
}

/// <summary>min(1, alpha / (sqrt(|x|) + |beta|)) (NaN propagating) from the gradients' summed squares x: clip_grad_norm_'s clamped coefficient (alpha = max_norm, beta = 1e-6).</summary>
public readonly struct ClipCoef : IUnaryOp
{
    public static Saves Saves => Saves.None;
    public static T Apply<T>(T x, T alpha, T beta) where T : unmanaged, IFloatingPointIeee754<T>
    {
        T coef = alpha / (T.Sqrt(T.Abs(x)) + T.Abs(beta));
        return T.IsNaN(coef) || coef < T.One ? coef : T.One; // NaN propagates, as torch.clamp does

    }
}
