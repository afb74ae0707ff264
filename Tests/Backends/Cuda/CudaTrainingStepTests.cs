// A whole small CNN training step (conv+bias -> BN -> ReLU -> max pool -> global average pool ->
// linear -> softmax cross-entropy, backward, SGD with momentum and weight decay) run op by op on the
// CPU and on the GPU backend: same loss, same gradients, same updated parameters. Plus the device
// memory contract: a scope returns the allocator and the live-byte counters to where they were, and
// an allocation larger than the GPU raises CudaOutOfMemoryException while the engine keeps working.
using NUnit.Framework;
using ResidualEngine.Backends;
using ResidualEngine.Backends.Cuda;

namespace ResidualEngine.Tests.Backends.Cuda;

[Category("Gpu")]
public class CudaTrainingStepTests : GpuTestBase
{
    private sealed record StepResult(Tensor Loss, Dictionary<string, Tensor> Grads, Dictionary<string, Tensor> Params, Tensor RunningVar);

    private static StepResult Step(IBackend be, Device dev, Dictionary<string, Tensor> init, Tensor xCpu, Tensor labelsCpu)
    {
        Tensor On(Tensor t) => t.To(dev);
        Tensor New(params int[] dims) => NewOf(new Shape(dims));
        Tensor NewOf(Shape s) => Tensor.Full(s, double.NaN, DType.F32, dev);
        var p = init.ToDictionary(kv => kv.Key, kv => On(kv.Value));
        var x = On(xCpu);
        var labels = On(labelsCpu);
        int n = x.Shape[0], k = 8, classes = 10;
        var conv = Conv2dParams.Of(1, 1);
        var pool = Pool2dParams.Of(3, 2, 1);

        // forward
        var c1 = New(n, k, 12, 12);
        be.ConvForward(c1, x, p["conv.weight"], p["conv.bias"], conv);
        var bn = New(n, k, 12, 12);
        var sm = New(k);
        var si = New(k);
        be.BatchNormForwardTraining(bn, c1, p["bn.weight"], p["bn.bias"], p["bn.running_mean"], p["bn.running_var"], sm, si, 0.1, 1e-5);
        var r = New(n, k, 12, 12);
        be.Map<Pointwise.Relu>(r, bn, 0, 0);
        var mp = New(n, k, 6, 6);
        var idx = Tensor.Full(mp.Shape, -1, DType.I32, dev);
        be.MaxPoolForward(mp, idx, r, pool);
        var gap = New(n, k, 1, 1);
        be.GlobalAvgPoolForward(gap, mp);
        var feat = gap.View(new Shape(n, k));
        var logits = New(n, classes);
        be.Gemm(logits, feat, p["fc.weight"], false, true, 1, 0);
        be.Map<Pointwise.Add>(logits, logits, p["fc.bias"], Pointwise.Broadcast.Columns(logits), 0, 0);
        var loss = New();
        var probs = New(n, classes);
        be.SoftmaxCrossEntropyForward(loss, probs, logits, labels, 0.1);

        // backward
        var grads = new Dictionary<string, Tensor>();
        var dLoss = Tensor.Full(Shape.Scalar, 1.0, DType.F32, dev);
        var dLogits = New(n, classes);
        be.SoftmaxCrossEntropyBackward(dLogits, dLoss, probs, labels, 0.1);
        grads["fc.weight"] = New(classes, k);
        be.Gemm(grads["fc.weight"], dLogits, feat, true, false, 1, 0);
        grads["fc.bias"] = New(classes);
        be.SumTo(grads["fc.bias"], dLogits, Pointwise.Broadcast.Columns(dLogits));
        var dFeat = New(n, k);
        be.Gemm(dFeat, dLogits, p["fc.weight"], false, false, 1, 0);
        var dMp = New(n, k, 6, 6);
        be.GlobalAvgPoolBackward(dMp, dFeat.View(new Shape(n, k, 1, 1)));
        var dR = New(n, k, 12, 12);
        be.MaxPoolBackward(dR, dMp, idx, pool);
        var dBn = New(n, k, 12, 12);
        be.Map<Pointwise.ReluBackward>(dBn, dR, r, Pointwise.Broadcast.Same(dR), 0, 0);
        var dC1 = New(n, k, 12, 12);
        grads["bn.weight"] = New(k);
        grads["bn.bias"] = New(k);
        be.BatchNormBackward(dC1, grads["bn.weight"], grads["bn.bias"], dBn, c1, p["bn.weight"], sm, si);
        grads["conv.weight"] = New(k, 3, 3, 3);
        be.ConvBackwardFilter(grads["conv.weight"], dC1, x, conv);
        grads["conv.bias"] = New(k);
        be.SumTo(grads["conv.bias"], dC1, Pointwise.Broadcast.Channels(dC1));
        var dX = NewOf(x.Shape);
        be.ConvBackwardData(dX, dC1, p["conv.weight"], conv);
        grads["input"] = dX;

        // SGD, first step, momentum 0.9, weight decay 1e-4 (BN parameters included, as a plain loop would)
        foreach (var name in new[] { "conv.weight", "conv.bias", "bn.weight", "bn.bias", "fc.weight", "fc.bias" })
        {
            var buf = NewOf(p[name].Shape);
            be.SgdUpdate(p[name], grads[name], buf, 0.1, 0.9, 0, 1e-4, true, true);
        }
        return new StepResult(loss, grads, p, p["bn.running_var"]);
    }

