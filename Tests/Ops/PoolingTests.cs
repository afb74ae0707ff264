// Max, average and global average pooling on the CPU: values and indices against PyTorch-computed
// examples, gradients by finite differences for every option (padding, ceil mode, overlapping
// windows, count_include_pad), F32 vs F64, and PyTorch's argument validation.
using NUnit.Framework;
using ResidualEngine.Backends;

// (Not "ResidualEngine.Tests.Ops": that namespace would hide the Ops class from every test.)
namespace ResidualEngine.Tests.OpTests;

public class PoolingTests
{
    // (x * 7 mod 31) - 10 over a 5 x 6 plane: distinct values, the input of the PyTorch examples below.
    private static Tensor Example()
    {
        var v = new double[30];
        for (int i = 0; i < 30; i++) v[i] = i * 7 % 31 - 10.0;
        return Tensor.FromArray(v, 1, 1, 5, 6);
    }

    /// <summary>Random-order distinct values spaced 0.05 apart, so no max-pool window has a tie within gradcheck's eps.</summary>
    private static Tensor DistinctLeaf(Random rng, params int[] dims)
    {
        var shape = new Shape(dims);
        var v = new double[shape.Numel];
        for (int i = 0; i < v.Length; i++) v[i] = (i - v.Length / 2) * 0.05;
        rng.Shuffle(v);
        var t = Tensor.FromArray(v, shape);
        t.RequiresGrad = true;
        return t;
    }

    [Test]
    public void MaxPoolMatchesPyTorchValuesAndIndices()
    {
        using var scope = TensorScope.Begin();
        var x = Example();
        var y = ResidualEngine.Ops.MaxPool2d(x, 3, 2, 1, ceilMode: true);
        Assert.That(y.Shape, Is.EqualTo(new Shape(1, 1, 3, 4)));
        Assert.That(y.ToDoubles(), Is.EqualTo(new double[] { 8, 15, 18, 5, 19, 19, 20, 16, 10, 17, 20, 7 }));

        var idx = Tensor.Empty(y.Shape, DType.I32);
        var y2 = Tensor.EmptyLike(y);
        x.Backend.MaxPoolForward(y2, idx, x, Pool2dParams.Of(3, 2, 1, ceilMode: true));
        Assert.That(idx.ToArray<int>(), Is.EqualTo(new[] { 7, 8, 4, 11, 13, 13, 22, 17, 25, 26, 22, 29 }));
    }

    [TestCase(true, new[] { -0.4444444444444444, 2.888888888888889, 1.8888888888888888, -0.16666666666666666, 3.4444444444444446, 5.333333333333333, 5.555555555555555, 2.8333333333333335, 0.4444444444444444, 4.222222222222222, 3.2222222222222223, 0.5 })]
    [TestCase(false, new[] { -1.0, 4.333333333333333, 2.8333333333333335, -0.5, 5.166666666666667, 5.333333333333333, 5.555555555555555, 5.666666666666667, 1.0, 6.333333333333333, 4.833333333333333, 1.5 })]
    public void AvgPoolCeilModeMatchesPyTorch(bool countIncludePad, double[] expected)
    {
        using var scope = TensorScope.Begin();
        var y = ResidualEngine.Ops.AvgPool2d(Example(), 3, 2, 1, ceilMode: true, countIncludePad: countIncludePad);
        Assert.That(y.Shape, Is.EqualTo(new Shape(1, 1, 3, 4)));
        Close.Assert(y.ToDoubles(), expected, 1e-12, 1e-12, "avg pool");
    }

    [Test]
    public void AvgPoolCeilModeWithoutPaddingDividesByTheClippedWindow()
    {
        using var scope = TensorScope.Begin();
        var y = ResidualEngine.Ops.AvgPool2d(Example(), 2, 2, 0, ceilMode: true);
        Assert.That(y.Shape, Is.EqualTo(new Shape(1, 1, 3, 3)));
        Close.Assert(y.ToDoubles(), [-1.0, 5.25, 3.75, 5.5, 4.0, 10.25, 6.5, 5.0, 3.5], 1e-12, 1e-12, "avg pool");
    }

    [TestCase(3, 2, 1, false)]
    [TestCase(3, 2, 1, true)]
    [TestCase(2, 2, 0, true)]
    [TestCase(3, 1, 1, false)]
    [TestCase(2, 3, 1, true)]
    public void MaxPoolGradCheck(int k, int s, int p, bool ceil)
    {
        using var scope = TensorScope.Begin();
        var x = DistinctLeaf(new Random(k * 100 + s * 10 + p), 2, 3, 7, 6);
        GradCheck.Run(t => ResidualEngine.Ops.MaxPool2d(t[0], k, s, p, ceil), [x]);
    }

    [TestCase(3, 2, 1, false, true)]
    [TestCase(3, 2, 1, false, false)]
    [TestCase(3, 2, 1, true, true)]
    [TestCase(3, 2, 1, true, false)]
    [TestCase(2, 2, 0, true, true)]
    [TestCase(3, 1, 1, false, false)]
    public void AvgPoolGradCheck(int k, int s, int p, bool ceil, bool countIncludePad)
    {
        using var scope = TensorScope.Begin();
        var x = GradCheck.Leaf(new Random(k + s + p), 2, 3, 7, 6);
        GradCheck.Run(t => ResidualEngine.Ops.AvgPool2d(t[0], k, s, p, ceil, countIncludePad), [x]);
    }

