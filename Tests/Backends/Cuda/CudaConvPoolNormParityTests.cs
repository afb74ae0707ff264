// GPU vs CPU for convolution (cuDNN, with stride, padding, dilation, groups and bias), batch norm
// (cuDNN and our own kernels: outputs, saved statistics, running statistics with the unbiased
// variance, backward) and pooling (max with indices, average with count_include_pad and ceil mode,
// global). F32, odd sizes, NaN-poisoned outputs, atol 1e-3 / rtol 1e-3.
using NUnit.Framework;
using ResidualEngine.Backends;

namespace ResidualEngine.Tests.Backends.Cuda;

[Category("Gpu")]
public class CudaConvPoolNormParityTests : GpuTestBase
{
    private static readonly object[] ConvCases =
    [
        new object[] { 3, 5, 11, 13, 7, 3, 3, Conv2dParams.Of(1, 1), true },
        new object[] { 2, 6, 12, 9, 4, 3, 3, Conv2dParams.Of(2, 1, 1, 2), false },
        new object[] { 2, 4, 15, 15, 8, 3, 3, Conv2dParams.Of(1, 2, 2, 1), true },
        new object[] { 4, 3, 17, 17, 16, 7, 7, Conv2dParams.Of(2, 3), false },
        new object[] { 5, 8, 7, 7, 12, 1, 1, Conv2dParams.Of(1, 0), true },
    ];

    [TestCaseSource(nameof(ConvCases))]
    public void Convolution(int n, int c, int h, int w, int k, int r, int s, Conv2dParams p, bool withBias)
    {
        var rng = new Random(n * 1000 + c * 100 + k);
        var (outH, outW) = p.OutputSize(h, w, r, s);
        var x = Rand(rng, n, c, h, w);
        var wt = Rand(rng, k, c / p.Groups, r, s);
        var bias = withBias ? Rand(rng, k) : null;
        var y = CpuOut(new Shape(n, k, outH, outW));
        Cpu.ConvForward(y, x, wt, bias, p);
        var gx = G(x);
        var gw = G(wt);
        var gy = GpuOut(y.Shape);
        Gpu.ConvForward(gy, gx, gw, bias is null ? null : G(bias), p);
        Near(gy, y, "ConvForward");

        var dy = Rand(rng, n, k, outH, outW);
        var gdy = G(dy);
        var dx = CpuOut(x.Shape);
        Cpu.ConvBackwardData(dx, dy, wt, p);
        var gdx = GpuOut(x.Shape);
        Gpu.ConvBackwardData(gdx, gdy, gw, p);
        Near(gdx, dx, "ConvBackwardData");

        var dw = CpuOut(wt.Shape);
        Cpu.ConvBackwardFilter(dw, dy, x, p);
        var gdw = GpuOut(wt.Shape);
        Gpu.ConvBackwardFilter(gdw, gdy, gx, p);
        Near(gdw, dw, "ConvBackwardFilter");

        var db = CpuOut(new Shape(k));
        Cpu.SumTo(db, dy, Pointwise.Broadcast.Channels(dy));
        var gdb = GpuOut(new Shape(k));
        Gpu.SumTo(gdb, gdy, Pointwise.Broadcast.Channels(gdy));
        Near(gdb, db, "bias gradient (SumTo per channel)");
    }

    [Test]
    public void ConvolutionPlansAreCachedPerShape()
    {
        var rng = new Random(21);
        var p = Conv2dParams.Of(1, 1);
        var x = G(Rand(rng, 2, 3, 10, 10));
        var w = G(Rand(rng, 4, 3, 3, 3));
        var y = GpuOut(new Shape(2, 4, 10, 10));
        Gpu.ConvForward(y, x, w, null, p);
        int plans = Gpu.ConvPlanCount;
        Gpu.ConvForward(y, x, w, null, p);
        Assert.That(Gpu.ConvPlanCount, Is.EqualTo(plans), "same shape, same plan");
        var x2 = G(Rand(rng, 3, 3, 10, 10));
        Gpu.ConvForward(GpuOut(new Shape(3, 4, 10, 10)), x2, w, null, p);
        Assert.That(Gpu.ConvPlanCount, Is.EqualTo(plans + 1), "a new batch size is a new plan");
    }

    [Test]
    public void ConvolutionF64()
    {
        var rng = new Random(22);
        var p = Conv2dParams.Of(1, 1);
        var x = RandF64(rng, 2, 3, 8, 8);
        var w = RandF64(rng, 5, 3, 3, 3);
        var y = CpuOut(new Shape(2, 5, 8, 8), DType.F64);
        Cpu.ConvForward(y, x, w, null, p);
        var gy = GpuOut(y.Shape, DType.F64);
        Gpu.ConvForward(gy, G(x), G(w), null, p);
        Near(gy, y, "conv f64", 1e-10, 1e-10);
    }

