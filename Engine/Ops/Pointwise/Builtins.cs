// The engine's own pointwise ops (the family is described in PointwiseOp.cs; each has a line in
// Kernels/pointwise.cu). Gradient rules, written with forward ops:
//   add: (dY, dY)   sub: (dY, -dY)   mul: (dY*b, dY*a)   axpby = alpha*a + beta*b: (alpha dY, beta dY)
//   scale = alpha*x: alpha dY        relu: relu_backward(dY, y)   add_relu: relu_backward(dY, y) for both
//   sigmoid: sigmoid_backward(dY, y) mul_add = a*b + c: (dY*b, dY*a, dY)
// The *_backward ops and expand exist for gradients and have no gradient of their own.
using System.Numerics;
using System.Numerics.Tensors;

namespace ResidualEngine.Pointwise;

public readonly struct Add : IBinaryOp
{
    public static Saves Saves => Saves.None;
    public static T Apply<T>(T a, T b, T alpha, T beta) where T : unmanaged, IFloatingPointIeee754<T> => a + b;
    public static bool Apply<T>(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> y, T alpha, T beta) where T : unmanaged, IFloatingPointIeee754<T>
    {
        TensorPrimitives.Add(a, b, y);
        return true;
    }
    public static (Tensor? DA, Tensor? DB) Gradient(in BinaryGradient g) =>
        (g.NeedA ? g.DY.Detach() : null, g.NeedB ? g.DY.Detach() : null);
}

public readonly struct Sub : IBinaryOp
{
    public static Saves Saves => Saves.None;
    public static T Apply<T>(T a, T b, T alpha, T beta) where T : unmanaged, IFloatingPointIeee754<T> => a - b;
    public static bool Apply<T>(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> y, T alpha, T beta) where T : unmanaged, IFloatingPointIeee754<T>
    {
        TensorPrimitives.Subtract(a, b, y);
        return true;
    }
    public static (Tensor? DA, Tensor? DB) Gradient(in BinaryGradient g) =>
        (g.NeedA ? g.DY.Detach() : null, g.NeedB ? Ops.Map<Scale>(g.DY, -1.0) : null);
}

public readonly struct Mul : IBinaryOp
{
    public static Saves Saves => Saves.A | Saves.B;
    public static T Apply<T>(T a, T b, T alpha, T beta) where T : unmanaged, IFloatingPointIeee754<T> => a * b;
    public static bool Apply<T>(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> y, T alpha, T beta) where T : unmanaged, IFloatingPointIeee754<T>
    {
        TensorPrimitives.Multiply(a, b, y);
        return true;
    }
    public static (Tensor? DA, Tensor? DB) Gradient(in BinaryGradient g) =>
        (g.NeedA ? Ops.Map<Mul>(g.DY, g.B!, g.Broadcast) : null, g.NeedB ? Ops.Map<Mul>(g.DY, g.A!) : null);
}

/// <summary>alpha * a + beta * b.</summary>
public readonly struct Axpby : IBinaryOp
{
    public static Saves Saves => Saves.None;
    public static T Apply<T>(T a, T b, T alpha, T beta) where T : unmanaged, IFloatingPointIeee754<T> => alpha * a + beta * b;
    public static bool Apply<T>(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> y, T alpha, T beta) where T : unmanaged, IFloatingPointIeee754<T>
    {
        // y may alias a or b: scale b into y first only when y is not a.
        if (y.Overlaps(a) && y.Overlaps(b)) return false; // all three alike: the scalar loop is exact
        if (y.Overlaps(a))
        {
            TensorPrimitives.Multiply(a, alpha, y);
            TensorPrimitives.MultiplyAdd(b, beta, y, y);
        }
        else
        {
            TensorPrimitives.Multiply(b, beta, y);
            TensorPrimitives.MultiplyAdd(a, alpha, y, y);
        }
        return true;
    }
    public static (Tensor? DA, Tensor? DB) Gradient(in BinaryGradient g) =>
        (g.NeedA ? Ops.Map<Scale>(g.DY, g.Alpha) : null, g.NeedB ? Ops.Map<Scale>(g.DY, g.Beta) : null);
}

/// <summary>alpha * x.</summary>
public readonly struct Scale : IUnaryOp
{
    public static Saves Saves => Saves.None;
    public static T Apply<T>(T x, T alpha, T beta) where T : unmanaged, IFloatingPointIeee754<T> => alpha * x;
    public static bool Apply<T>(ReadOnlySpan<T> x, Span<T> y, T alpha, T beta) where T : unmanaged, IFloatingPointIeee754<T>
    {
        TensorPrimitives.Multiply(x, alpha, y);
        return true;
    }
    public static Tensor Gradient(in UnaryGradient g) => Ops.Map<Scale>(g.DY, g.Alpha);
}

