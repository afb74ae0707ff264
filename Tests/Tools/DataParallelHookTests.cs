// DistributedDataParallel in one process, against process groups that stand in for the others:
// buckets follow reverse registration order with torch's caps; the first bucket is sent while
// the backward pass is still computing (that is the overlap); the gradients become the average
// over ranks; a parameter this rank did not use gets the others' average, one no rank used keeps
// no gradient; a gradient arriving after its bucket was sent is an error; the stop vote reaches
// every rank. Also the pieces around it: resuming with another global batch, metrics summed over
// ranks, the --nproc launcher's command line.
using NUnit.Framework;
using ResidualEngine.Distributed;
using ResidualEngine.Nn;
using ResidualEngine.Nn.Optim;
using ResidualEngine.Training;
using ResidualEngine.Training.Distributed;

namespace ResidualEngine.Tests.Tools;

public class DataParallelHookTests
{
    /// <summary>Two linear layers and a parameter the forward pass never uses.</summary>
    private sealed class Net : Module
    {
        public Net()
        {
            A = RegisterModule("a", new Linear(4, 3, rng: new Random(1), dtype: DType.F64));
            B = RegisterModule("b", new Linear(3, 2, rng: new Random(2), dtype: DType.F64));
            var u = Tensor.Zeros(new Shape(5), DType.F64);
            u.RequiresGrad = true;
            RegisterParameter("unused", u);
        }

        public Linear A { get; }
        public Linear B { get; }
        public override Tensor Forward(Tensor x) => A.Forward(x).Then(B.Forward);
    }

    /// <summary>A stand-in for the other rank: it contributes 3x our values, and 1 wherever ours are 0.
    /// Records, at each bucket's send, which parameters already had a gradient.</summary>
    private sealed class PeerGroup(Net net) : ProcessGroup
    {
        public List<(long Elements, string[] WithGrad)> Sends { get; } = new();
        public double Vote { get; set; }
        public override int Rank => 0;
        public override int Size => 2;
        public override string Description => "test peer";
        public override void AllReduce(Span<double> values, ReduceOp op) { }
        public override void AllReduce(Span<long> values, ReduceOp op) { }
        public override void Broadcast(Span<byte> data, int root) { }
        public override byte[] AllGather(ReadOnlySpan<byte> mine) => [.. mine, .. mine];
        public override void Barrier() { }
        public override CollectiveWork AllReduceAsync(double[] values, ReduceOp op)
        {
            values[0] = Math.Max(values[0], Vote);
            return new Done();
        }

        public override CollectiveWork AllReduceAsync(Tensor t, ReduceOp op)
        {
            Assert.That(op, Is.EqualTo(ReduceOp.Average));
            Sends.Add((t.Numel, net.NamedParameters().Where(p => p.Tensor.Grad is not null).Select(p => p.Name).ToArray()));
            var v = t.ToDoubles().Select(x => (x + (x == 0 ? 1 : 3 * x)) / 2).ToArray();
            using var avg = Tensor.FromDoubles(v, t.Shape, t.DType);
            t.Backend.Copy(t, avg);
            return new Done();
        }

        public override void Broadcast(Tensor tensor, int root) { }
        public override void Abort(int exitCode) => throw new InvalidOperationException("abort");
        public override void Dispose() { }

        private sealed class Done : CollectiveWork { public override void Wait() { } }
    }

    private static (Tensor X, Tensor Y) Data()
    {
        var rng = new Random(3);
        return (Tensor.Randn(new Shape(6, 4), rng, DType.F64), Tensor.FromArray(new long[] { 0, 1, 1, 0, 1, 0 }, 6));
    }

