// NCCL on one GPU (world size 1), the GPU half of data-parallel training: the communicator is
// set up from a unique id, all-reduces (sum, average) and broadcasts run on the device and leave
// one rank's values as they are, an asynchronous all-reduce on the communication stream is ordered
// before the kernels queued after its Wait, and a DistributedDataParallel step through NCCL gives
// the gradients of a plain step. Under the CPU emulator (no GPU) the one-rank fake libnccl.so.2
// stands in for NCCL (Tools/gpu/emu). Where a GPU is present NCCL must be too: a missing
// libnccl.so.2 fails with the paths the resolver tried.
using NUnit.Framework;
using ResidualEngine.Distributed;
using ResidualEngine.Native;
using ResidualEngine.Nn;
using ResidualEngine.Training.Distributed;

namespace ResidualEngine.Tests.Backends.Cuda;

[Category("Gpu")]
public class NcclTests : GpuTestBase
{
    private static NcclProcessGroup OneRank()
    {
        var report = LibraryResolver.Find(CudaLibrary.Nccl);
        if (!report.Found) Assert.Fail(new NativeLibraryNotFoundException(report).Message);
        return new NcclProcessGroup(SingleProcessGroup.Instance, Dev);
    }

    [Test]
    public void OneRankCollectivesRunOnTheDevice()
    {
        using var g = OneRank();
        Assert.That(g.Description, Does.StartWith("NCCL 2."));
        Assert.That((g.Rank, g.Size), Is.EqualTo((0, 1)));
        var rng = new Random(1);
        var cpu = Rand(rng, 1000);
        var x = G(cpu);
        g.AllReduce(x, ReduceOp.Sum);
        Exact(x, cpu, "sum of one rank");
        g.AllReduce(x, ReduceOp.Average);
        Exact(x, cpu, "average of one rank");
        g.Broadcast(x, 0);
        Exact(x, cpu, "broadcast from rank 0");
        var d = G(RandF64(rng, 17));
        using (var w = g.AllReduceAsync(d, ReduceOp.Max)) w.Wait();

        // Asynchronous: the work queued after Wait sees the reduced values.
        using var work = g.AllReduceAsync(x, ReduceOp.Average);
        work.Wait();
        using var doubled = Ops.Scale(x, 2);
        using var expected = Ops.Scale(cpu, 2);
        Exact(doubled, expected, "compute after the all-reduce");
    }

    [Test]
    public void ADataParallelStepThroughNcclGivesThePlainGradients()
    {
        using var g = OneRank();
        var rng = new Random(2);
        var x = G(Rand(rng, 6, 4));
        var y = Tensor.FromArray(new long[] { 0, 1, 2, 0, 1, 2 }, 6).To(Dev);
        var net = new Sequential(new Linear(4, 5, rng: new Random(3)), new Linear(5, 3, rng: new Random(4)));
        net.To(Dev);
        Ops.SoftmaxCrossEntropy(net.Forward(x), y).Backward();
        var plain = net.NamedParameters().ToDictionary(p => p.Name, p => p.Tensor.Grad!.To(Device.Cpu));
        foreach (var p in net.Parameters()) { p.Grad!.Dispose(); p.Grad = null; }

        using var ddp = new DistributedDataParallel(net, g, bucketBytes: 64, firstBucketBytes: 32);
        Assert.That(ddp.Buckets.Count, Is.GreaterThan(1));
        ddp.BeginStep();
        Ops.SoftmaxCrossEntropy(net.Forward(x), y).Backward();
        ddp.Synchronize();
        foreach (var (name, p) in net.NamedParameters()) Exact(p.Grad!, plain[name], name);
    }
}