    [Test]
    public void SmallCnnTrainingStepMatchesCpu()
    {
        var rng = new Random(31);
        var init = new Dictionary<string, Tensor>
        {
            ["conv.weight"] = Tensor.Randn(new Shape(8, 3, 3, 3), rng, std: 0.3),
            ["conv.bias"] = Rand(rng, 8),
            ["bn.weight"] = Tensor.Rand(new Shape(8), rng, 0.5, 1.5),
            ["bn.bias"] = Rand(rng, 8),
            ["bn.running_mean"] = Tensor.Zeros(new Shape(8)),
            ["bn.running_var"] = Tensor.Ones(new Shape(8)),
            ["fc.weight"] = Tensor.Randn(new Shape(10, 8), rng, std: 0.3),
            ["fc.bias"] = Rand(rng, 10),
        };
        var x = Tensor.Randn(new Shape(4, 3, 12, 12), rng);
        var labels = Tensor.FromArray(new long[] { 3, 0, 9, 3 }, new Shape(4));

        var cpu = Step(Cpu, Device.Cpu, init, x, labels);
        var gpu = Step(Gpu, Dev, init, x, labels);
        Near(gpu.Loss, cpu.Loss, "loss");
        foreach (var (name, g) in cpu.Grads) Near(gpu.Grads[name], g, "grad " + name);
        foreach (var (name, v) in cpu.Params) Near(gpu.Params[name], v, "updated " + name);
        Assert.That(cpu.Loss.Item(), Is.GreaterThan(0.5), "the loss is a real cross-entropy, not zero");
    }

    [Test]
    public void ScopeReturnsDeviceMemoryToWhereItWas()
    {
        var rng = new Random(32);
        Gpu.Synchronize();
        long allocated = Gpu.Allocator.Stats.AllocatedBytes, live = TensorStats.LiveBytes(DeviceType.Cuda);
        using (TensorScope.Begin())
        {
            var a = G(Rand(rng, 123, 457));
            var b = G(Rand(rng, 123, 457));
            var y = GpuOut(a.Shape);
            Gpu.Map<Pointwise.Add>(y, a, b, Pointwise.Broadcast.Same(a), 0, 0);
            var s = GpuOut(Shape.Scalar);
            Gpu.SumTo(s, y, Pointwise.Broadcast.All(y)); // uses a scratch buffer
            Assert.That(Gpu.Allocator.Stats.AllocatedBytes, Is.GreaterThan(allocated));
            Assert.That(s.Item(), Is.Not.NaN);
        }
        Assert.That(Gpu.Allocator.Stats.AllocatedBytes, Is.EqualTo(allocated));
        Assert.That(TensorStats.LiveBytes(DeviceType.Cuda), Is.EqualTo(live));
    }

    [Test]
    public void AllocationLargerThanTheGpuRaisesOutOfMemoryAndTheEngineStillWorks()
    {
        var (_, total) = Gpu.DeviceMemory();
        long allocated = Gpu.Allocator.Stats.AllocatedBytes, live = TensorStats.LiveBytes(DeviceType.Cuda);
        int rows = checked((int)(total / (1L << 20) * 2)); // rows of 2^18 F32 = 1 MiB each: twice the device
        var e = Assert.Throws<CudaOutOfMemoryException>(() => Tensor.Empty(new Shape(rows, 1 << 18), DType.F32, Dev));
        Assert.That(e!.RequestedBytes, Is.GreaterThan(total));
        Assert.That(e.TotalBytes, Is.EqualTo(total));
        Assert.That(e.Message, Does.Contain("out of memory").And.Contain("free").And.Contain("cached"));
        Assert.That(Gpu.Allocator.Stats.AllocatedBytes, Is.EqualTo(allocated));
        Assert.That(TensorStats.LiveBytes(DeviceType.Cuda), Is.EqualTo(live));

        var t = Tensor.Full(new Shape(1000), 2, DType.F32, Dev);
        var y = GpuOut(t.Shape);
        Gpu.Map<Pointwise.Add>(y, t, t, Pointwise.Broadcast.Same(t), 0, 0);
        Assert.That(y.ToFloats(), Has.All.EqualTo(4f));
    }

    [Test]
    public void TensorMovesToTheGpuAndBack()
    {
        var rng = new Random(33);
        var cpu = Rand(rng, 17, 3);
        var gpu = cpu.To(Dev);
        Assert.That(gpu.Device, Is.EqualTo(Dev));
        Assert.That(gpu.Backend, Is.SameAs(Gpu));
        Exact(gpu, cpu, "round trip through Tensor.To");
        Assert.That(gpu.To(DType.F64).To(Device.Cpu).ToDoubles(), Is.EqualTo(cpu.ToDoubles()).Within(1e-7));
    }
}