    [Test]
    public void NonSquarePoolGradCheck()
    {
        using var scope = TensorScope.Begin();
        var p = new Pool2dParams(KernelH: 3, KernelW: 2, StrideH: 2, StrideW: 1, PadH: 1, PadW: 0, CeilMode: true, CountIncludePad: false);
        var x = DistinctLeaf(new Random(11), 1, 2, 5, 7);
        GradCheck.Run(t => ResidualEngine.Ops.MaxPool2d(t[0], p), [x]);
        GradCheck.Run(t => ResidualEngine.Ops.AvgPool2d(t[0], p), [x]);
    }

    [Test]
    public void GlobalAvgPoolIsThePlaneMeanAndGradChecks()
    {
        using var scope = TensorScope.Begin();
        var x = GradCheck.Leaf(new Random(12), 3, 2, 5, 3);
        var y = ResidualEngine.Ops.GlobalAvgPool2d(x);
        Assert.That(y.Shape, Is.EqualTo(new Shape(3, 2, 1, 1)));
        var xv = x.ToDoubles();
        var expected = new double[6];
        for (int i = 0; i < xv.Length; i++) expected[i / 15] += xv[i] / 15;
        Close.Assert(y.ToDoubles(), expected, 1e-14, 1e-12, "mean");
        GradCheck.Run(t => ResidualEngine.Ops.GlobalAvgPool2d(t[0]), [x]);
    }

    [Test]
    public void F32AgreesWithF64()
    {
        using var scope = TensorScope.Begin();
        var rng = new Random(13);
        var xd = DistinctLeaf(rng, 4, 8, 17, 15);
        var dyShape = ResidualEngine.Ops.MaxPool2d(xd, 3, 2, 1, true).Shape;
        var dyd = Tensor.Randn(dyShape, rng, DType.F64);
        var dgd = Tensor.Randn(new Shape(4, 8, 1, 1), rng, DType.F64);
        Func<Tensor, Tensor>[] ops =
        [
            x => ResidualEngine.Ops.MaxPool2d(x, 3, 2, 1, true),
            x => ResidualEngine.Ops.AvgPool2d(x, 3, 2, 1, true, false),
            x => ResidualEngine.Ops.AvgPool2d(x, 3, 2, 1, true, true),
        ];
        foreach (var op in ops)
        {
            var r = new List<double[]>();
            foreach (var dt in new[] { DType.F64, DType.F32 })
            {
                var x = xd.To(dt);
                x.RequiresGrad = true;
                var y = op(x);
                y.Backward(dyd.To(dt));
                r.Add(y.ToDoubles());
                r.Add(x.Grad!.ToDoubles());
            }
            Close.Assert(r[2], r[0], 1e-4, 1e-3, "y");
            Close.Assert(r[3], r[1], 1e-4, 1e-3, "dX");
        }
        var g = new List<double[]>();
        foreach (var dt in new[] { DType.F64, DType.F32 })
        {
            var x = xd.To(dt);
            x.RequiresGrad = true;
            var y = ResidualEngine.Ops.GlobalAvgPool2d(x);
            y.Backward(dgd.To(dt));
            g.Add(y.ToDoubles());
            g.Add(x.Grad!.ToDoubles());
        }
        Close.Assert(g[2], g[0], 1e-4, 1e-3, "global y");
        Close.Assert(g[3], g[1], 1e-4, 1e-3, "global dX");
    }

    [Test]
    public void MaxPoolPropagatesNaN()
    {
        using var scope = TensorScope.Begin();
        var x = Tensor.FromArray(new double[] { 1, double.NaN, 3, 4 }, 1, 1, 2, 2);
        Assert.That(double.IsNaN(ResidualEngine.Ops.MaxPool2d(x, 2).Item()), Is.True);
    }

    [Test]
    public void InvalidWindowsAreRejectedAsPyTorchDoes()
    {
        using var scope = TensorScope.Begin();
        var x = Tensor.Zeros(new Shape(1, 1, 4, 4), DType.F64);
        Assert.That(Assert.Throws<ArgumentException>(() => ResidualEngine.Ops.MaxPool2d(x, 0))!.Message, Does.Contain("kernel size must be positive"));
        Assert.That(Assert.Throws<ArgumentException>(() => ResidualEngine.Ops.AvgPool2d(x, 2, 0))!.Message, Does.Contain("stride must be positive"));
        Assert.That(Assert.Throws<ArgumentException>(() => ResidualEngine.Ops.MaxPool2d(x, 3, 1, 2))!.Message, Does.Contain("at most half"));
        Assert.That(Assert.Throws<ArgumentException>(() => ResidualEngine.Ops.AvgPool2d(x, 2, 1, -1))!.Message, Does.Contain("padding must not be negative"));
        Assert.That(Assert.Throws<ArgumentException>(() => ResidualEngine.Ops.MaxPool2d(x, 5))!.Message, Does.Contain("output size is too small"));
        Assert.That(Assert.Throws<ArgumentException>(() => ResidualEngine.Ops.AvgPool2d(Tensor.Zeros(new Shape(4, 4), DType.F64), 2))!.Message,
            Does.Contain("rank 4"));
        Assert.That(Assert.Throws<ArgumentException>(() => ResidualEngine.Ops.GlobalAvgPool2d(Tensor.Zeros(new Shape(1, 1, 0, 3), DType.F64)))!.Message,
            Does.Contain("empty"));
    }
}