    [Test]
    public void BucketsFollowReverseRegistrationWithTorchsCaps()
    {
        using var scope = TensorScope.Begin();
        var net = new Net();
        // Registration order: unused (the net's own), a.weight 96 B, a.bias 24 B, b.weight 48 B, b.bias 16 B.
        // Reversed, the first bucket holds at most 60 B, the others 100 B.
        using var ddp = new DistributedDataParallel(net, SingleProcessGroup.Instance, bucketBytes: 100, firstBucketBytes: 60);
        Assert.That(ddp.Buckets, Is.EqualTo(new[] { new[] { "b.bias" }, new[] { "b.weight", "a.bias" }, new[] { "a.weight" }, new[] { "unused" } }));
        using var big = new DistributedDataParallel(net, SingleProcessGroup.Instance);
        Assert.That(big.Buckets, Has.Count.EqualTo(1), "25 MiB holds this net");
    }

    [Test]
    public void GradientsAreAveragedAndTheFirstBucketLeavesDuringBackward()
    {
        using var scope = TensorScope.Begin();
        var net = new Net();
        var (x, y) = Data();
        Ops.SoftmaxCrossEntropy(net.Forward(x), y).Backward();
        var own = net.NamedParameters().Where(p => p.Tensor.Grad is not null).ToDictionary(p => p.Name, p => p.Tensor.Grad!.ToDoubles());
        foreach (var p in net.Parameters()) { p.Grad?.Dispose(); p.Grad = null; }

        var peer = new PeerGroup(net);
        using var ddp = new DistributedDataParallel(net, peer, bucketBytes: 100, firstBucketBytes: 60);
        ddp.BeginStep();
        Ops.SoftmaxCrossEntropy(net.Forward(x), y).Backward();
        Assert.That(peer.Sends, Has.Count.EqualTo(3), "every bucket with gradients was sent during the backward pass (the unused one waits for the synchronisation)");
        Assert.That(peer.Sends[0].WithGrad, Does.Not.Contain("a.weight"), "the first bucket left before a.weight's gradient was computed");
        ddp.Synchronize();
        foreach (var (name, g) in own)
            Assert.That(net.NamedParameters().First(p => p.Name == name).Tensor.Grad!.ToDoubles(), Is.EqualTo(g.Select(v => 2 * v)).Within(1e-15), name);
        var unused = net.NamedParameters().First(p => p.Name == "unused").Tensor;
        Assert.That(unused.Grad!.ToDoubles(), Is.EqualTo(new[] { 0.5, 0.5, 0.5, 0.5, 0.5 }), "used only by the other rank: its average with our zeros");
    }

    [Test]
    public void AParameterNoRankUsedKeepsNoGradient()
    {
        using var scope = TensorScope.Begin();
        var net = new Net();
        var (x, y) = Data();
        using var ddp = new DistributedDataParallel(net, SingleProcessGroup.Instance);
        ddp.BeginStep();
        Ops.SoftmaxCrossEntropy(net.Forward(x), y).Backward();
        ddp.Synchronize();
        Assert.That(net.NamedParameters().First(p => p.Name == "unused").Tensor.Grad, Is.Null);
        Assert.That(net.A.Weight.Grad, Is.Not.Null);
    }

    [Test]
    public void AGradientAfterItsBucketWasSentIsAnError()
    {
        using var scope = TensorScope.Begin();
        var net = new Net();
        var (x, y) = Data();
        using var ddp = new DistributedDataParallel(net, SingleProcessGroup.Instance, bucketBytes: 100, firstBucketBytes: 60);
        ddp.BeginStep();
        Ops.SoftmaxCrossEntropy(net.Forward(x), y).Backward();
        Assert.That(() => Ops.SoftmaxCrossEntropy(net.Forward(x), y).Backward(),
            Throws.InvalidOperationException.With.Message.Contains("after its bucket was sent"));
    }

    [Test]
    public void TheStopVoteOfAnyRankReachesEveryRank()
    {
        using var scope = TensorScope.Begin();
        var net = new Net();
        var (x, y) = Data();
        var peer = new PeerGroup(net);
        using var opt = Sgd.ForModule(net, 0.1);
        var step = new TrainingStep(net, opt);
        using var ddp = new DistributedDataParallel(net, peer);
        step.Hooks.Add(ddp);
        step.Run(x, y).Dispose();
        Assert.That(ddp.AgreedStop, Is.False);
        peer.Vote = 1; // the other rank got SIGTERM
        step.Run(x, y).Dispose();
        Assert.That(ddp.AgreedStop, Is.True);
        Assert.That(ddp.LastStep.Buckets, Is.EqualTo(1));
    }