    // eps 1e-3 checks that the backward (which gets no eps) is right for any forward eps: cuDNN must use the
    // saved statistics, not recompute with the eps it is handed.
    [TestCase(true, 1e-5)]
    [TestCase(true, 1e-3)]
    [TestCase(false, 1e-5)]
    [TestCase(false, 1e-3)]
    public void BatchNormTrainingInferenceAndBackward(bool cudnn, double eps)
    {
        Gpu.UseCudnnBatchNorm = cudnn;
        var rng = new Random(23);
        int n = 3, c = 7, h = 9, w = 11;
        // Small variance (~3.3e-3) around a mean of 0.5: eps matters (1e-3 vs 1e-5 changes invStd by ~14%,
        // far beyond the tolerance), while the mean offset is mild enough for any sound variance formula.
        var x = Tensor.Rand(new Shape(n, c, h, w), rng, 0.4, 0.6);
        var gamma = Tensor.Rand(new Shape(c), rng, 0.5, 1.5);
        var beta = Rand(rng, c);
        var rm = Rand(rng, c);
        var rv = Tensor.Rand(new Shape(c), rng, 0.5, 2);
        var grm = G(rm);
        var grv = G(rv);

        var y = CpuOut(x.Shape);
        var sm = CpuOut(new Shape(c));
        var si = CpuOut(new Shape(c));
        Cpu.BatchNormForwardTraining(y, x, gamma, beta, rm, rv, sm, si, 0.1, eps);
        var gy = GpuOut(x.Shape);
        var gsm = GpuOut(new Shape(c));
        var gsi = GpuOut(new Shape(c));
        Gpu.BatchNormForwardTraining(gy, G(x), G(gamma), G(beta), grm, grv, gsm, gsi, 0.1, eps);
        Near(gy, y, "BN y");
        Near(gsm, sm, "BN saved mean");
        Near(gsi, si, "BN saved invStd (biased variance)");
        Near(grm, rm, "BN running mean");
        Near(grv, rv, "BN running var (unbiased variance)");

        var yi = CpuOut(x.Shape);
        Cpu.BatchNormForwardInference(yi, x, gamma, beta, rm, rv, eps);
        var gyi = GpuOut(x.Shape);
        Gpu.BatchNormForwardInference(gyi, G(x), G(gamma), G(beta), grm, grv, eps);
        Near(gyi, yi, "BN inference");

        var dy = Rand(rng, n, c, h, w);
        var dx = CpuOut(x.Shape);
        var dg = CpuOut(new Shape(c));
        var db = CpuOut(new Shape(c));
        Cpu.BatchNormBackward(dx, dg, db, dy, x, gamma, sm, si);
        var gdx = GpuOut(x.Shape);
        var gdg = GpuOut(new Shape(c));
        var gdb = GpuOut(new Shape(c));
        Gpu.BatchNormBackward(gdx, gdg, gdb, G(dy), G(x), G(gamma), G(sm), G(si));
        Near(gdx, dx, "BN dX");
        Near(gdg, dg, "BN dGamma");
        Near(gdb, db, "BN dBeta");
    }

    // The running variance must use the unbiased batch variance (IBackend's contract, as PyTorch). With
    // momentum 1 it equals the batch statistic, and with M = N*H*W = 8 the unbiased factor 8/7 is far
    // outside the tolerance, so a biased update cannot pass. Computed here from x, not from the CPU backend.
    [TestCase(true)]
    [TestCase(false)]
    public void BatchNormRunningVarianceIsUnbiased(bool cudnn)
    {
        Gpu.UseCudnnBatchNorm = cudnn;
        var rng = new Random(28);
        int n = 2, c = 3, h = 2, w = 2, m = n * h * w;
        var x = Tensor.Rand(new Shape(n, c, h, w), rng, -3, 3);
        var xs = x.ToDoubles();
        var rm = G(Tensor.Zeros(new Shape(c)));
        var rv = G(Tensor.Ones(new Shape(c)));
        var si = GpuOut(new Shape(c));
        Gpu.BatchNormForwardTraining(GpuOut(x.Shape), G(x), G(Tensor.Ones(new Shape(c))), G(Tensor.Zeros(new Shape(c))),
            rm, rv, GpuOut(new Shape(c)), si, 1.0, 1e-5);
        var expectedMean = new double[c];
        var expectedVar = new double[c];
        var expectedInvStd = new double[c];
        for (int ch = 0; ch < c; ch++)
        {
            var v = Enumerable.Range(0, n).SelectMany(b => Enumerable.Range(0, h * w).Select(i => xs[(b * c + ch) * h * w + i])).ToArray();
            double mean = v.Average(), ss = v.Sum(e => (e - mean) * (e - mean));
            expectedMean[ch] = mean;
            expectedVar[ch] = ss / (m - 1);
            expectedInvStd[ch] = 1 / Math.Sqrt(ss / m + 1e-5);
        }
        Close.Assert(rm.To(Device.Cpu).ToDoubles(), expectedMean, 1e-4, 1e-4, "running mean");
        Close.Assert(rv.To(Device.Cpu).ToDoubles(), expectedVar, 1e-4, 1e-4, "running var is the unbiased variance");
        Close.Assert(si.To(Device.Cpu).ToDoubles(), expectedInvStd, 1e-4, 1e-4, "saved invStd uses the biased variance");
    }

