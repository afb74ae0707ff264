// Sum and mean of all elements: SumTo with one target. Gradient rule: every element receives dY
// (times 1/n for the mean).
using ResidualEngine.Pointwise;

namespace ResidualEngine;

public static partial class Ops
{
    /// <summary>Sum of all elements, as a one-element tensor of shape ().</summary>
    public static Tensor Sum(Tensor x)
    {
        Check.Float("Sum", x, "x");
        return SumTo(x, Broadcast.All(x), Shape.Scalar);
    }

    public static Tensor Mean(Tensor x)
    {
        Check.Float("Mean", x, "x");
        if (x.Numel == 0) throw new ArgumentException("Mean: x has no elements");
        using var s = Sum(x);
        return Scale(s, 1.0 / x.Numel);
    }
}
