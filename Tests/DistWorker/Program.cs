// The rank program of the multi-process tests: `mpirun -np 2 residual-dist-worker SCENARIO DIR`.
// Each rank runs the real engine, trainer and process group and writes what it computed into
// DIR; the NUnit tests (Tests/Distributed) compare the files. Nothing here decides pass or fail.
//   grads   DIR  F64 ResNet-20: (a) 3 SGD steps of 2 ranks x B with SyncBN and small buckets, and
//                on rank 0 the same 3 steps in one process with 2B (rank{r}-syncbn, single-syncbn);
//                (b) one step without SyncBN: each rank's own gradient, then the averaged one
//                (local-rank{r}, ddp-rank{r}); (c) the dataset indices each rank's loader visits
//                in epochs 0 and 1 of an 11-sample set with batch 2 (shard-rank{r}.json)
//   fault   DIR  the trainer on a tiny synthetic set; rank 1 throws after its second step
using System.Text.Json;
using ResidualEngine;
using ResidualEngine.Data;
using ResidualEngine.Distributed;
using ResidualEngine.Models;
using ResidualEngine.Nn;
using ResidualEngine.Nn.Optim;
using ResidualEngine.Serialization;
using ResidualEngine.Training;
using ResidualEngine.Training.Distributed;

if (args.Length != 2) { Console.Error.WriteLine("usage: residual-dist-worker grads|fault DIR"); return 2; }
var (scenario, dir) = (args[0], args[1]);
var group = MpiProcessGroup.World();
int code = DistributedJob.Run(group, "residual-dist-worker", () => scenario switch
{
    "grads" => Grads.Run(group, dir),
    "fault" => Fault.Run(group, dir),
    _ => throw new ArgumentException($"unknown scenario '{scenario}'"),
});
group.Dispose();
return code;

internal static class Grads
{
    private const int B = 4, Steps = 3, Classes = 3, Size = 8;

    public static int Run(ProcessGroup g, string dir)
    {
        // (a) SyncBN: 2 ranks x B against one process x 2B.
        using (var model = ModelZoo.Create("resnet20", Classes, seed: 7, dtype: DType.F64))
        {
            BatchNorm2d.SynchronizeAll(model, g);
            TrainSteps(model, g, syncBn: true);
            Save(model, Path.Combine(dir, $"rank{g.Rank}-syncbn.safetensors"), grads: false);
        }
        if (g.Rank == 0)
        {
            using var single = ModelZoo.Create("resnet20", Classes, seed: 7, dtype: DType.F64);
            TrainSteps(single, null, syncBn: false);
            Save(single, Path.Combine(dir, "single-syncbn.safetensors"), grads: false);
        }

        // (b) Without SyncBN: this rank's own gradient, then the average DDP makes of all of them.
        using (var model = ModelZoo.Create("resnet20", Classes, seed: 11, dtype: DType.F64))
        {
            var (x, y) = Batch(0, g.Rank, g.Size);
            using var opt = Sgd.ForModule(model, 0.1);
            model.Train();
            using (TensorScope.Begin()) Ops.SoftmaxCrossEntropy(model.Forward(x), y).Backward();
            Save(model, Path.Combine(dir, $"local-rank{g.Rank}.safetensors"), grads: true);
            opt.ZeroGrad();
            using var ddp = new DistributedDataParallel(model, g, bucketBytes: 20_000, firstBucketBytes: 5_000);
            ddp.BeginStep();
            using (TensorScope.Begin()) Ops.SoftmaxCrossEntropy(model.Forward(x), y).Backward();
            ddp.Synchronize();
            Save(model, Path.Combine(dir, $"ddp-rank{g.Rank}.safetensors"), grads: true);
            File.WriteAllText(Path.Combine(dir, $"buckets-rank{g.Rank}.json"), JsonSerializer.Serialize(ddp.Buckets));
            x.Dispose();
            y.Dispose();
        }

        // (c) Which samples each rank's loader visits.
        var sampler = new DistributedSampler(11, g.Rank, g.Size, shuffle: true, seed: 5);
        using var loader = new DataLoader(new IndexDataset(11), new DataLoaderOptions(2, Shuffle: true, Seed: 5, Workers: 0) { Sampler = sampler });
        var seen = new List<List<int>>();
        for (int epoch = 0; epoch < 2; epoch++)
        {
            var e = new List<int>();
            foreach (var batch in loader.Epoch(epoch))
                using (batch)
                {
                    var labels = batch.Labels.ToArray<long>();
                    for (int i = 0; i < batch.Count; i++)
                    {
                        if (labels[i] != batch.Indices[i]) throw new InvalidOperationException($"sample {batch.Indices[i]} came with label {labels[i]}");
                        e.Add(batch.Indices[i]);
                    }
                }
            seen.Add(e);
        }
        File.WriteAllText(Path.Combine(dir, $"shard-rank{g.Rank}.json"), JsonSerializer.Serialize(seen));
        g.Barrier();
        return 0;
    }

