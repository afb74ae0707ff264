// BatchNorm2d on the CPU: gradients (training and eval) by finite differences, forward values
// and the running-statistics update against statistics computed here independently (unbiased
// variance), a PyTorch-computed running-stat example, F32 vs F64, and argument validation.
using NUnit.Framework;
using ResidualEngine.Autograd;

// (Not "ResidualEngine.Tests.Ops": that namespace would hide the Ops class from every test.)
namespace ResidualEngine.Tests.OpTests;

public class BatchNormTests
{
    private static (Tensor Gamma, Tensor Beta, Tensor Rm, Tensor Rv) Params(Random rng, int c, DType dt = DType.F64)
    {
        var g = Tensor.Rand(new Shape(c), rng, 0.5, 1.5, dt);
        var b = Tensor.Randn(new Shape(c), rng, dt, 0.5);
        var rm = Tensor.Randn(new Shape(c), rng, dt, 0.3);
        var rv = Tensor.Rand(new Shape(c), rng, 0.5, 2.0, dt);
        return (g, b, rm, rv);
    }

    /// <summary>Per-channel mean and biased/unbiased variance of host data laid out (N, C, H, W).</summary>
    private static (double[] Mean, double[] Var, double[] Unbiased) Stats(double[] x, int n, int c, int hw)
    {
        var mean = new double[c];
        var var = new double[c];
        var unb = new double[c];
        int m = n * hw;
        for (int ch = 0; ch < c; ch++)
        {
            var vals = new List<double>();
            for (int i = 0; i < n; i++)
                for (int j = 0; j < hw; j++) vals.Add(x[(i * c + ch) * hw + j]);
            mean[ch] = vals.Average();
            double ss = vals.Sum(v => (v - mean[ch]) * (v - mean[ch]));
            var[ch] = ss / m;
            unb[ch] = ss / (m - 1);
        }
        return (mean, var, unb);
    }

    [Test]
    public void TrainingGradCheckCoversInputGammaAndBeta()
    {
        using var scope = TensorScope.Begin();
        var rng = new Random(1);
        var x = GradCheck.Leaf(rng, 3, 4, 3, 5);
        var (g, b, rm, rv) = Params(rng, 4);
        g.RequiresGrad = true;
        b.RequiresGrad = true;
        GradCheck.Run(t => ResidualEngine.Ops.BatchNorm2d(t[0], t[1], t[2], rm, rv, training: true), [x, g, b]);
    }

    [Test]
    public void EvalGradCheckCoversInputGammaAndBeta()
    {
        using var scope = TensorScope.Begin();
        var rng = new Random(2);
        var x = GradCheck.Leaf(rng, 2, 3, 5, 3);
        var (g, b, rm, rv) = Params(rng, 3);
        g.RequiresGrad = true;
        b.RequiresGrad = true;
        GradCheck.Run(t => ResidualEngine.Ops.BatchNorm2d(t[0], t[1], t[2], rm, rv, training: false), [x, g, b]);
    }

    [Test]
    public void EvalBackwardMatchesClosedForm()
    {
        using var scope = TensorScope.Begin();
        var rng = new Random(3);
        var x = GradCheck.Leaf(rng, 2, 3, 2, 3);
        var (g, b, rm, rv) = Params(rng, 3);
        g.RequiresGrad = true;
        b.RequiresGrad = true;
        var dy = Tensor.Randn(x.Shape, rng, DType.F64);
        ResidualEngine.Ops.BatchNorm2d(x, g, b, rm, rv, training: false).Backward(dy);
        double[] xv = x.ToDoubles(), dyv = dy.ToDoubles(), gv = g.ToDoubles(), mv = rm.ToDoubles(), vv = rv.ToDoubles();
        var dx = new double[xv.Length];
        var dg = new double[3];
        var db = new double[3];
        for (int i = 0; i < xv.Length; i++)
        {
            int ch = i / 6 % 3;
            double inv = 1 / Math.Sqrt(vv[ch] + 1e-5);
            dx[i] = dyv[i] * gv[ch] * inv;
            dg[ch] += dyv[i] * (xv[i] - mv[ch]) * inv;
            db[ch] += dyv[i];
        }
        Close.Assert(x.Grad!.ToDoubles(), dx, 1e-12, 1e-10, "dX");
        Close.Assert(g.Grad!.ToDoubles(), dg, 1e-12, 1e-10, "dGamma");
        Close.Assert(b.Grad!.ToDoubles(), db, 1e-12, 1e-10, "dBeta");
    }

