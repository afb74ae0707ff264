// Option-A shortcut of He et al. (CIFAR): stride-s subsampling plus zero channel padding,
// parameter-free. Gradient rule: dX[n, c, h, w] = dY[n, pad + c, h / s, w / s] where h and w are
// multiples of s, else 0 (a gather of dY's middle channels; the zero channels get no gradient).
// NCHW or channels-last (y and dX keep x's format), any float type.
using ResidualEngine.Autograd;

namespace ResidualEngine;

public static partial class Ops
{
    /// <summary>x (N, C, H, W) -> (N, outChannels, ceil(H/stride), ceil(W/stride)); x's channels sit in the middle
    /// ((outChannels - C) / 2 zero channels before them), as the reference CIFAR implementation pads.</summary>
    public static Tensor ShortcutA(Tensor x, int outChannels, int stride)
    {
        const string op = "ShortcutA";
        Check.Float(op, x, "x");
        Check.Rank(op, x, "x", 4);
        Check.Positive(op, stride, "stride");
        int c = x.Shape[1];
        if (outChannels < c)
            throw new ArgumentException($"{op}: outChannels ({outChannels}) must be at least the input's {c} channels");
        if ((outChannels - c) % 2 != 0)
            throw new ArgumentException($"{op}: outChannels - C must be even to pad both sides equally, got {outChannels} - {c}");
        int pad = (outChannels - c) / 2;
        int h = x.Shape[2], w = x.Shape[3];
        var y = NewLike(x, new Shape(x.Shape[0], outChannels, (h + stride - 1) / stride, (w + stride - 1) / stride), x.Format);
        x.Backend.ShortcutAForward(y, x, stride, pad);
        if (GradMode.ShouldRecord(x)) y.GradFn = new ShortcutANode(x, stride, pad);
        return y;
    }

    private sealed class ShortcutANode(Tensor x, int stride, int pad) : Node(x)
    {
        private readonly Shape _xShape = x.Shape;
        private readonly MemoryFormat _format = x.Format;
        public override string Name => "ShortcutA";

        protected internal override Tensor?[] Backward(Tensor dY)
        {
            var dx = NewLike(dY, _xShape, _format);
            dY.Backend.ShortcutABackward(dx, dY, stride, pad);
            return [dx];
        }
    }
}
