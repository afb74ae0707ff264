// Initialisation statistics (Kaiming fan_out for convs, PyTorch's uniform default for linear
// layers, BN constants) and shape/MAC tracing of single layers, checked against hand formulas.
using NUnit.Framework;
using ResidualEngine.Nn;

namespace ResidualEngine.Tests.Nn;

public class InitAndTraceTests
{
    private static (double Mean, double Std) Stats(double[] v)
    {
        double m = v.Average();
        return (m, Math.Sqrt(v.Select(x => (x - m) * (x - m)).Sum() / (v.Length - 1)));
    }

    [Test]
    public void ConvWeightsAreKaimingNormalFanOut()
    {
        using var scope = TensorScope.Begin();
        using var conv = new Conv2d(32, 64, 3, rng: new Random(5));
        var (mean, std) = Stats(conv.Weight.ToDoubles());
        double expected = Math.Sqrt(2.0 / (64 * 3 * 3)); // fan_out = K * R * S
        Assert.That(std, Is.EqualTo(expected).Within(expected * 0.03));
        Assert.That(mean, Is.EqualTo(0).Within(expected * 0.05));
        // Grouped convs use the same fan_out (PyTorch ignores groups there).
        using var grouped = new Conv2d(32, 64, 3, groups: 8, rng: new Random(5));
        Assert.That(grouped.Weight.Shape, Is.EqualTo(new Shape(64, 4, 3, 3)));
        Assert.That(Stats(grouped.Weight.ToDoubles()).Std, Is.EqualTo(expected).Within(expected * 0.06));
    }

    [Test]
    public void LinearAndConvBiasUsePyTorchsUniformDefault()
    {
        using var scope = TensorScope.Begin();
        using var fc = new Linear(400, 300, rng: new Random(2));
        double bound = 1 / Math.Sqrt(400);
        var w = fc.Weight.ToDoubles();
        Assert.That(w.Max(), Is.LessThanOrEqualTo(bound).And.GreaterThan(bound * 0.99));
        Assert.That(w.Min(), Is.GreaterThanOrEqualTo(-bound).And.LessThan(-bound * 0.99));
        Assert.That(Stats(w).Std, Is.EqualTo(bound / Math.Sqrt(3)).Within(bound * 0.02));
        var b = fc.Bias!.ToDoubles();
        Assert.That(b.All(x => Math.Abs(x) <= bound), Is.True);
        using var conv = new Conv2d(16, 8, 3, groups: 2, bias: true, rng: new Random(2));
        double cb = 1 / Math.Sqrt(8 * 9); // fan_in = C/groups * R * S
        Assert.That(conv.Bias!.ToDoubles().All(x => Math.Abs(x) <= cb), Is.True);
        Assert.That(conv.Bias!.ToDoubles().Max(x => Math.Abs(x)), Is.GreaterThan(cb * 0.5));
    }

    [Test]
    public void BatchNormStartsAsIdentityStatistics()
    {
        using var scope = TensorScope.Begin();
        using var bn = new BatchNorm2d(6);
        Assert.That(bn.Weight.ToDoubles(), Is.All.EqualTo(1));
        Assert.That(bn.Bias.ToDoubles(), Is.All.EqualTo(0));
        Assert.That(bn.RunningMean.ToDoubles(), Is.All.EqualTo(0));
        Assert.That(bn.RunningVar.ToDoubles(), Is.All.EqualTo(1));
        Assert.That(bn.NumBatchesTracked.ToArray<long>(), Is.EqualTo(new long[] { 0 }));
        Assert.That(bn.Eps, Is.EqualTo(1e-5));
        Assert.That(bn.Momentum, Is.EqualTo(0.1));
    }

    [Test]
    public void SeedsMakeInitialisationReproducible()
    {
        using var scope = TensorScope.Begin();
        using var a = new Conv2d(4, 4, 3, rng: new Random(9));
        using var b = new Conv2d(4, 4, 3, rng: new Random(9));
        using var c = new Conv2d(4, 4, 3, rng: new Random(10));
        Assert.That(b.Weight.ToDoubles(), Is.EqualTo(a.Weight.ToDoubles()));
        Assert.That(c.Weight.ToDoubles(), Is.Not.EqualTo(a.Weight.ToDoubles()));
    }

    [Test]
    public void SkipInitializationOnlyAllocates()
    {
        using (Init.SkipInitialization())
        {
            Assert.That(Init.IsSkipping, Is.True);
            using var conv = new Conv2d(8, 8, 3);
            Assert.That(conv.Weight.Shape, Is.EqualTo(new Shape(8, 8, 3, 3)));
        }
        Assert.That(Init.IsSkipping, Is.False);
    }

    [Test]
    public void TraceGivesShapesAndMacs()
    {
        var t = new ShapeTrace();
        using var conv = new Conv2d(3, 64, 7, stride: 2, padding: 3);
        var s = conv.Trace(new Shape(2, 3, 224, 224), t);
        Assert.That(s, Is.EqualTo(new Shape(2, 64, 112, 112)));
        Assert.That(t.Macs, Is.EqualTo(2L * 64 * 112 * 112 * 3 * 49));
        using var pool = new MaxPool2d(3, 2, 1);
        Assert.That(pool.Trace(s, t), Is.EqualTo(new Shape(2, 64, 56, 56)));
        using var g = new Conv2d(64, 128, 3, stride: 2, padding: 1, groups: 4);
        var t2 = new ShapeTrace();
        Assert.That(g.Trace(new Shape(1, 64, 56, 56), t2), Is.EqualTo(new Shape(1, 128, 28, 28)));
        Assert.That(t2.Macs, Is.EqualTo(128L * 28 * 28 * 16 * 9));
        using var fc = new Linear(512, 10);
        var t3 = new ShapeTrace();
        Assert.That(fc.Trace(new Shape(4, 512), t3), Is.EqualTo(new Shape(4, 10)));
        Assert.That(t3.Macs, Is.EqualTo(4L * 512 * 10));
        using var seq = new Sequential(new AdaptiveAvgPool2d(1), new Flatten());
        Assert.That(seq.Trace(new Shape(4, 512, 7, 7), t3), Is.EqualTo(new Shape(4, 512)));
        Assert.Throws<ArgumentException>(() => conv.Trace(new Shape(1, 4, 32, 32), new ShapeTrace()));
    }

    [Test]
    public void BadLayerArgumentsAreRejected()
    {
        Assert.Throws<ArgumentException>(() => new Conv2d(6, 4, 3, groups: 4));
        Assert.Throws<ArgumentException>(() => new Conv2d(0, 4, 3));
        Assert.Throws<ArgumentException>(() => new Conv2d(4, 4, 3, padding: -1));
        Assert.Throws<ArgumentException>(() => new Linear(4, 0));
        Assert.Throws<ArgumentException>(() => new BatchNorm2d(4, eps: 0));
        Assert.Throws<ArgumentException>(() => new MaxPool2d(3, 2, 2));
        Assert.Throws<NotSupportedException>(() => new AdaptiveAvgPool2d(2));
    }
}
