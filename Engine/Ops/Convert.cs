// Differentiable conversions: memory format (Contiguous, as torch's x.contiguous(memory_format=...))
// and dtype (Cast, as x.to(dtype)). Gradient rules: dX = dY converted back (to x's memory format;
// to x's dtype, rounded to nearest even when that is a 16-bit type). Both return a new handle the
// caller owns; when nothing changes it is an alias of x (same data, same history).
using ResidualEngine.Autograd;

namespace ResidualEngine;

public static partial class Ops
{
    /// <summary>x stored in <paramref name="format"/>: NCHW (MemoryFormat.Contiguous) or channels-last (4-d only).</summary>
    public static Tensor Contiguous(Tensor x, MemoryFormat format = MemoryFormat.Contiguous)
    {
        Check.NotDisposed("Contiguous", x, "x");
        if (x.Format == format) return x.Alias();
        if (format == MemoryFormat.ChannelsLast && x.Rank != 4)
            throw new ArgumentException($"Contiguous: channels-last needs a 4-d tensor (N, C, H, W), got {x.Describe()}");
        var y = x.To(format);
        if (GradMode.ShouldRecord(x)) y.GradFn = new FormatNode(x);
        return y;
    }

    /// <summary>x converted to <paramref name="dtype"/> (float types; into BF16/F16 with round to nearest even).</summary>
    public static Tensor Cast(Tensor x, DType dtype)
    {
        Check.NotDisposed("Cast", x, "x");
        if (x.DType == dtype) return x.Alias();
        var y = x.To(dtype);
        if (GradMode.ShouldRecord(x))
        {
            if (!dtype.IsFloat())
            {
                y.Dispose();
                throw new ArgumentException($"Cast: {x.Describe()} requires a gradient, so it can only be cast to a floating-point type, not {dtype}");
            }
            y.GradFn = new CastNode(x);
        }
        return y;
    }

    private sealed class FormatNode(Tensor x) : Node(x)
    {
        private readonly MemoryFormat _format = x.Format;
        public override string Name => "Contiguous";
        protected internal override Tensor?[] Backward(Tensor dY) => [dY.Format == _format ? dY.Detach() : dY.To(_format)];
    }

    private sealed class CastNode(Tensor x) : Node(x)
    {
        private readonly DType _dtype = x.DType;
        public override string Name => "Cast";
        protected internal override Tensor?[] Backward(Tensor dY) => [dY.DType == _dtype ? dY.Detach() : dY.To(_dtype)];
    }
}