    [Test]
    public void TrainingForwardNormalisesWithBatchStatsAndUpdatesRunningStatsWithUnbiasedVariance()
    {
        using var scope = TensorScope.Begin();
        var rng = new Random(4);
        int n = 3, c = 2, h = 3, w = 4;
        var x = Tensor.Randn(new Shape(n, c, h, w), rng, DType.F64, 2.0);
        var (g, b, rm, rv) = Params(rng, c);
        double[] rm0 = rm.ToDoubles(), rv0 = rv.ToDoubles(), gv = g.ToDoubles(), bv = b.ToDoubles(), xv = x.ToDoubles();
        var y = ResidualEngine.Ops.BatchNorm2d(x, g, b, rm, rv, training: true, momentum: 0.2);

        var (mean, var, unb) = Stats(xv, n, c, h * w);
        var expected = new double[xv.Length];
        for (int i = 0; i < xv.Length; i++)
        {
            int ch = i / (h * w) % c;
            expected[i] = (xv[i] - mean[ch]) / Math.Sqrt(var[ch] + 1e-5) * gv[ch] + bv[ch];
        }
        Close.Assert(y.ToDoubles(), expected, 1e-12, 1e-10, "y");
        Close.Assert(rm.ToDoubles(), [0.8 * rm0[0] + 0.2 * mean[0], 0.8 * rm0[1] + 0.2 * mean[1]], 1e-13, 1e-12, "running mean");
        Close.Assert(rv.ToDoubles(), [0.8 * rv0[0] + 0.2 * unb[0], 0.8 * rv0[1] + 0.2 * unb[1]], 1e-13, 1e-12, "running var (unbiased)");
    }

    [Test]
    public void RunningStatsMatchPyTorchExample()
    {
        // torch.nn.BatchNorm2d(2) in float64 after one training forward of this input (fresh stats 0 and 1).
        using var scope = TensorScope.Begin();
        var x = Tensor.FromArray(new double[] { 1, 2, 4, 8, 0.5, 0.25, -1, 3, 0, -2, 1.5, 2.5, 1, 1, 2, -3 }, 2, 2, 2, 2);
        var g = Tensor.Ones(new Shape(2), DType.F64);
        var b = Tensor.Zeros(new Shape(2), DType.F64);
        var rm = Tensor.Zeros(new Shape(2), DType.F64);
        var rv = Tensor.Ones(new Shape(2), DType.F64);
        ResidualEngine.Ops.BatchNorm2d(x, g, b, rm, rv, training: true);
        Close.Assert(rm.ToDoubles(), [0.21250000000000002, 0.046875], 1e-15, 1e-13, "running mean");
        Close.Assert(rv.ToDoubles(), [1.7767857142857144, 1.2364955357142857], 1e-15, 1e-13, "running var");
    }

    [Test]
    public void EvalForwardUsesRunningStatsAndLeavesThemAlone()
    {
        using var scope = TensorScope.Begin();
        var rng = new Random(5);
        var x = Tensor.Randn(new Shape(2, 3, 2, 2), rng, DType.F64);
        var (g, b, rm, rv) = Params(rng, 3);
        double[] rm0 = rm.ToDoubles(), rv0 = rv.ToDoubles(), gv = g.ToDoubles(), bv = b.ToDoubles(), xv = x.ToDoubles();
        var y = ResidualEngine.Ops.BatchNorm2d(x, g, b, rm, rv, training: false);
        var expected = new double[xv.Length];
        for (int i = 0; i < xv.Length; i++)
        {
            int ch = i / 4 % 3;
            expected[i] = (xv[i] - rm0[ch]) / Math.Sqrt(rv0[ch] + 1e-5) * gv[ch] + bv[ch];
        }
        Close.Assert(y.ToDoubles(), expected, 1e-12, 1e-10, "y");
        Assert.That(rm.ToDoubles(), Is.EqualTo(rm0));
        Assert.That(rv.ToDoubles(), Is.EqualTo(rv0));
    }

