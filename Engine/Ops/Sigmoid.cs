// Logistic sigmoid (squeeze-and-excitation gates). Gradient rule: dX = dY * y * (1 - y).
using ResidualEngine.Autograd;

namespace ResidualEngine;

public static partial class Ops
{
    public static Tensor Sigmoid(Tensor x)
    {
        Check.Float("Sigmoid", x, "x");
        var y = NewLike(x);
        x.Backend.SigmoidForward(y, x);
        if (GradMode.ShouldRecord(x)) y.GradFn = new SigmoidNode(x, y);
        return y;
    }

    private sealed class SigmoidNode : Node
    {
        private readonly Tensor _y;
        public SigmoidNode(Tensor x, Tensor y) : base(x) => _y = Save(y);
        public override string Name => "Sigmoid";
        protected internal override Tensor?[] Backward(Tensor dY)
        {
            var dx = NewLike(dY);
            dY.Backend.SigmoidBackward(dx, dY, _y);
            return [dx];
        }
    }
}
