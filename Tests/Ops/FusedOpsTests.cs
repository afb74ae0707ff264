// The fused ops against their unfused compositions (F64, equal within rounding) and by gradient
// checks: batch norm + residual + ReLU in training (forward values, running statistics and every
// gradient), in eval mode with a gradient, and the convolution with its epilogue (bias, residual,
// ReLU) on every CPU convolution path (1x1 direct, strided 1x1, shift planes, packed im2col,
// groups) and kernel family, with weights prepared once by the backend. ReLU keeps NaN as
// Pointwise.Relu does.
using NUnit.Framework;
using ResidualEngine.Autograd;
using ResidualEngine.Backends;
using ResidualEngine.Backends.Cpu;
using ResidualEngine.Tests.Backends;

namespace ResidualEngine.Tests.OpTests;

public class FusedOpsTests
{
    private static (Tensor Gamma, Tensor Beta, Tensor Rm, Tensor Rv) BnParams(Random rng, int c)
    {
        var g = Tensor.Rand(new Shape(c), rng, 0.5, 1.5, DType.F64);
        var b = Tensor.Randn(new Shape(c), rng, DType.F64, 0.5);
        var rm = Tensor.Randn(new Shape(c), rng, DType.F64, 0.3);
        var rv = Tensor.Rand(new Shape(c), rng, 0.5, 2.0, DType.F64);
        return (g, b, rm, rv);
    }

    /// <summary>Gradients of sum(y * r) with respect to the given leaves.</summary>
    private static double[][] Grads(Tensor y, Tensor r, params Tensor[] leaves)
    {
        foreach (var t in leaves) { t.Grad?.Dispose(); t.Grad = null; }
        Ops.Sum(Ops.Mul(y, r)).Backward();
        var g = leaves.Select(t => t.Grad!.ToDoubles()).ToArray();
        foreach (var t in leaves) { t.Grad?.Dispose(); t.Grad = null; }
        return g;
    }

    [TestCase(false, true, TestName = "BnRelu")]
    [TestCase(true, true, TestName = "BnAddRelu")]
    [TestCase(true, false, TestName = "BnAdd")]
    [TestCase(false, false, TestName = "BnAlone")]
    public void TrainingBatchNormActMatchesTheUnfusedOps(bool withResidual, bool relu)
    {
        using var scope = TensorScope.Begin();
        var rng = new Random(3);
        var x = GradCheck.Leaf(rng, 3, 4, 5, 6);
        var res = GradCheck.Leaf(rng, 3, 4, 5, 6);
        var (g, b, rm, rv) = BnParams(rng, 4);
        g.RequiresGrad = b.RequiresGrad = true;
        using var rm2 = rm.Clone();
        using var rv2 = rv.Clone();
        var r = Tensor.Randn(x.Shape, rng, DType.F64);

        var fused = Ops.BatchNorm2d(x, g, b, rm, rv, training: true, residual: withResidual ? res : null, relu: relu);
        var z = Ops.BatchNorm2d(x, g, b, rm2, rv2, training: true);
        if (withResidual) z = relu ? Ops.AddRelu(z, res) : Ops.Add(z, res);
        else if (relu) z = Ops.Relu(z);

        Close.Assert(fused, z, 1e-13, 1e-12, "forward");
        Close.Assert(rm, rm2, 0, 1e-14, "running mean");
        Close.Assert(rv, rv2, 0, 1e-14, "running var");
        var leaves = withResidual ? new[] { x, g, b, res } : new[] { x, g, b };
        var gf = Grads(fused, r, leaves);
        var gu = Grads(z, r, leaves);
        string[] names = ["dx", "dgamma", "dbeta", "dresidual"];
        for (int i = 0; i < gf.Length; i++) Close.Assert(gf[i], gu[i], 1e-12, 1e-10, names[i]);
    }

    [TestCase(true, TestName = "TrainingBnAddReluGradCheck")]
    [TestCase(false, TestName = "EvalBnAddReluGradCheck")]
    public void BatchNormActPassesGradCheck(bool training)
    {
        using var scope = TensorScope.Begin();
        var rng = new Random(4);
        var x = GradCheck.Leaf(rng, 2, 3, 4, 5);
        var res = GradCheck.Leaf(rng, 2, 3, 4, 5);
        var (g, b, rm, rv) = BnParams(rng, 3);
        g.RequiresGrad = b.RequiresGrad = true;
        // Training updates the running statistics in place on every call; they do not enter the output.
        GradCheck.Run(t => Ops.BatchNorm2d(t[0], t[1], t[2], rm, rv, training, residual: t[3], relu: true), [x, g, b, res]);
    }

