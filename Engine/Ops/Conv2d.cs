// 2-d convolution (cross-correlation, as PyTorch), NCHW or channels-last (x, weight and y share one
// format), in any float dtype (BF16/F16 stored, F32 accumulation), with stride, padding, dilation,
// groups and an optional bias. Under Autocast, x, weight and bias are cast to the autocast dtype first. Gradient rule, with y = conv(x, w) + b:
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
        if (Autocast.Active(x, weight, bias) is { } cast)
        {
            using var cx = cast.Input(x);
            var cw = cast.Weight(weight);
            var cb = bias is null ? null : cast.Weight(bias);
            return Conv2d(cx, cw, cb, p);
        }
        var (n, k, outH, outW) = CheckConv2d(x, weight, bias, p);
        var y = NewLike(x, new Shape(n, k, outH, outW), x.Format);
        x.Backend.ConvForward(y, x, weight, bias, p);
        if (GradMode.ShouldRecord(x, weight, bias)) y.GradFn = new Conv2dNode(x, weight, bias, p);
        return y;
    }

    public static Tensor Conv2d(Tensor x, Tensor weight, Tensor? bias = null, int stride = 1, int padding = 0, int dilation = 1, int groups = 1) =>
        Conv2d(x, weight, bias, Conv2dParams.Of(stride, padding, dilation, groups));

    /// <summary>Validates a convolution's tensors (the geometry is Conv2dParams.OutputShape's) and returns the output shape (N, K, P, Q).</summary>
    private static (int N, int K, int P, int Q) CheckConv2d(Tensor x, Tensor weight, Tensor? bias, Conv2dParams p)
    {
        const string op = "Conv2d";
        Check.Float(op, x, "x");
        Check.Float(op, weight, "weight");
        Check.Rank(op, x, "x", 4);
        Check.Rank(op, weight, "weight", 4);
        Check.SameDevice(op, x, "x", weight, "weight");
        Check.SameDType(op, x, "x", weight, "weight");
        Check.SameFormat(op, x, "x", weight, "weight");
        var y = p.OutputShape(x.Shape, weight.Shape, op);
        int k = y[1];
        if (bias is not null)
        {
            Check.Float(op, bias, "bias");
            Check.SameDevice(op, x, "x", bias, "bias");
            Check.SameDType(op, x, "x", bias, "bias");
            if (bias.Rank != 1 || bias.Shape[0] != k)
                throw new ArgumentException($"{op}: bias must have shape ({k}) for {k} output channels, got {bias.Shape}");
        }
        return (y[0], y[1], y[2], y[3]);
    }

    private sealed class Conv2dNode : Node
    {
        private readonly Tensor _x; // (N, C, H, W), in x's format
        private readonly Tensor _w; // (K, C/groups, R, S), in x's format
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
