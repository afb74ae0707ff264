// GPU vs CPU for the memory, dense, loss, shortcut and SGD ops of IBackend (the pointwise family is
// in CudaPointwiseParityTests), in F32 with
// random inputs of odd sizes and NaN-poisoned outputs, within atol 1e-3 / rtol 1e-3 (F64 tighter).
using NUnit.Framework;
using ResidualEngine.Backends.Cuda;

namespace ResidualEngine.Tests.Backends.Cuda;

[Category("Gpu")]
public class CudaParityTests : GpuTestBase
{
    [TestCase(DType.F32)]
    [TestCase(DType.F64)]
    [TestCase(DType.F16)]
    [TestCase(DType.BF16)]
    [TestCase(DType.I64)]
    [TestCase(DType.I32)]
    [TestCase(DType.U8)]
    public void CopiesRoundTripExactly(DType dt)
    {
        var rng = new Random(1);
        var v = Enumerable.Range(0, 1001).Select(_ => Math.Round(rng.NextDouble() * 200)).ToArray();
        var cpu = Tensor.FromDoubles(v, new Shape(7, 11, 13), dt);
        var gpu = G(cpu);
        Exact(gpu, cpu, $"copy {dt}");
        var copy = GpuOut(cpu.Shape, dt);
        Gpu.Copy(copy, gpu);
        Exact(copy, cpu, $"device copy {dt}");
    }

    [Test]
    public void LargeCopiesGoThroughStagingInChunks()
    {
        var rng = new Random(2);
        var cpu = Rand(rng, 9_000_001); // > 32 MiB: several staging chunks
        Exact(G(cpu), cpu, "36 MB round trip");
    }

    [TestCase(DType.F32, 2.5)]
    [TestCase(DType.F64, -1.25)]
    [TestCase(DType.F16, 0.5)]
    [TestCase(DType.BF16, 3)]
    [TestCase(DType.I64, -3)]
    [TestCase(DType.I32, 123456)]
    [TestCase(DType.U8, 200)]
    public void FillMatchesCpu(DType dt, double value)
    {
        var g = GpuOut(new Shape(3, 1001), dt);
        Gpu.Fill(g, value);
        var c = CpuOut(new Shape(3, 1001), dt);
        Cpu.Fill(c, value);
        Exact(g, c, $"fill {dt}");
    }

    [TestCase(DType.F32, DType.F16)]
    [TestCase(DType.F32, DType.BF16)]
    [TestCase(DType.F16, DType.F32)]
    [TestCase(DType.BF16, DType.F32)]
    [TestCase(DType.F32, DType.F64)]
    [TestCase(DType.F64, DType.F32)]
    [TestCase(DType.I64, DType.F32)]
    [TestCase(DType.F32, DType.I32)]
    [TestCase(DType.U8, DType.F32)]
    public void CastMatchesCpu(DType from, DType to)
    {
        var rng = new Random(3);
        var v = Enumerable.Range(0, 777).Select(_ => (rng.NextDouble() - 0.3) * 100).ToArray();
        if (from is DType.U8) v = v.Select(Math.Abs).ToArray();
        var src = Tensor.FromDoubles(v, new Shape(777), from);
        var c = CpuOut(src.Shape, to);
        Cpu.Cast(c, src);
        var g = GpuOut(src.Shape, to);
        Gpu.Cast(g, G(src));
        Near(g, c, $"cast {from} -> {to}", 1e-6, 1e-6);
    }

    [TestCase(false, false, 1.0, 0.0)]
    [TestCase(true, false, 0.5, 0.0)]
    [TestCase(false, true, 1.0, 1.0)]
    [TestCase(true, true, -2.0, 0.5)]
    public void Gemm(bool ta, bool tb, double alpha, double beta)
    {
        var rng = new Random(8);
        int m = 37, k = 53, n = 29;
        var a = ta ? Rand(rng, k, m) : Rand(rng, m, k);
        var b = tb ? Rand(rng, n, k) : Rand(rng, k, n);
        var c0 = beta == 0 ? Tensor.Full(new Shape(m, n), double.NaN) : Rand(rng, m, n);
        var c = c0.To(Device.Cpu);
        Cpu.Gemm(c, a, b, ta, tb, alpha, beta);
        var g = G(c0);
        Gpu.Gemm(g, G(a), G(b), ta, tb, alpha, beta);
        Near(g, c, $"gemm ta={ta} tb={tb}");
    }

