// Data-parallel training across two real processes (Open MPI, this machine's CPU): one mpirun of
// the test worker (Tests/DistWorker) computes everything once, and each test checks one property
// of what the ranks wrote:
//   - with SyncBN, 2 ranks x batch B give after 3 SGD steps the weights and BN statistics of one
//     process with batch 2B, to F64 rounding, and both ranks hold bitwise the same weights;
//   - without SyncBN, the gradient after DistributedDataParallel is the mean of the gradients each
//     rank computes alone, over several buckets reduced in reverse registration order;
//   - each rank's loader visits its DistributedSampler share: every sample once per epoch across
//     ranks, the padding as torch's (the epoch's first samples again), a new order every epoch.
using System.Text.Json;
using NUnit.Framework;
using ResidualEngine.Data;
using ResidualEngine.Serialization;

namespace ResidualEngine.Tests.Distributed;

[NonParallelizable]
public class DataParallelTests
{
    private static string? s_dir;
    private static JobResult? s_run;

    /// <summary>Runs the worker's "grads" scenario once for all tests of this class.</summary>
    private static string Results()
    {
        MpiJob.RequireMpirun();
        if (s_dir is null)
        {
            var dir = Path.Combine(Path.GetTempPath(), $"residual-ddp-grads-{Environment.ProcessId}");
            Directory.CreateDirectory(dir);
            s_run = MpiJob.Run(MpiJob.Mpirun(2, [.. MpiJob.Program("residual-dist-worker"), "grads", dir]), dir);
            s_dir = dir;
        }
        Assert.That(s_run!.ExitCode, Is.EqualTo(0), s_run.ToString());
        return s_dir;
    }

    [OneTimeTearDown]
    public void RemoveResults()
    {
        if (s_dir is not null && Directory.Exists(s_dir)) Directory.Delete(s_dir, recursive: true);
        s_dir = null;
    }

    private static Dictionary<string, double[]> Load(string dir, string name)
    {
        using var f = SafeTensors.Load(Path.Combine(dir, name));
        return f.Tensors.Where(kv => kv.Value.DType.IsFloat()).ToDictionary(kv => kv.Key, kv => kv.Value.ToDoubles());
    }

    [Test]
    public void SyncBnTwoRanksOfBatchBMatchOneProcessOfBatch2B()
    {
        var dir = Results();
        var r0 = Load(dir, "rank0-syncbn.safetensors");
        var r1 = Load(dir, "rank1-syncbn.safetensors");
        var single = Load(dir, "single-syncbn.safetensors");
        Assert.That(r0.Keys, Is.EquivalentTo(single.Keys));
        Assert.That(r0.Keys.Count(k => k.EndsWith("running_var", StringComparison.Ordinal)), Is.GreaterThan(10), "BN statistics are compared too");
        double worst = 0, moved = 0;
        string worstName = "";
        using var init = ResidualEngine.Models.ModelZoo.Create("resnet20", 3, seed: 7, dtype: DType.F64);
        var start = init.StateDict().ToDictionary(kv => kv.Key, kv => kv.Value.ToDoubles());
        foreach (var (name, expected) in single)
        {
            Assert.That(r1[name], Is.EqualTo(r0[name]), $"{name}: the ranks hold different values");
            for (int i = 0; i < expected.Length; i++)
            {
                double d = Math.Abs(r0[name][i] - expected[i]) / (1 + Math.Abs(expected[i]));
                if (d > worst) (worst, worstName) = (d, name);
                moved = Math.Max(moved, Math.Abs(expected[i] - start[name][i]));
            }
        }
        TestContext.Out.WriteLine($"largest relative difference {worst:E2} ({worstName}); largest change by training {moved:E2}");
        Assert.That(moved, Is.GreaterThan(1e-3), "the steps changed the weights");
        Assert.That(worst, Is.LessThan(1e-11), $"2 x B with SyncBN vs 1 x 2B at {worstName}");
    }

    [Test]
    public void WithoutSyncBnTheAveragedGradientIsTheMeanOfEachRanksOwn()
    {
        var dir = Results();
        var own0 = Load(dir, "local-rank0.safetensors");
        var own1 = Load(dir, "local-rank1.safetensors");
        var avg0 = Load(dir, "ddp-rank0.safetensors");
        var avg1 = Load(dir, "ddp-rank1.safetensors");
        Assert.That(avg0.Keys, Is.EquivalentTo(own0.Keys));
        using var model = ResidualEngine.Models.ModelZoo.Create("resnet20", 3, dtype: DType.F64);
        int parameters = model.NamedParameters().Count();
        Assert.That(own0.Keys.Count, Is.EqualTo(parameters), "every parameter of ResNet-20 has a gradient");
        double worst = 0, spread = 0;
        foreach (var (name, a) in own0)
        {
            Assert.That(avg1[name], Is.EqualTo(avg0[name]), $"{name}: the ranks hold different averages");
            for (int i = 0; i < a.Length; i++)
            {
                double mean = (a[i] + own1[name][i]) / 2;
                worst = Math.Max(worst, Math.Abs(avg0[name][i] - mean) / (1e-12 + Math.Abs(mean)));
                spread = Math.Max(spread, Math.Abs(a[i] - own1[name][i]));
            }
        }
        Assert.That(spread, Is.GreaterThan(1e-3), "the two ranks' own gradients differ (different batches)");
        Assert.That(worst, Is.LessThan(1e-12), "averaged gradient vs mean of the ranks' gradients");

        var buckets = JsonSerializer.Deserialize<List<List<string>>>(File.ReadAllText(Path.Combine(dir, "buckets-rank0.json")))!;
        Assert.That(buckets.Count, Is.GreaterThan(5), "small buckets: several all-reduces overlap the backward pass");
        Assert.That(buckets[0][0], Is.EqualTo("fc.bias"), "the last registered parameter is reduced first");
        Assert.That(buckets[^1][^1], Is.EqualTo("conv1.weight"), "the first registered parameter is reduced last");
        Assert.That(buckets.SelectMany(b => b), Is.EquivalentTo(model.NamedParameters().Select(p => p.Name)), "every parameter in one bucket");
    }

    [Test]
    public void EachRankSeesItsShareEverySampleOncePerEpochWithTorchsPadding()
    {
        var dir = Results();
        var shards = Enumerable.Range(0, 2)
            .Select(r => JsonSerializer.Deserialize<List<List<int>>>(File.ReadAllText(Path.Combine(dir, $"shard-rank{r}.json")))!).ToList();
        for (int epoch = 0; epoch < 2; epoch++)
        {
            var a = shards[0][epoch];
            var b = shards[1][epoch];
            Assert.That((a.Count, b.Count), Is.EqualTo((6, 6)), "11 samples over 2 ranks: 6 each after padding to 12");
            Assert.That(a.Concat(b).Distinct().OrderBy(i => i), Is.EqualTo(Enumerable.Range(0, 11)), "every sample seen in the epoch");
            var order = DataLoader.Permutation(11, shuffle: true, seed: 5, epoch);
            var twice = a.Concat(b).GroupBy(i => i).Where(g => g.Count() > 1).Select(g => g.Key).ToList();
            Assert.That(twice, Is.EqualTo(new[] { order[0] }), "the padding repeats the epoch's first sample");
            for (int r = 0; r < 2; r++)
                Assert.That(shards[r][epoch], Is.EqualTo(new DistributedSampler(11, r, 2, shuffle: true, seed: 5).Indices(epoch)), $"rank {r}");
        }
        Assert.That(shards[0][1], Is.Not.EqualTo(shards[0][0]), "the order changes with the epoch");
    }
}