    [Test]
    public void F32AgreesWithF64ForwardAndBackward([Values] bool training)
    {
        using var scope = TensorScope.Begin();
        var rng = new Random(6);
        var shape = new Shape(4, 5, 7, 9);
        var xd = Tensor.Randn(shape, rng, DType.F64);
        var (gd, bd, rmd, rvd) = Params(rng, 5);
        var dyd = Tensor.Randn(shape, rng, DType.F64);
        var res = new List<double[]>[2];
        int k = 0;
        foreach (var dt in new[] { DType.F64, DType.F32 })
        {
            var x = xd.To(dt); var g = gd.To(dt); var b = bd.To(dt); var rm = rmd.To(dt); var rv = rvd.To(dt); var dy = dyd.To(dt);
            x.RequiresGrad = g.RequiresGrad = b.RequiresGrad = true;
            var y = ResidualEngine.Ops.BatchNorm2d(x, g, b, rm, rv, training);
            y.Backward(dy);
            res[k++] = [y.ToDoubles(), x.Grad!.ToDoubles(), g.Grad!.ToDoubles(), b.Grad!.ToDoubles(), rm.ToDoubles(), rv.ToDoubles()];
        }
        string[] names = ["y", "dX", "dGamma", "dBeta", "running mean", "running var"];
        for (int i = 0; i < names.Length; i++) Close.Assert(res[1][i], res[0][i], 1e-4, 1e-3, names[i]);
    }

    [Test]
    public void ManyImageBlocksMatchIndependentStatisticsAndDoNotDependOnThreads()
    {
        // (64, 3, 20, 20): the CPU kernel merges the statistics of several blocks of images (27, 27, 10),
        // with a channel offset far from zero; F64 must match the textbook two-pass statistics within
        // rounding, and F32 results must be bit-identical on one and on two threads.
        using var scope = TensorScope.Begin();
        var rng = new Random(11);
        var shape = new Shape(64, 3, 20, 20);
        var host = Tensor.Randn(shape, rng, DType.F64).ToDoubles();
        for (int i = 0; i < host.Length; i++) host[i] = 50 + 3 * host[i];
        var xd = Tensor.FromDoubles(host, shape, DType.F64);
        var (g, b, _, _) = Params(rng, 3);
        var rm = Tensor.Zeros(new Shape(3), DType.F64);
        var rv = Tensor.Ones(new Shape(3), DType.F64);
        var y = ResidualEngine.Ops.BatchNorm2d(xd, g, b, rm, rv, training: true, momentum: 1.0);
        var (mean, var, unb) = Stats(host, 64, 3, 400);
        Close.Assert(rm.ToDoubles(), mean, 1e-12, 1e-12, "running mean");
        Close.Assert(rv.ToDoubles(), unb, 1e-12, 1e-12, "running var");
        var gv = g.ToDoubles(); var bv = b.ToDoubles();
        var expected = new double[host.Length];
        for (int i = 0; i < host.Length; i++)
        {
            int ch = i / 400 % 3;
            expected[i] = (host[i] - mean[ch]) / Math.Sqrt(var[ch] + 1e-5) * gv[ch] + bv[ch];
        }
        Close.Assert(y.ToDoubles(), expected, 1e-10, 1e-10, "y");

        var dy = Tensor.Randn(shape, rng, DType.F32);
        var runs = new List<double[]>();
        int saved = ResidualEngine.Backends.Cpu.CpuBackend.Threads;
        try
        {
            foreach (int threads in new[] { 1, 2 })
            {
                ResidualEngine.Backends.Cpu.CpuBackend.Threads = threads;
                var x = xd.To(DType.F32); var g32 = g.To(DType.F32); var b32 = b.To(DType.F32);
                x.RequiresGrad = g32.RequiresGrad = b32.RequiresGrad = true;
                var y32 = ResidualEngine.Ops.BatchNorm2d(x, g32, b32, Tensor.Zeros(new Shape(3)), Tensor.Ones(new Shape(3)), training: true);
                y32.Backward(dy);
                runs.Add([.. y32.ToDoubles(), .. x.Grad!.ToDoubles(), .. g32.Grad!.ToDoubles(), .. b32.Grad!.ToDoubles()]);
            }
        }
        finally { ResidualEngine.Backends.Cpu.CpuBackend.Threads = saved; }
        Assert.That(runs[1], Is.EqualTo(runs[0]), "F32 results differ between 1 and 2 threads");
    }