/// <summary>max(x, 0), NaN propagating (as PyTorch).</summary>
public readonly struct Relu : IUnaryOp
{
    public static Saves Saves => Saves.Output;
    public static T Apply<T>(T x, T alpha, T beta) where T : unmanaged, IFloatingPointIeee754<T> => x > T.Zero || T.IsNaN(x) ? x : T.Zero;
    public static bool Apply<T>(ReadOnlySpan<T> x, Span<T> y, T alpha, T beta) where T : unmanaged, IFloatingPointIeee754<T>
    {
        TensorPrimitives.Max(x, T.Zero, y);
        return true;
    }
    public static Tensor Gradient(in UnaryGradient g) => Ops.Map<ReluBackward>(g.DY, g.Y!);
}

/// <summary>relu(a + b): the residual sum and the block's last ReLU in one pass.</summary>
public readonly struct AddRelu : IBinaryOp
{
    public static Saves Saves => Saves.Output;
    public static T Apply<T>(T a, T b, T alpha, T beta) where T : unmanaged, IFloatingPointIeee754<T> => Relu.Apply(a + b, alpha, beta);
    public static bool Apply<T>(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> y, T alpha, T beta) where T : unmanaged, IFloatingPointIeee754<T>
    {
        TensorPrimitives.Add(a, b, y);
        TensorPrimitives.Max(y, T.Zero, y);
        return true;
    }
    public static (Tensor? DA, Tensor? DB) Gradient(in BinaryGradient g)
    {
        // Both summands receive the same gradient: one buffer, two handles.
        var d = Ops.Map<ReluBackward>(g.DY, g.Y!);
        return (g.NeedA ? d : null, g.NeedB ? (g.NeedA ? d.Detach() : d) : null);
    }
}

/// <summary>dX = dY where y &gt; 0, else 0 (a = dY, b = y).</summary>
public readonly struct ReluBackward : IBinaryOp
{
    public static Saves Saves => Saves.None;
    public static T Apply<T>(T dy, T y, T alpha, T beta) where T : unmanaged, IFloatingPointIeee754<T> => y > T.Zero ? dy : T.Zero;
    public static bool Apply<T>(ReadOnlySpan<T> dy, ReadOnlySpan<T> y, Span<T> dx, T alpha, T beta) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int i = 0, w = Vector<T>.Count;
        if (Vector.IsHardwareAccelerated)
            for (; i <= dx.Length - w; i += w)
            {
                var mask = Vector.GreaterThan(new Vector<T>(y.Slice(i, w)), Vector<T>.Zero);
                Vector.ConditionalSelect(mask, new Vector<T>(dy.Slice(i, w)), Vector<T>.Zero).CopyTo(dx.Slice(i, w));
            }
        for (; i < dx.Length; i++) dx[i] = y[i] > T.Zero ? dy[i] : T.Zero;
        return true;
    }
}

/// <summary>1 / (1 + exp(-x)).</summary>
public readonly struct Sigmoid : IUnaryOp
{
    public static Saves Saves => Saves.Output;
    public static T Apply<T>(T x, T alpha, T beta) where T : unmanaged, IFloatingPointIeee754<T> => T.One / (T.One + T.Exp(-x));
    public static bool Apply<T>(ReadOnlySpan<T> x, Span<T> y, T alpha, T beta) where T : unmanaged, IFloatingPointIeee754<T>
    {
        TensorPrimitives.Sigmoid(x, y);
        return true;
    }
    public static Tensor Gradient(in UnaryGradient g) => Ops.Map<SigmoidBackward>(g.DY, g.Y!);
}

/// <summary>dX = dY * y * (1 - y) (a = dY, b = y).</summary>
public readonly struct SigmoidBackward : IBinaryOp
{
    public static Saves Saves => Saves.None;
    public static T Apply<T>(T dy, T y, T alpha, T beta) where T : unmanaged, IFloatingPointIeee754<T> => dy * y * (T.One - y);
}

/// <summary>a * b + c.</summary>
public readonly struct MulAdd : ITernaryOp
{
    public static Saves Saves => Saves.A | Saves.B;
    public static T Apply<T>(T a, T b, T c, T alpha, T beta) where T : unmanaged, IFloatingPointIeee754<T> => a * b + c;
    public static (Tensor? DA, Tensor? DB, Tensor? DC) Gradient(in TernaryGradient g) =>
        (g.NeedA ? Ops.Map<Mul>(g.DY, g.B!) : null, g.NeedB ? Ops.Map<Mul>(g.DY, g.A!) : null, g.NeedC ? g.DY.Detach() : null);
}

/// <summary>y = b, broadcast to a's shape (a's values are ignored): the gradient of a sum.</summary>
public readonly struct Expand : IBinaryOp
{
    public static Saves Saves => Saves.None;
    public static T Apply<T>(T a, T b, T alpha, T beta) where T : unmanaged, IFloatingPointIeee754<T> => b;
}
