// 2-d convolution (cross-correlation, as PyTorch), NCHW, with stride, padding, dilation, groups
// and an optional bias. Gradient rule, with y = conv(x, w) + b:
//   dX = ConvBackwardData(dY, w)   (the transposed convolution of dY)
//   dW = ConvBackwardFilter(dY, x) (dY correlated with x, summed over the batch)
//   dB = sum of dY over N, P, Q
// Each is computed only for the inputs that need a gradient.
using ResidualEngine.Autograd;
using ResidualEngine.Backends;

namespace ResidualEngine;

public static partial class Ops
{
    /// <summary>x (N, C, H, W), weight (K, C/groups, R, S), bias (K) or null -> (N, K, P, Q).</summary>
    public static Tensor Conv2d(Tensor x, Tensor weight, Tensor? bias, Conv2dParams p)
    {
        var (n, k, outH, outW) = CheckConv2d(x, weight, bias, p);
        var y = NewLike(x, new Shape(n, k, outH, outW));
        x.Backend.ConvForward(y, x, weight, bias, p);
        if (GradMode.ShouldRecord(x, weight, bias)) y.GradFn = new Conv2dNode(x, weight, bias, p);
        return y;
    }

    public static Tensor Conv2d(Tensor x, Tensor weight, Tensor? bias = null, int stride = 1, int padding = 0, int dilation = 1, int groups = 1) =>
        Conv2d(x, weight, bias, Conv2dParams.Of(stride, padding, dilation, groups));

    /// <summary>Validates a convolution's arguments and returns the output shape (N, K, P, Q).</summary>
    private static (int N, int K, int P, int Q) CheckConv2d(Tensor x, Tensor weight, Tensor? bias, Conv2dParams p)
    {
        const string op = "Conv2d";
        Check.Float(op, x, "x");
        Check.Float(op, weight, "weight");
        Check.Rank(op, x, "x", 4);
        Check.Rank(op, weight, "weight", 4);
        Check.SameDevice(op, x, "x", weight, "weight");
        Check.SameDType(op, x, "x", weight, "weight");
        Check.Nchw(op, x, "x");
        Check.Nchw(op, weight, "weight");
        Check.Positive(op, p.StrideH, "stride (height)");
        Check.Positive(op, p.StrideW, "stride (width)");
        Check.Positive(op, p.DilationH, "dilation (height)");
        Check.Positive(op, p.DilationW, "dilation (width)");
        Check.NonNegative(op, p.PadH, "padding (height)");
        Check.NonNegative(op, p.PadW, "padding (width)");
        Check.Positive(op, p.Groups, "groups");
        int n = x.Shape[0], c = x.Shape[1], h = x.Shape[2], w = x.Shape[3];
        int k = weight.Shape[0], cw = weight.Shape[1], r = weight.Shape[2], s = weight.Shape[3];
        if (c % p.Groups != 0)
            throw new ArgumentException($"{op}: input channels ({c}) must be divisible by groups ({p.Groups})");
        if (k % p.Groups != 0)
            throw new ArgumentException($"{op}: output channels ({k}) must be divisible by groups ({p.Groups})");
        if (cw * p.Groups != c)
            throw new ArgumentException(
                $"{op}: weight has {cw} input channels per group, input has {c} channels in {p.Groups} group(s) (expected weight of shape ({k}, {c / p.Groups}, {r}, {s}))");
        if (r == 0 || s == 0)
            throw new ArgumentException($"{op}: weight {weight.Shape} has an empty dimension");
        long spanH = (long)p.DilationH * (r - 1) + 1, spanW = (long)p.DilationW * (s - 1) + 1;
        long paddedH = h + 2L * p.PadH, paddedW = w + 2L * p.PadW;
        if (spanH > paddedH || spanW > paddedW)
            throw new ArgumentException(
                $"{op}: kernel {r}x{s} (dilation {Dilation(p)}) is larger than the padded input {paddedH}x{paddedW}");
        if (bias is not null)
        {
            Check.Float(op, bias, "bias");
            Check.SameDevice(op, x, "x", bias, "bias");
            Check.SameDType(op, x, "x", bias, "bias");
            if (bias.Rank != 1 || bias.Shape[0] != k)
                throw new ArgumentException($"{op}: bias must have shape ({k}) for {k} output channels, got {bias.Shape}");
        }
        var (outH, outW) = p.OutputSize(h, w, r, s);
        return (n, k, outH, outW);
    }

    private static string Dilation(Conv2dParams p) => p.DilationH == p.DilationW ? $"{p.DilationH}" : $"{p.DilationH}x{p.DilationW}";

    private sealed class Conv2dNode : Node
    {
        private readonly Tensor _x; // (N, C, H, W)
        private readonly Tensor _w; // (K, C/groups, R, S)
        private readonly bool _hasBias;
        private readonly Conv2dParams _p;

        public Conv2dNode(Tensor x, Tensor w, Tensor? bias, Conv2dParams p) : base(x, w, bias)
        {
            _x = Save(x);
            _w = Save(w);
            _hasBias = bias is not null;
            _p = p;
        }

        public override string Name => "Conv2d";

        protected internal override Tensor?[] Backward(Tensor dY)
        {
            Tensor? dx = null, dw = null, db = null;
            var be = dY.Backend;
            if (NeedsGrad(0)) { dx = NewLike(_x); be.ConvBackwardData(dx, dY, _w, _p); }
            if (NeedsGrad(1)) { dw = NewLike(_w); be.ConvBackwardFilter(dw, dY, _x, _p); }
            if (_hasBias && NeedsGrad(2)) { db = Tensor.Empty(new Shape(_w.Shape[0]), dY.DType, dY.Device); be.SumTo(db, dY, Pointwise.Broadcast.Channels(dY)); }
            return [dx, dw, db];
        }
    }
}
