// DistributedSampler against torch.utils.data.DistributedSampler's rules, for many dataset and
// world sizes: equal shares, every sample seen in each epoch, the padding is the epoch's first
// samples again, no padding for evaluation (every sample exactly once), a new order each epoch
// shared by all ranks, and one rank is the single-process order. A loader with a sampler builds
// the very samples (augmentation included) that a single-process loader builds at the same
// global positions; a loader can start an epoch at any batch.
using NUnit.Framework;
using ResidualEngine.Data;

namespace ResidualEngine.Tests.Data;

public class DistributedSamplerTests
{
    [Test]
    public void SharesAreEqualCoverEverySampleAndPadWithTheFirstSamples()
    {
        foreach (int n in new[] { 1, 5, 7, 10, 11, 64 })
            for (int world = 1; world <= 5; world++)
                for (int epoch = 0; epoch < 2; epoch++)
                {
                    var what = $"n {n}, world {world}, epoch {epoch}";
                    var shares = Enumerable.Range(0, world).Select(r => new DistributedSampler(n, r, world, shuffle: true, seed: 9)).ToList();
                    int per = (n + world - 1) / world;
                    Assert.That(shares.Select(s => s.Count), Has.All.EqualTo(per), what);
                    var all = shares.SelectMany(s => s.Indices(epoch)).ToList();
                    Assert.That(all.Distinct().Order(), Is.EqualTo(Enumerable.Range(0, n)), what);
                    var order = DataLoader.Permutation(n, shuffle: true, seed: 9, epoch);
                    // Interleaving the shares gives the padded global order: the permutation, then its start again.
                    var global = Enumerable.Range(0, per * world).Select(p => shares[p % world].Indices(epoch)[p / world]);
                    Assert.That(global, Is.EqualTo(Enumerable.Range(0, per * world).Select(p => order[p % n])), what);
                }
    }

    [Test]
    public void EvaluationSharesHaveEverySampleExactlyOnce()
    {
        foreach (int n in new[] { 3, 10, 11 })
            for (int world = 1; world <= 4; world++)
            {
                var shares = Enumerable.Range(0, world).Select(r => new DistributedSampler(n, r, world, shuffle: false, seed: 0, pad: false)).ToList();
                var all = shares.SelectMany(s => s.Indices(0)).ToList();
                Assert.That(all.Order(), Is.EqualTo(Enumerable.Range(0, n)), $"n {n}, world {world}");
                Assert.That(shares.Max(s => s.Count) - shares.Min(s => s.Count), Is.LessThanOrEqualTo(1));
            }
    }

    [Test]
    public void OrderChangesWithTheEpochAndOneRankIsTheSingleProcessOrder()
    {
        var s = new DistributedSampler(50, 1, 3, shuffle: true, seed: 2);
        Assert.That(s.Indices(1), Is.Not.EqualTo(s.Indices(0)));
        Assert.That(s.Indices(1), Is.EqualTo(new DistributedSampler(50, 1, 3, shuffle: true, seed: 2).Indices(1)), "a function of (seed, epoch)");
        using var loader = new DataLoader(new NoiseDataset(50), new DataLoaderOptions(5, Shuffle: true, Seed: 2, Workers: 0));
        Assert.That(new DistributedSampler(50, 0, 1, shuffle: true, seed: 2).Indices(3), Is.EqualTo(loader.SampleOrder(3)));
        Assert.That(() => new DistributedSampler(50, 3, 3, true, 0), Throws.InstanceOf<ArgumentOutOfRangeException>());
    }

    [Test]
    public void RanksBuildTheSamplesASingleLoaderBuildsAtTheSameGlobalPositions()
    {
        const int n = 12, world = 3, batch = 2;
        var data = new NoiseDataset(n);
        using var single = new DataLoader(data, new DataLoaderOptions(batch * world, Shuffle: true, Seed: 4, Workers: 0));
        var expected = single.Epoch(1).Select(b => { using (b) return (b.Images.ToFloats(), b.Labels.ToArray<long>()); }).ToList();
        var ranks = Enumerable.Range(0, world).Select(r =>
        {
            using var l = new DataLoader(data, new DataLoaderOptions(batch, Shuffle: true, Seed: 4, Workers: 2)
                { Sampler = new DistributedSampler(n, r, world, shuffle: true, seed: 4) });
            return l.Epoch(1).Select(b => { using (b) return (b.Images.ToFloats(), b.Labels.ToArray<long>()); }).ToList();
        }).ToList();
        int per = 3 * 2 * 2;
        for (int step = 0; step < expected.Count; step++)
            for (int p = 0; p < batch * world; p++)
            {
                int r = p % world, j = p / world; // global position step*6 + p is rank r's sample step*2 + j
                Assert.That(ranks[r][step].Item1.AsSpan(j * per, per).ToArray(), Is.EqualTo(expected[step].Item1.AsSpan(p * per, per).ToArray()), $"step {step} position {p}");
                Assert.That(ranks[r][step].Item2[j], Is.EqualTo(expected[step].Item2[p]));
            }
    }

    [Test]
    public void AnEpochCanStartAtAnyBatch()
    {
        using var loader = new DataLoader(new NoiseDataset(20), new DataLoaderOptions(3, Shuffle: true, Seed: 8, Workers: 2));
        var all = loader.Epoch(2).Select(b => { using (b) return b.Images.ToFloats(); }).ToList();
        var tail = loader.Epoch(2, 4).Select(b => { using (b) return b.Images.ToFloats(); }).ToList();
        Assert.That(tail, Is.EqualTo(all.Skip(4)));
        Assert.That(loader.Epoch(2, loader.BatchesPerEpoch), Is.Empty);
        Assert.That(() => loader.Epoch(2, loader.BatchesPerEpoch + 1), Throws.InstanceOf<ArgumentOutOfRangeException>());
    }

    [Test]
    public void SamplerMustFitTheDataset()
    {
        Assert.That(() => new DataLoader(new NoiseDataset(10), new DataLoaderOptions(2, true, 0, 0) { Sampler = new DistributedSampler(11, 0, 2, true, 0) }),
            Throws.ArgumentException.With.Message.Contains("made for 11 samples"));
    }

    /// <summary>2x2 images of random noise drawn from the sample's generator; label = index.</summary>
    private sealed class NoiseDataset(int count) : IDataset
    {
        public int Count => count;
        public int NumClasses => count;
        public IReadOnlyList<string> Classes { get; } = Enumerable.Range(0, count).Select(i => $"c{i}").ToList();

        public Sample Get(int index, Random rng) => new(Enumerable.Range(0, 12).Select(_ => (float)rng.NextDouble() + index).ToArray(), index, 2, 2);
    }
}
