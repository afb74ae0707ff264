// Sum and mean of all elements. Gradient rule: every element receives dY (times 1/n for mean).
using ResidualEngine.Autograd;

namespace ResidualEngine;

public static partial class Ops
{
    /// <summary>Sum of all elements, as a one-element tensor of shape ().</summary>
    public static Tensor Sum(Tensor x)
    {
        Check.Float("Sum", x, "x");
        var y = NewLike(x, Shape.Scalar);
        x.Backend.Sum(y, x);
        if (GradMode.ShouldRecord(x)) y.GradFn = new SumNode(x, 1.0);
        return y;
    }

    public static Tensor Mean(Tensor x)
    {
        Check.Float("Mean", x, "x");
        if (x.Numel == 0) throw new ArgumentException("Mean: x has no elements");
        var y = NewLike(x, Shape.Scalar);
        x.Backend.Sum(y, x);
        double scale = 1.0 / x.Numel;
        y.Backend.Axpby(y, scale, y, 0);
        if (GradMode.ShouldRecord(x)) y.GradFn = new SumNode(x, scale);
        return y;
    }

    private sealed class SumNode(Tensor x, double scale) : Node(x)
    {
        private readonly Shape _shape = x.Shape;
        public override string Name => "Sum";
        protected internal override Tensor?[] Backward(Tensor dY)
        {
            // dX = scale * dY broadcast: fill with ones, then scale by the (device-side) dY.
            var dx = Tensor.Full(_shape, scale, dY.DType, dY.Device);
            using var flat = dx.View(new Shape(1, (int)dx.Numel));
            dY.Backend.ScaleRowsForward(flat, flat, dY);
            return [dx];
        }
    }
}