    [Test]
    public void EvalBatchNormActWithoutGradMatchesTheUnfusedOps()
    {
        using var scope = TensorScope.Begin();
        var rng = new Random(5);
        var x = Tensor.Randn(new Shape(2, 3, 4, 5), rng, DType.F64);
        var res = Tensor.Randn(x.Shape, rng, DType.F64);
        var (g, b, rm, rv) = BnParams(rng, 3);
        using var ng = GradMode.NoGrad();
        var fused = Ops.BatchNorm2d(x, g, b, rm, rv, training: false, residual: res, relu: true);
        var unfused = Ops.AddRelu(Ops.BatchNorm2d(x, g, b, rm, rv, training: false), res);
        Close.Assert(fused, unfused, 0, 0, "eval bn + add + relu");
    }

    // ---------------- convolution with its epilogue ----------------

    public sealed record ConvCase(string Name, int N, int C, int H, int W, int K, int R, Conv2dParams P)
    {
        public override string ToString() => Name;
    }

    public static readonly ConvCase[] ConvCases =
    [
        new("1x1 direct (whole slivers and a tail)", 2, 5, 15, 15, 11, 1, Conv2dParams.Of()),
        new("1x1 small images (packed)", 3, 6, 5, 5, 7, 1, Conv2dParams.Of()),
        new("1x1 stride 2 (gathered)", 2, 4, 20, 21, 9, 1, Conv2dParams.Of(stride: 2)),
        new("3x3 wide (shift planes)", 2, 3, 9, 20, 10, 3, Conv2dParams.Of(padding: 1)),
        new("3x3 narrow (packed im2col across images)", 3, 4, 6, 7, 9, 3, Conv2dParams.Of(padding: 1)),
        new("3x3 stride 2 groups 2", 2, 4, 11, 18, 6, 3, Conv2dParams.Of(stride: 2, padding: 1, groups: 2)),
        new("1x1 direct groups 2", 1, 6, 14, 14, 10, 1, Conv2dParams.Of(groups: 2)),
    ];

    /// <summary>conv, + bias, + residual, ReLU with the unfused ops.</summary>
    private static Tensor Unfused(Tensor x, Tensor w, Tensor? bias, Conv2dParams p, Tensor? res, bool relu)
    {
        var y = Ops.Conv2d(x, w, bias, p);
        if (res is not null) return relu ? Ops.AddRelu(y, res) : Ops.Add(y, res);
        return relu ? Ops.Relu(y) : y;
    }

    [TestCaseSource(nameof(ConvCases))]
    public void ConvEpilogueMatchesTheUnfusedOps(ConvCase c)
    {
        foreach (var isa in GemmTests.Isas()) GemmTests.WithIsa(isa, () => EpilogueCase(c, $"{c.Name} ({isa})"));
    }

    private static void EpilogueCase(ConvCase c, string name)
    {
        using var scope = TensorScope.Begin();
        using var ng = GradMode.NoGrad();
        var rng = new Random(6);
        var x = Tensor.Randn(new Shape(c.N, c.C, c.H, c.W), rng, DType.F64);
        var w = Tensor.Randn(new Shape(c.K, c.C / c.P.Groups, c.R, c.R), rng, DType.F64);
        var bias = Tensor.Randn(new Shape(c.K), rng, DType.F64);
        var (oh, ow) = c.P.OutputSize(c.H, c.W, c.R, c.R);
        var res = Tensor.Randn(new Shape(c.N, c.K, oh, ow), rng, DType.F64);
        foreach (var (b, r, relu) in new (Tensor?, Tensor?, bool)[] { (null, null, false), (bias, null, true), (null, res, true), (bias, res, false), (bias, res, true) })
        {
            string what = $"{name}: bias {b is not null}, residual {r is not null}, relu {relu}";
            Close.Assert(Ops.Conv2dAct(x, w, b, c.P, r, relu), Unfused(x, w, b, c.P, r, relu), 1e-12, 1e-12, what);
        }
        // Weights prepared once by the backend give the same result, call after call.
        using var prepared = x.Backend.PrepareConvWeights(w, c.P);
        Assert.That(prepared, Is.Not.Null, "the CPU backend prepares convolution weights");
        var expected = Unfused(x, w, bias, c.P, res, true);
        for (int i = 0; i < 2; i++)
            Close.Assert(Ops.Conv2dFused(x, w, bias, c.P, res, true, prepared), expected, 1e-12, 1e-12, $"{name}: prepared, call {i + 1}");
    }