    /// <summary>Step <paramref name="step"/>'s global batch of 2B deterministic samples; rank r of R takes positions r, r+R, ... (a sampler's share).</summary>
    private static (Tensor X, Tensor Y) Batch(int step, int rank, int ranks)
    {
        var rng = new Random(100 + step);
        int n = 2 * B, per = 3 * Size * Size;
        var all = new double[n * per];
        for (int i = 0; i < all.Length; i++) all[i] = rng.NextDouble() * 2 - 1 + (i / per % 2 == 0 ? 0.5 : -0.25);
        var mine = Enumerable.Range(0, n).Where(i => i % ranks == rank).ToArray();
        var x = new double[mine.Length * per];
        var y = new long[mine.Length];
        for (int k = 0; k < mine.Length; k++)
        {
            Array.Copy(all, mine[k] * per, x, k * per, per);
            y[k] = mine[k] % Classes;
        }
        return (TensorScope.Detach(Tensor.FromArray(x, new Shape(mine.Length, 3, Size, Size))), TensorScope.Detach(Tensor.FromArray(y, new Shape(mine.Length))));
    }

    /// <summary>Steps of SGD with momentum and weight decay, through the shared TrainingStep (with DDP when there is a group).</summary>
    private static void TrainSteps(ResNet model, ProcessGroup? g, bool syncBn)
    {
        using var opt = Sgd.ForModule(model, 0.05, momentum: 0.9, weightDecay: 1e-4);
        var step = new TrainingStep(model, opt);
        using var ddp = g is null ? null : new DistributedDataParallel(model, g, bucketBytes: 20_000, firstBucketBytes: 5_000);
        if (ddp is not null) step.Hooks.Add(ddp);
        for (int s = 0; s < Steps; s++)
        {
            var (x, y) = g is null ? Batch(s, 0, 1) : Batch(s, g.Rank, g.Size);
            using (TensorScope.Begin()) step.Run(x, y).Dispose();
            x.Dispose();
            y.Dispose();
        }
        _ = syncBn;
    }

    private static void Save(Module model, string path, bool grads)
    {
        var list = grads
            ? model.NamedParameters().Where(p => p.Tensor.Grad is not null).Select(p => new KeyValuePair<string, Tensor>(p.Name, p.Tensor.Grad!)).ToList()
            : model.StateDict().Select(kv => new KeyValuePair<string, Tensor>(kv.Key, kv.Value)).ToList();
        using var f = File.Create(path);
        SafeTensors.Write(f, list);
    }

    /// <summary>Sample i is a constant image of value i with label i.</summary>
    private sealed class IndexDataset(int count) : IDataset
    {
        public int Count => count;
        public int NumClasses => count;
        public IReadOnlyList<string> Classes { get; } = Enumerable.Range(0, count).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToList();
        public Sample Get(int index, Random rng) => new(Enumerable.Repeat((float)index, 3 * 2 * 2).ToArray(), index, 2, 2);
    }
}

internal static class Fault
{
    public static int Run(ProcessGroup g, string dir)
    {
        var o = new TrainOptions
        {
            Model = "resnet20", SynthClasses = 2, SynthTrainPerClass = 8, SynthValPerClass = 2, SynthSize = 16,
            Epochs = 3, BatchSize = 2, Workers = 0, Out = Path.Combine(dir, "run"), LogEvery = 1, TensorBoard = false,
        };
        var trainer = new Trainer(o, Console.Out, new ProgressDisplay(TextWriter.Null, interactive: false), StopSignal.Manual())
        {
            ProcessGroup = g,
            SyntheticRoot = Path.Combine(dir, "data"),
            AfterStep = (epoch, step) =>
            {
                if (g.Rank == 1 && step == 2) throw new InvalidOperationException($"injected failure on rank 1 after step {step} of epoch {epoch}");
            },
        };
        return (int)trainer.Run();
    }
}