    [Test]
    public void BatchNormWithTinyEpsUsesOurKernels()
    {
        var rng = new Random(24);
        int c = 4;
        var x = Rand(rng, 2, c, 5, 5);
        var gamma = Tensor.Ones(new Shape(c));
        var beta = Tensor.Zeros(new Shape(c));
        var rm = Tensor.Zeros(new Shape(c));
        var rv = Tensor.Ones(new Shape(c));
        var grm = G(rm);
        var grv = G(rv);
        var y = CpuOut(x.Shape);
        Cpu.BatchNormForwardTraining(y, x, gamma, beta, rm, rv, CpuOut(new Shape(c)), CpuOut(new Shape(c)), 0.1, 1e-7);
        var gy = GpuOut(x.Shape);
        Gpu.BatchNormForwardTraining(gy, G(x), G(gamma), G(beta), grm, grv, GpuOut(new Shape(c)), GpuOut(new Shape(c)), 0.1, 1e-7);
        Near(gy, y, "BN eps 1e-7");
        Near(grv, rv, "running var");
    }

    private static readonly object[] PoolCases =
    [
        new object[] { Pool2dParams.Of(3, 2, 1) },
        new object[] { Pool2dParams.Of(3, 2, 1, ceilMode: true) },
        new object[] { Pool2dParams.Of(2, 2) },
        new object[] { Pool2dParams.Of(3, 1, 1, countIncludePad: false) },
        new object[] { Pool2dParams.Of(3, 2, 1, ceilMode: true, countIncludePad: false) },
        new object[] { new Pool2dParams(3, 2, 2, 1, 1, 0) },
    ];

    [TestCaseSource(nameof(PoolCases))]
    public void MaxPool(Pool2dParams p)
    {
        var rng = new Random(25);
        int n = 2, c = 3, h = 13, w = 10;
        var (ph, pw) = p.OutputSize(h, w);
        var x = Rand(rng, n, c, h, w);
        var y = CpuOut(new Shape(n, c, ph, pw));
        var idx = CpuOut(y.Shape, DType.I32);
        Cpu.MaxPoolForward(y, idx, x, p);
        var gy = GpuOut(y.Shape);
        var gidx = GpuOut(y.Shape, DType.I32);
        Gpu.MaxPoolForward(gy, gidx, G(x), p);
        Near(gy, y, "MaxPoolForward");
        Exact(gidx, idx, "argmax indices");

        var dy = Rand(rng, n, c, ph, pw);
        var dx = CpuOut(x.Shape);
        Cpu.MaxPoolBackward(dx, dy, idx, p);
        var gdx = GpuOut(x.Shape);
        Gpu.MaxPoolBackward(gdx, G(dy), gidx, p);
        Near(gdx, dx, "MaxPoolBackward");
    }

    [TestCaseSource(nameof(PoolCases))]
    public void AvgPool(Pool2dParams p)
    {
        var rng = new Random(26);
        int n = 2, c = 3, h = 13, w = 10;
        var (ph, pw) = p.OutputSize(h, w);
        var x = Rand(rng, n, c, h, w);
        var y = CpuOut(new Shape(n, c, ph, pw));
        Cpu.AvgPoolForward(y, x, p);
        var gy = GpuOut(y.Shape);
        Gpu.AvgPoolForward(gy, G(x), p);
        Near(gy, y, "AvgPoolForward");

        var dy = Rand(rng, n, c, ph, pw);
        var dx = CpuOut(x.Shape);
        Cpu.AvgPoolBackward(dx, dy, p);
        var gdx = GpuOut(x.Shape);
        Gpu.AvgPoolBackward(gdx, G(dy), p);
        Near(gdx, dx, "AvgPoolBackward");
    }

    [TestCase(2, 5, 7, 7)]
    [TestCase(3, 33, 1, 1)]
    [TestCase(1, 3, 56, 57)]
    public void GlobalAvgPool(int n, int c, int h, int w)
    {
        var rng = new Random(27);
        var x = Rand(rng, n, c, h, w);
        var y = CpuOut(new Shape(n, c, 1, 1));
        Cpu.GlobalAvgPoolForward(y, x);
        var gy = GpuOut(y.Shape);
        Gpu.GlobalAvgPoolForward(gy, G(x));
        Near(gy, y, "GlobalAvgPoolForward");

        var dy = Rand(rng, n, c, 1, 1);
        var dx = CpuOut(x.Shape);
        Cpu.GlobalAvgPoolBackward(dx, dy);
        var gdx = GpuOut(x.Shape);
        Gpu.GlobalAvgPoolBackward(gdx, G(dy));
        Near(gdx, dx, "GlobalAvgPoolBackward");
    }
}
