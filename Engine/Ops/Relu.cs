// ReLU and the fused residual sum + ReLU. Gradient rule: dX = dY where y > 0 (the output is
// saved, not the input, so relu can run in place later). AddRelu: both inputs get that dX.
using ResidualEngine.Autograd;

namespace ResidualEngine;

public static partial class Ops
{
    public static Tensor Relu(Tensor x)
    {
        Check.Float("Relu", x, "x");
        var y = NewLike(x);
        x.Backend.ReluForward(y, x);
        if (GradMode.ShouldRecord(x)) y.GradFn = new ReluNode(x, y);
        return y;
    }

    /// <summary>relu(a + b): the end of a residual block in one pass.</summary>
    public static Tensor AddRelu(Tensor a, Tensor b)
    {
        Check.Compatible("AddRelu", a, "a", b, "b");
        var y = NewLike(a);
        a.Backend.AddRelu(y, a, b);
        if (GradMode.ShouldRecord(a, b)) y.GradFn = new ReluNode(a, b, y);
        return y;
    }

    private sealed class ReluNode : Node
    {
        private readonly Tensor _y; // output, same shape as inputs
        public ReluNode(Tensor x, Tensor y) : base(x) => _y = Save(y);
        public ReluNode(Tensor a, Tensor b, Tensor y) : base(a, b) => _y = Save(y);
        public override string Name => InputCount == 1 ? "Relu" : "AddRelu";
        protected internal override Tensor?[] Backward(Tensor dY)
        {
            var dx = NewLike(dY);
            dY.Backend.ReluBackward(dx, dY, _y);
            if (InputCount == 1) return [dx];
            // Both summands receive the same gradient: one buffer, two handles (the engine never
            // accumulates into a buffer that another handle still sees).
            return [dx, NeedsGrad(1) ? dx.Detach() : null];
        }
    }
}