    [Test]
    public void F32StatisticsStayAccurateForLargeOffsets()
    {
        // Activations around 1000 with unit spread: a one-pass float variance would lose most digits.
        using var scope = TensorScope.Begin();
        var rng = new Random(7);
        var xd = Tensor.Randn(new Shape(8, 2, 16, 16), rng, DType.F64);
        var host = xd.ToDoubles();
        for (int i = 0; i < host.Length; i++) host[i] = 1000 + host[i];
        var x = Tensor.FromDoubles(host, xd.Shape, DType.F32);
        var g = Tensor.Ones(new Shape(2));
        var b = Tensor.Zeros(new Shape(2));
        var rm = Tensor.Zeros(new Shape(2));
        var rv = Tensor.Ones(new Shape(2));
        var y = ResidualEngine.Ops.BatchNorm2d(x, g, b, rm, rv, training: true, momentum: 1.0);
        // Compare with the statistics of the values actually stored in F32.
        var (mean, _, unb) = Stats(x.ToDoubles(), 8, 2, 256);
        Close.Assert(rm.ToDoubles(), mean, 1e-3, 1e-6, "running mean");
        Close.Assert(rv.ToDoubles(), unb, 1e-4, 1e-4, "running var");
        var yv = y.ToDoubles();
        Assert.That(Math.Abs(yv.Average()), Is.LessThan(1e-4));
    }

    [Test]
    public void TrainingWithOneValuePerChannelIsRejectedButEvalWorks()
    {
        using var scope = TensorScope.Begin();
        var x = Tensor.Ones(new Shape(1, 3, 1, 1), DType.F64);
        var (g, b, rm, rv) = Params(new Random(8), 3);
        var e = Assert.Throws<ArgumentException>(() => ResidualEngine.Ops.BatchNorm2d(x, g, b, rm, rv, training: true));
        Assert.That(e!.Message, Does.Contain("expected more than 1 value per channel when training"));
        Assert.That(ResidualEngine.Ops.BatchNorm2d(x, g, b, rm, rv, training: false).Shape, Is.EqualTo(x.Shape));
    }

    [Test]
    public void InvalidArgumentsAreRejectedWithTheirNames()
    {
        using var scope = TensorScope.Begin();
        var rng = new Random(9);
        var x = Tensor.Randn(new Shape(2, 3, 2, 2), rng, DType.F64);
        var (g, b, rm, rv) = Params(rng, 3);
        var g4 = Tensor.Ones(new Shape(4), DType.F64);
        var g32 = Tensor.Ones(new Shape(3), DType.F32);
        var x3 = Tensor.Randn(new Shape(2, 3, 2), rng, DType.F64);
        var labels = Tensor.Zeros(new Shape(2, 3, 2, 2), DType.I64);

        Assert.That(Assert.Throws<ArgumentException>(() => ResidualEngine.Ops.BatchNorm2d(x, g4, b, rm, rv, true))!.Message,
            Does.Contain("gamma").And.Contain("(3,)"));
        Assert.That(Assert.Throws<ArgumentException>(() => ResidualEngine.Ops.BatchNorm2d(x, g, b, g4, rv, true))!.Message,
            Does.Contain("runningMean"));
        Assert.That(Assert.Throws<ArgumentException>(() => ResidualEngine.Ops.BatchNorm2d(x, g32, b, rm, rv, true))!.Message,
            Does.Contain("gamma"));
        Assert.That(Assert.Throws<ArgumentException>(() => ResidualEngine.Ops.BatchNorm2d(x3, g, b, rm, rv, true))!.Message,
            Does.Contain("rank 4"));
        Assert.That(Assert.Throws<ArgumentException>(() => ResidualEngine.Ops.BatchNorm2d(labels, g, b, rm, rv, true))!.Message,
            Does.Contain("floating-point"));
        Assert.That(Assert.Throws<ArgumentException>(() => ResidualEngine.Ops.BatchNorm2d(x, g, b, rm, rv, true, eps: 0))!.Message,
            Does.Contain("eps"));
        Assert.That(Assert.Throws<ArgumentException>(() => ResidualEngine.Ops.BatchNorm2d(x, g, b, rm, rv, true, momentum: 1.5))!.Message,
            Does.Contain("momentum"));
    }

    [Test]
    public void NoGradForwardKeepsNoSavedStatistics()
    {
        long live0 = TensorStats.LiveTensors;
        using (var scope = TensorScope.Begin())
        {
            var rng = new Random(10);
            var x = Tensor.Randn(new Shape(2, 3, 2, 2), rng, DType.F64);
            var (g, b, rm, rv) = Params(rng, 3);
            g.RequiresGrad = true;
            using (GradMode.NoGrad())
            {
                long before = TensorStats.LiveTensors;
                var y = ResidualEngine.Ops.BatchNorm2d(x, g, b, rm, rv, training: true);
                Assert.That(y.GradFn, Is.Null);
                Assert.That(TensorStats.LiveTensors, Is.EqualTo(before + 1), "only the output should stay alive");
            }
        }
        Assert.That(TensorStats.LiveTensors, Is.EqualTo(live0));
    }
}