    [Test]
    public void GemmF64()
    {
        var rng = new Random(9);
        var a = RandF64(rng, 17, 19);
        var b = RandF64(rng, 19, 23);
        var c = CpuOut(new Shape(17, 23), DType.F64);
        Cpu.Gemm(c, a, b, false, false, 1, 0);
        var g = GpuOut(c.Shape, DType.F64);
        Gpu.Gemm(g, G(a), G(b), false, false, 1, 0);
        Near(g, c, "dgemm", 1e-10, 1e-10);
    }

    [TestCase(0.0)]
    [TestCase(0.1)]
    public void SoftmaxCrossEntropy(double smoothing)
    {
        var rng = new Random(11);
        int n = 13, k = 1001;
        var logits = Tensor.Rand(new Shape(n, k), rng, -5, 5);
        var labels = Tensor.FromArray(Enumerable.Range(0, n).Select(_ => (long)rng.Next(k)).ToArray(), new Shape(n));
        var loss = CpuOut(Shape.Scalar);
        var probs = CpuOut(logits.Shape);
        Cpu.SoftmaxCrossEntropyForward(loss, probs, logits, labels, smoothing);
        var gl = GpuOut(Shape.Scalar);
        var gp = GpuOut(logits.Shape);
        var glab = G(labels);
        Gpu.SoftmaxCrossEntropyForward(gl, gp, G(logits), glab, smoothing);
        Near(gl, loss, "loss");
        Near(gp, probs, "probs");

        var dLoss = Tensor.Full(Shape.Scalar, 2.5);
        var d = CpuOut(logits.Shape);
        Cpu.SoftmaxCrossEntropyBackward(d, dLoss, probs, labels, smoothing);
        var gd = GpuOut(logits.Shape);
        Gpu.SoftmaxCrossEntropyBackward(gd, G(dLoss), gp, glab, smoothing);
        Near(gd, d, "dLogits");
    }

    [TestCase(2, 4)]
    [TestCase(1, 0)]
    [TestCase(2, 8)]
    public void ShortcutA(int stride, int padBefore)
    {
        var rng = new Random(12);
        int n = 3, c = 5, h = 9, w = 7;
        int k = c + 2 * padBefore, p = (h + stride - 1) / stride, q = (w + stride - 1) / stride;
        var x = Rand(rng, n, c, h, w);
        var y = CpuOut(new Shape(n, k, p, q));
        Cpu.ShortcutAForward(y, x, stride, padBefore);
        var gy = GpuOut(y.Shape);
        Gpu.ShortcutAForward(gy, G(x), stride, padBefore);
        Near(gy, y, "ShortcutAForward");

        var dy = Rand(rng, n, k, p, q);
        var dx = CpuOut(x.Shape);
        Cpu.ShortcutABackward(dx, dy, stride, padBefore);
        var gdx = GpuOut(x.Shape);
        Gpu.ShortcutABackward(gdx, G(dy), stride, padBefore);
        Near(gdx, dx, "ShortcutABackward");
    }

    [TestCase(0.0, 0.0, 0.0, false)]
    [TestCase(0.9, 0.0, 1e-4, false)]
    [TestCase(0.9, 0.0, 1e-4, true)]
    [TestCase(0.5, 0.3, 0.01, false)]
    public void SgdUpdate(double momentum, double dampening, double wd, bool nesterov)
    {
        var rng = new Random(13);
        var p = Rand(rng, 1031);
        var gp = G(p);
        var buf = momentum != 0 ? Tensor.Full(p.Shape, double.NaN) : null; // the first step must not read it
        var gbuf = buf is null ? null : G(buf);
        for (int step = 0; step < 3; step++)
        {
            var grad = Rand(rng, 1031);
            double lr = 0.1 / (step + 1);
            Cpu.SgdUpdate(p, grad, buf, lr, momentum, dampening, wd, nesterov, step == 0);
            Gpu.SgdUpdate(gp, G(grad), gbuf, lr, momentum, dampening, wd, nesterov, step == 0);
        }
        Near(gp, p, "param after 3 steps");
        if (buf is not null) Near(gbuf!, buf, "momentum buffer");
    }
}
