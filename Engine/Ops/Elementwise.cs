// The common pointwise ops by name, as thin calls into the pointwise family (Ops.Map; the
// structs and their gradient rules are in Engine/Ops/Pointwise/Builtins.cs). A tensor used on
// both sides (x + x) receives both contributions, summed by the engine.
using ResidualEngine.Pointwise;

namespace ResidualEngine;

public static partial class Ops
{
    public static Tensor Add(Tensor a, Tensor b) => Map<Pointwise.Add>(a, b);
    public static Tensor Sub(Tensor a, Tensor b) => Map<Pointwise.Sub>(a, b);
    public static Tensor Mul(Tensor a, Tensor b) => Map<Pointwise.Mul>(a, b);

    /// <summary>y = alpha * x.</summary>
    public static Tensor Scale(Tensor x, double alpha) => Map<Pointwise.Scale>(x, alpha);

    public static Tensor Relu(Tensor x) => Map<Pointwise.Relu>(x);

    /// <summary>relu(a + b): the end of a residual block in one pass.</summary>
    public static Tensor AddRelu(Tensor a, Tensor b) => Map<Pointwise.AddRelu>(a, b);

    public static Tensor Sigmoid(Tensor x) => Map<Pointwise.Sigmoid>(x);

    /// <summary>Viewing x as (M, inner) with M = s.Numel: y[m, :] = x[m, :] * s[m]. Used for
    /// squeeze-and-excitation gates (s: N x C or (N, C, 1, 1)) and drop-path (s: N).</summary>
    public static Tensor ScaleRows(Tensor x, Tensor s)
    {
        Check.Float("ScaleRows", x, "x");
        Check.Float("ScaleRows", s, "s");
        if (s.Numel == 0 || x.Numel % s.Numel != 0 || !LeadingDimsMatch(x.Shape, s.Shape))
            throw new ArgumentException($"ScaleRows: scale of shape {s.Shape} does not match the leading dimensions of x {x.Shape}");
        if (!x.IsLogicallyOrdered && s.Numel != x.Shape[0])
        {
            // Per-(n, c) gates on channels-last x: element (n, h, w, c) uses s[n * C + c], which no (Inner, Period)
            // broadcast describes. Go through NCHW (correct first: SE blocks on channels-last pay two transposes).
            using var nchw = Contiguous(x);
            using var scaled = ScaleRows(nchw, s);
            return Contiguous(scaled, x.Format);
        }
        return Map<Pointwise.Mul>(x, s, Broadcast.Rows(x, s.Numel));
    }

    private static bool LeadingDimsMatch(Shape x, Shape s)
    {
        // s may be (N), (N, C) or (N, C, 1, 1): its non-unit leading dims must equal x's.
        for (int i = 0; i < s.Rank; i++)
        {
            if (i >= x.Rank) return s[i] == 1;
            if (s[i] != x[i]) return s[i] == 1 && AllOnes(s, i);
        }
        return true;
    }

    private static bool AllOnes(Shape s, int from)
    {
        for (int i = from; i < s.Rank; i++) if (s[i] != 1) return false;
        return true;
    }

    /// <summary>a += b, outside autograd (the engine's gradient accumulation).</summary>
    internal static void AddInPlace(Tensor a, Tensor b) => a.Backend.Map<Pointwise.Add>(a, a, b, Broadcast.Same(a), 0, 0);

    /// <summary>a + b in a new tensor, outside autograd.</summary>
    internal static Tensor AddNoGrad(Tensor a, Tensor b)
    {
        var y = NewLike(a);
        a.Backend.Map<Pointwise.Add>(y, a, b, Broadcast.Same(a), 0, 0);
        return y;
    }
}
