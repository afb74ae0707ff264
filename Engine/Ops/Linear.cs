// Fully connected layer: y = x W^T + b, with x (N, in), W (out, in), b (out), as torch.nn.Linear.
// Gradient rule: dX = dY W; dW = dY^T X; dB = sum of dY over the rows. Each only when needed.
// Any float dtype (BF16/F16 through cuBLAS's GemmEx with F32 compute); under Autocast, x, weight and
// bias are cast to the autocast dtype first.
using ResidualEngine.Autograd;

namespace ResidualEngine;

public static partial class Ops
{
    /// <summary>x (N, in), weight (out, in), bias (out) or null -> x W^T + b, (N, out).</summary>
    public static Tensor Linear(Tensor x, Tensor weight, Tensor? bias = null)
    {
        const string op = "Linear";
        if (Autocast.Active(x, weight, bias) is { } cast)
        {
            using var cx = cast.Input(x);
            return Linear(cx, cast.Weight(weight), bias is null ? null : cast.Weight(bias));
        }
        Check.Float(op, x, "x");
        Check.Float(op, weight, "weight");
        Check.Rank(op, x, "x", 2);
        Check.Rank(op, weight, "weight", 2);
        Check.SameDevice(op, x, "x", weight, "weight");
        Check.SameDType(op, x, "x", weight, "weight");
        int n = x.Shape[0], inF = x.Shape[1], outF = weight.Shape[0];
        if (weight.Shape[1] != inF)
            throw new ArgumentException($"{op}: weight {weight.Shape} expects {weight.Shape[1]} input features, x {x.Shape} has {inF}");
        if (bias is not null)
        {
            Check.Float(op, bias, "bias");
            Check.SameDevice(op, x, "x", bias, "bias");
            Check.SameDType(op, x, "x", bias, "bias");
            if (bias.Rank != 1 || bias.Shape[0] != outF)
                throw new ArgumentException($"{op}: bias must have shape ({outF}) for {outF} output features, got {bias.Shape}");
        }
        var y = NewLike(x, new Shape(n, outF));
        var be = x.Backend;
        be.Gemm(y, x, weight, transA: false, transB: true, alpha: 1, beta: 0);
        if (bias is not null) be.Map<Pointwise.Add>(y, y, bias, Pointwise.Broadcast.Columns(y), 0, 0);
        if (GradMode.ShouldRecord(x, weight, bias)) y.GradFn = new LinearNode(x, weight, bias);
        return y;
    }

    private sealed class LinearNode : Node
    {
        private readonly Tensor _x; // (N, in)
        private readonly Tensor _w; // (out, in)
        private readonly bool _hasBias;

        public LinearNode(Tensor x, Tensor w, Tensor? bias) : base(x, w, bias)
        {
            _x = Save(x);
            _w = Save(w);
            _hasBias = bias is not null;
        }

        public override string Name => "Linear";

        protected internal override Tensor?[] Backward(Tensor dY)
        {
            Tensor? dx = null, dw = null, db = null;
            var be = dY.Backend;
            if (NeedsGrad(0)) { dx = NewLike(_x); be.Gemm(dx, dY, _w, false, false, 1, 0); }
            if (NeedsGrad(1)) { dw = NewLike(_w); be.Gemm(dw, dY, _x, true, false, 1, 0); }
            if (_hasBias && NeedsGrad(2)) { db = Tensor.Empty(new Shape(_w.Shape[0]), dY.DType, dY.Device); be.SumTo(db, dY, Pointwise.Broadcast.Columns(dY)); }
            return [dx, dw, db];
        }
    }
}
