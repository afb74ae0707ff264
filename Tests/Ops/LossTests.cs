// Softmax cross-entropy on the CPU: values against PyTorch's F.cross_entropy and an
// independent log-sum-exp reference, gradients by finite differences (with and without label
// smoothing), stability for huge logits, F32 vs F64, and label/argument validation.
using NUnit.Framework;

// (Not "ResidualEngine.Tests.Ops": that namespace would hide the Ops class from every test.)
namespace ResidualEngine.Tests.OpTests;

public class LossTests
{
    private static readonly double[] ExampleLogits = [1.0, 2.0, -1.0, 0.5, 0.1, -0.3, 2.2, 1.0, 3.0, 0.0, 0.0, -2.0];

    [TestCase(0.0, 0.7351651700192295)]
    [TestCase(0.1, 0.8809985033525629)]
    public void MatchesPyTorchCrossEntropy(double smoothing, double expected)
    {
        using var scope = TensorScope.Begin();
        var logits = Tensor.FromArray(ExampleLogits, 3, 4);
        var labels = Tensor.FromArray(new long[] { 1, 3, 0 }, 3);
        var loss = ResidualEngine.Ops.SoftmaxCrossEntropy(logits, labels, smoothing);
        Assert.That(loss.Shape, Is.EqualTo(Shape.Scalar));
        Assert.That(loss.Item(), Is.EqualTo(expected).Within(1e-12));
    }

    [Test]
    public void MatchesLogSumExpReference([Values(0.0, 0.25)] double eps)
    {
        using var scope = TensorScope.Begin();
        var rng = new Random(1);
        int n = 7, k = 5;
        var logits = Tensor.Randn(new Shape(n, k), rng, DType.F64, 3.0);
        var lab = new long[n];
        for (int i = 0; i < n; i++) lab[i] = rng.Next(k);
        var x = logits.ToDoubles();
        double total = 0;
        for (int i = 0; i < n; i++)
        {
            var row = x.Skip(i * k).Take(k).ToArray();
            double lse = Math.Log(row.Sum(Math.Exp));
            double nll = lse - row[lab[i]];
            double smooth = row.Sum(v => lse - v) / k;
            total += (1 - eps) * nll + eps * smooth;
        }
        var loss = ResidualEngine.Ops.SoftmaxCrossEntropy(logits, Tensor.FromArray(lab, n), eps);
        Assert.That(loss.Item(), Is.EqualTo(total / n).Within(1e-12));
    }

    [Test]
    public void GradCheck([Values(0.0, 0.1)] double eps)
    {
        using var scope = TensorScope.Begin();
        var rng = new Random(2);
        var logits = ResidualEngine.Tests.GradCheck.Leaf(rng, 5, 7);
        var labels = Tensor.FromArray(new long[] { 0, 6, 3, 3, 1 }, 5);
        ResidualEngine.Tests.GradCheck.Run(t => ResidualEngine.Ops.SoftmaxCrossEntropy(t[0], labels, eps), [logits]);
    }

    [Test]
    public void BackwardIsScaledSoftmaxMinusTarget()
    {
        using var scope = TensorScope.Begin();
        var logits = Tensor.FromArray(ExampleLogits, 3, 4);
        logits.RequiresGrad = true;
        var labels = Tensor.FromArray(new long[] { 1, 3, 0 }, 3);
        ResidualEngine.Ops.SoftmaxCrossEntropy(logits, labels, 0.2).Backward(Tensor.Scalar(2.5, DType.F64));
        var g = logits.Grad!.ToDoubles();
        for (int i = 0; i < 3; i++)
        {
            var row = ExampleLogits.Skip(i * 4).Take(4).ToArray();
            double z = row.Sum(Math.Exp);
            for (int j = 0; j < 4; j++)
            {
                double target = 0.2 / 4 + (j == new[] { 1, 3, 0 }[i] ? 0.8 : 0);
                Assert.That(g[i * 4 + j], Is.EqualTo(2.5 * (Math.Exp(row[j]) / z - target) / 3).Within(1e-14), $"[{i},{j}]");
            }
        }
    }

