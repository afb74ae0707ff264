// Linear: forward against a naive x W^T + b, F64 finite-difference gradients with and without
// bias, F32 against F64, and argument validation.
using NUnit.Framework;

// Not "ResidualEngine.Tests.Ops": that namespace would hide the Ops class.
namespace ResidualEngine.Tests.OpTests;

public class LinearTests
{
    private static double[] Naive(double[] x, double[] w, double[]? b, int n, int inF, int outF)
    {
        var y = new double[n * outF];
        for (int i = 0; i < n; i++)
            for (int o = 0; o < outF; o++)
            {
                double s = b?[o] ?? 0;
                for (int j = 0; j < inF; j++) s += x[i * inF + j] * w[o * inF + j];
                y[i * outF + o] = s;
            }
        return y;
    }

    [Test]
    public void ForwardMatchesNaive([Values(DType.F32, DType.F64)] DType dt, [Values(true, false)] bool bias)
    {
        using var scope = TensorScope.Begin();
        var rng = new Random(1);
        int n = 13, inF = 70, outF = 51;
        var x = Tensor.Randn(new Shape(n, inF), rng, dt);
        var w = Tensor.Randn(new Shape(outF, inF), rng, dt);
        var b = bias ? Tensor.Randn(new Shape(outF), rng, dt) : null;
        var y = Ops.Linear(x, w, b);
        Assert.That(y.Shape, Is.EqualTo(new Shape(n, outF)));
        Close.Assert(y.ToDoubles(), Naive(x.ToDoubles(), w.ToDoubles(), b?.ToDoubles(), n, inF, outF),
            dt == DType.F32 ? 1e-4 : 1e-12, 1e-5, $"Linear {dt}");
    }

    [Test]
    public void GradientsMatchFiniteDifferences([Values(true, false)] bool bias)
    {
        using var scope = TensorScope.Begin();
        var rng = new Random(2);
        var x = GradCheck.Leaf(rng, 4, 7);
        var w = GradCheck.Leaf(rng, 5, 7);
        var inputs = bias ? new[] { x, w, GradCheck.Leaf(rng, 5) } : new[] { x, w };
        GradCheck.Run(v => Ops.Linear(v[0], v[1], v.Length > 2 ? v[2] : null), inputs);
    }

    [Test]
    public void F32AgreesWithF64()
    {
        using var scope = TensorScope.Begin();
        var results = new Dictionary<DType, double[][]>();
        foreach (var dt in new[] { DType.F64, DType.F32 })
        {
            var rng = new Random(3);
            var x = Tensor.Randn(new Shape(9, 33), rng, dt);
            var w = Tensor.Randn(new Shape(20, 33), rng, dt);
            var b = Tensor.Randn(new Shape(20), rng, dt);
            foreach (var t in new[] { x, w, b }) t.RequiresGrad = true;
            var y = Ops.Linear(x, w, b);
            var r = Tensor.Randn(y.Shape, new Random(4), dt);
            Ops.Sum(Ops.Mul(y, r)).Backward();
            results[dt] = [y.ToDoubles(), x.Grad!.ToDoubles(), w.Grad!.ToDoubles(), b.Grad!.ToDoubles()];
        }
        string[] what = ["y", "dX", "dW", "dB"];
        for (int i = 0; i < what.Length; i++)
            Close.Assert(results[DType.F32][i], results[DType.F64][i], 1e-4, 1e-3, $"F32 vs F64 {what[i]}");
    }

    private static void Rejects(Func<Tensor> f, params string[] fragments)
    {
        var e = Assert.Throws<ArgumentException>(() => f())!;
        Assert.That(e.Message, Does.StartWith("Linear"));
        foreach (var s in fragments) Assert.That(e.Message, Does.Contain(s));
    }

    [Test]
    public void InvalidArgumentsNameTheProblem()
    {
        using var scope = TensorScope.Begin();
        var x = Tensor.Zeros(new Shape(2, 3));
        var w = Tensor.Zeros(new Shape(4, 3));
        Rejects(() => Ops.Linear(Tensor.Zeros(new Shape(2, 3, 1)), w), "x must have rank 2");
        Rejects(() => Ops.Linear(x, Tensor.Zeros(new Shape(12))), "weight must have rank 2");
        Rejects(() => Ops.Linear(x, Tensor.Zeros(new Shape(4, 5))), "expects 5 input features", "has 3");
        Rejects(() => Ops.Linear(x, w, Tensor.Zeros(new Shape(3))), "bias must have shape (4)");
        Rejects(() => Ops.Linear(x, w, Tensor.Zeros(new Shape(4, 1))), "bias must have shape (4)");
        Rejects(() => Ops.Linear(x, Tensor.Zeros(new Shape(4, 3), DType.F64)), "x is F32", "weight is F64");
        Rejects(() => Ops.Linear(Tensor.Zeros(new Shape(2, 3), DType.I64), w), "floating-point");
        FakeDevice.Run(dev =>
        {
            using var inner = TensorScope.Begin();
            Rejects(() => Ops.Linear(x, Tensor.Empty(new Shape(4, 3), DType.F32, dev)), $"weight is on {dev}");
            Rejects(() => Ops.Linear(x, w, Tensor.Empty(new Shape(4), DType.F32, dev)), $"bias is on {dev}");
        });
    }
}
