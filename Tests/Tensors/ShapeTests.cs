using NUnit.Framework;

namespace ResidualEngine.Tests.Tensors;

public class ShapeTests
{
    [Test]
    public void NegativeDimensionIsRejectedWithItsIndex()
    {
        var e = Assert.Throws<ArgumentException>(() => _ = new Shape(2, -3));
        Assert.That(e!.Message, Does.Contain("dimension 1 is negative"));
    }

    [Test]
    public void OverflowingElementCountIsRejected()
    {
        var e = Assert.Throws<ArgumentException>(() => _ = new Shape(int.MaxValue, int.MaxValue, int.MaxValue));
        Assert.That(e!.Message, Does.Contain("overflows"));
    }

    [Test]
    public void RankMismatchIsNamed()
    {
        var e = Assert.Throws<ArgumentException>(() => new Shape(2, 3).RequireRank(4, "input"));
        Assert.That(e!.Message, Does.Contain("input must have rank 4"));
    }

    [Test]
    public void TooManyDimensionsAreRejected()
    {
        Assert.Throws<ArgumentException>(() => _ = new Shape(new int[9]));
    }

    [Test]
    public void EqualityAndNumel()
    {
        var a = new Shape(2, 3, 4);
        Assert.That(a, Is.EqualTo(new Shape(new[] { 2, 3, 4 })));
        Assert.That(new Shape(2, 3, 4).Numel, Is.EqualTo(24));
        Assert.That(Shape.Scalar.Numel, Is.EqualTo(1));
        Assert.That(new Shape(2, 3).ToString(), Is.EqualTo("(2, 3)"));
    }

    [Test]
    public void TensorRoundTripsAndCastsAcrossDtypes()
    {
        using var scope = TensorScope.Begin();
        var t = Tensor.FromArray(new float[] { 1.5f, -2.25f, 3 }, 3);
        Assert.That(t.To(DType.F64).ToArray<double>(), Is.EqualTo(new double[] { 1.5, -2.25, 3 }));
        Assert.That(t.To(DType.F16).ToDoubles(), Is.EqualTo(new double[] { 1.5, -2.25, 3 }));
        Assert.That(t.To(DType.BF16).ToDoubles(), Is.EqualTo(new double[] { 1.5, -2.25, 3 }));
        Assert.That(t.To(DType.I64).ToArray<long>(), Is.EqualTo(new long[] { 1, -2, 3 }));
        Assert.Throws<InvalidOperationException>(() => t.ToArray<double>());
        Assert.Throws<ArgumentException>(() => Tensor.FromArray(new float[] { 1, 2 }, 3));
    }

    [Test]
    public void OnlyFloatLeavesCanRequireGrad()
    {
        using var scope = TensorScope.Begin();
        var t = Tensor.Zeros(new Shape(2), DType.I64);
        Assert.Throws<InvalidOperationException>(() => t.RequiresGrad = true);
    }
}