    [Test]
    public void ResumingWithAnotherGlobalBatchContinuesAtTheSamplesAlreadySeen()
    {
        var info = new CheckpointInfo { Epoch = 3, StepInEpoch = 10, WorldSize = 2, BatchSize = 4 };
        Assert.That(Trainer.RederiveStep(info, 8, 1, 100, out var note), Is.EqualTo(10));
        Assert.That(note, Is.Null, "same global batch: exact");
        Assert.That(Trainer.RederiveStep(info, 4, 1, 100, out note), Is.EqualTo(20));
        Assert.That(note, Does.Contain("80 samples of epoch 3 were seen, continuing at step 20"));
        Assert.That(Trainer.RederiveStep(info, 6, 2, 100, out note), Is.EqualTo(6));
        Assert.That(note, Does.Contain("(8 samples of the last partial batch are seen again)"));
        Assert.That(Trainer.RederiveStep(new CheckpointInfo { StepInEpoch = 7 }, 16, 4, 100, out note), Is.EqualTo(1), "an older checkpoint: one process with this run's batch");
    }

    [Test]
    public void MetricsAreSummedOverRanksBeforeTheyAreUsed()
    {
        using var scope = TensorScope.Begin();
        using var meter = new StepMeter { Reduce = v => { for (int i = 0; i < v.Length; i++) v[i] *= 2; } }; // two identical ranks
        var logits = Tensor.FromArray(new float[] { 2, 0, 0, 2 }, 2, 2);
        var labels = Tensor.FromArray(new long[] { 0, 0 }, 2);
        meter.Add(1, Tensor.Scalar(0.5), logits, labels, 2);
        Assert.That(meter.Flush().NonFiniteStep, Is.Null);
        Assert.That((meter.Epoch.Samples, meter.Epoch.Correct, meter.Epoch.MeanLoss), Is.EqualTo((4L, 2L, 0.5)));
        var nan = new StepMeter { Reduce = v => v[0] = double.NaN }; // another rank's loss was NaN
        nan.Add(7, Tensor.Scalar(0.5), logits, labels, 2);
        Assert.That(nan.Flush().NonFiniteStep, Is.EqualTo(7));
        nan.Dispose();
    }

    [Test]
    public void TheLauncherRunsTheSameCommandWithoutNproc()
    {
        Assert.That(ResidualEngine.Tools.Commands.TrainLauncher.WithoutNproc(["--nproc", "2", "--epochs", "3", "--nproc=4", "--sync-bn"]),
            Is.EqualTo(new[] { "--epochs", "3", "--sync-bn" }));
        var args = ResidualEngine.Tools.Commands.TrainLauncher.MpirunArguments(2, ["dotnet", "residual.dll", "train"], openMpi: true, root: true);
        Assert.That(args, Is.EqualTo(new[] { "-np", "2", "--oversubscribe", "--bind-to", "none", "--allow-run-as-root", "dotnet", "residual.dll", "train" }));
        Assert.That(ResidualEngine.Tools.Commands.TrainLauncher.MpirunArguments(3, ["x"], openMpi: false, root: false), Is.EqualTo(new[] { "-np", "3", "x" }));
        var o = ResidualEngine.Tools.Cli.TrainCli.Parse(["--nproc", "2", "--sync-bn", "--bucket-mb", "4"]);
        Assert.That((o.Nproc, o.SyncBn, o.BucketMb), Is.EqualTo((2, true, 4.0)));
        Assert.That(o.ToJson().ContainsKey("nproc"), Is.False, "how many processes is the command's business, not the run's configuration");
        Assert.That(() => ResidualEngine.Tools.Cli.TrainCli.Parse(["--nproc", "0"]), Throws.InstanceOf<ResidualEngine.Tools.Cli.UsageException>().With.Message.Contains("--nproc"));
    }
}