    [Test]
    public void HugeLogitsStayFinite([Values(DType.F32, DType.F64)] DType dt)
    {
        using var scope = TensorScope.Begin();
        var logits = Tensor.FromDoubles([1000, 1001, -1000, 5000, 4999, 0], new Shape(2, 3), dt);
        logits.RequiresGrad = true;
        var loss = ResidualEngine.Ops.SoftmaxCrossEntropy(logits, Tensor.FromArray(new long[] { 0, 1 }, 2));
        double expected = (Math.Log(1 + Math.Exp(1)) + Math.Log(1 + Math.Exp(1))) / 2; // both rows: nll of a logit 1 below the max
        Assert.That(loss.Item(), Is.EqualTo(expected).Within(1e-5));
        loss.Backward();
        Assert.That(logits.Grad!.ToDoubles().All(double.IsFinite), Is.True);
    }

    [Test]
    public void F32AgreesWithF64([Values(0.0, 0.1)] double eps)
    {
        using var scope = TensorScope.Begin();
        var rng = new Random(3);
        int n = 64, k = 10;
        var xd = Tensor.Randn(new Shape(n, k), rng, DType.F64, 2.0);
        var lab = new long[n];
        for (int i = 0; i < n; i++) lab[i] = rng.Next(k);
        var labels = Tensor.FromArray(lab, n);
        var r = new List<double[]>();
        foreach (var dt in new[] { DType.F64, DType.F32 })
        {
            var x = xd.To(dt);
            x.RequiresGrad = true;
            var loss = ResidualEngine.Ops.SoftmaxCrossEntropy(x, labels, eps);
            loss.Backward();
            r.Add(loss.ToDoubles());
            r.Add(x.Grad!.ToDoubles());
        }
        Close.Assert(r[2], r[0], 1e-4, 1e-3, "loss");
        Close.Assert(r[3], r[1], 1e-4, 1e-3, "dLogits");
    }

    [Test]
    public void OutOfRangeLabelsAreNamedWithTheirIndex()
    {
        using var scope = TensorScope.Begin();
        var logits = Tensor.Zeros(new Shape(3, 4), DType.F64);
        var e = Assert.Throws<ArgumentException>(() => ResidualEngine.Ops.SoftmaxCrossEntropy(logits, Tensor.FromArray(new long[] { 0, 3, 4 }, 3)));
        Assert.That(e!.Message, Does.Contain("label 4").And.Contain("index 2"));
        e = Assert.Throws<ArgumentException>(() => ResidualEngine.Ops.SoftmaxCrossEntropy(logits, Tensor.FromArray(new long[] { 0, -1, 1 }, 3)));
        Assert.That(e!.Message, Does.Contain("label -1").And.Contain("index 1"));
    }

    [Test]
    public void InvalidArgumentsAreRejected()
    {
        using var scope = TensorScope.Begin();
        var logits = Tensor.Zeros(new Shape(3, 4), DType.F64);
        var labels = Tensor.FromArray(new long[] { 0, 1, 2 }, 3);
        Assert.That(Assert.Throws<ArgumentException>(() => ResidualEngine.Ops.SoftmaxCrossEntropy(logits, Tensor.FromArray(new int[] { 0, 1, 2 }, 3)))!.Message,
            Does.Contain("I64"));
        Assert.That(Assert.Throws<ArgumentException>(() => ResidualEngine.Ops.SoftmaxCrossEntropy(logits, Tensor.FromArray(new long[] { 0, 1 }, 2)))!.Message,
            Does.Contain("labels must have shape (3,)"));
        Assert.That(Assert.Throws<ArgumentException>(() => ResidualEngine.Ops.SoftmaxCrossEntropy(Tensor.Zeros(new Shape(3, 4, 1), DType.F64), labels))!.Message,
            Does.Contain("rank 2"));
        Assert.That(Assert.Throws<ArgumentException>(() => ResidualEngine.Ops.SoftmaxCrossEntropy(logits, labels, 1.5))!.Message,
            Does.Contain("labelSmoothing"));
        Assert.That(Assert.Throws<ArgumentException>(() => ResidualEngine.Ops.SoftmaxCrossEntropy(logits, labels, -0.1))!.Message,
            Does.Contain("labelSmoothing"));
    }
}