    [Test]
    public void ConvEpilogueInF32MatchesF64AndKeepsNaN()
    {
        using var scope = TensorScope.Begin();
        using var ng = GradMode.NoGrad();
        var rng = new Random(7);
        var c = ConvCases[0];
        var x = Tensor.Randn(new Shape(c.N, c.C, c.H, c.W), rng, DType.F64);
        var w = Tensor.Randn(new Shape(c.K, c.C, 1, 1), rng, DType.F64);
        var res = Tensor.Randn(new Shape(c.N, c.K, c.H, c.W), rng, DType.F64);
        var resValues = res.ToDoubles();
        resValues[17] = double.NaN;
        res = Tensor.FromDoubles(resValues, res.Shape, DType.F64);
        var y64 = Ops.Conv2dAct(x, w, null, c.P, res, relu: true).ToDoubles();
        var y32 = Ops.Conv2dAct(x.To(DType.F32), w.To(DType.F32), null, c.P, res.To(DType.F32), relu: true).ToDoubles();
        Assert.That(double.IsNaN(y64[17]) && double.IsNaN(y32[17]), Is.True, "ReLU of NaN is NaN, as Pointwise.Relu");
        y64[17] = y32[17] = 0;
        Close.Assert(y32, y64, 1e-4, 1e-4, "F32 against F64");
    }

    [Test]
    public void ConvActWithGradientPassesGradCheck()
    {
        using var scope = TensorScope.Begin();
        var rng = new Random(8);
        var x = GradCheck.Leaf(rng, 2, 3, 6, 5);
        var w = GradCheck.Leaf(rng, 4, 3, 3, 3);
        var b = GradCheck.Leaf(rng, 4);
        var res = GradCheck.Leaf(rng, 2, 4, 6, 5);
        // The numerical side runs without grad (the fused call), the analytical side through the unfused ops.
        GradCheck.Run(t => Ops.Conv2dAct(t[0], t[1], t[2], Conv2dParams.Of(padding: 1), t[3], relu: true), [x, w, b, res]);
    }

    [Test]
    public void PreparedWeightsAreCheckedAgainstTheCall()
    {
        using var scope = TensorScope.Begin();
        using var ng = GradMode.NoGrad();
        var rng = new Random(9);
        var x = Tensor.Randn(new Shape(1, 4, 6, 6), rng, DType.F64);
        var w = Tensor.Randn(new Shape(5, 4, 3, 3), rng, DType.F64);
        var other = Tensor.Randn(new Shape(5, 4, 1, 1), rng, DType.F64);
        using var prepared = CpuBackend.Instance.PrepareConvWeights(w, Conv2dParams.Of(padding: 1))!;
        var e = Assert.Throws<ArgumentException>(() => Ops.Conv2dFused(x, other, null, Conv2dParams.Of(), null, false, prepared));
        Assert.That(e!.Message, Does.Contain("prepared weights"));
        prepared.Dispose();
        Assert.Throws<ObjectDisposedException>(() => Ops.Conv2dFused(x, w, null, Conv2dParams.Of(padding: 1), null, false, prepared));
        var wrongResidual = Tensor.Zeros(new Shape(1, 5, 5, 5), DType.F64);
        var r = Assert.Throws<ArgumentException>(() => Ops.Conv2dAct(x, w, null, Conv2dParams.Of(padding: 1), wrongResidual));
        Assert.That(r!.Message, Does.Contain("residual"));
    }

    [Test]
    public void PreparedWeightsDoNotReadTheWeightTensor()
    {
        using var scope = TensorScope.Begin();
        using var ng = GradMode.NoGrad();
        var rng = new Random(10);
        var x = Tensor.Randn(new Shape(2, 4, 16, 16), rng, DType.F32);
        var w = Tensor.Randn(new Shape(8, 4, 3, 3), rng, DType.F32);
        var p = Conv2dParams.Of(padding: 1);
        using var prepared = x.Backend.PrepareConvWeights(w, p);
        var expected = Ops.Conv2d(x, w, null, p).ToDoubles();
        long version = w.Storage.Version;
        var y = Ops.Conv2dFused(x, w, null, p, null, false, prepared);
        Assert.That(w.Storage.Version, Is.EqualTo(version), "the fused call with prepared weights must not take the weights' address");
        Close.Assert(y.ToDoubles(), expected, 1e-5, 1e-5, "prepared F32");
    }
}
