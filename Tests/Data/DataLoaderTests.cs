// DataLoader: order and augmentation independent of worker count and timing, bounded prefetch
// with a slow consumer, unreadable files skipped/replaced/counted/logged once, a clear error
// after too many in a row, worker exceptions surfacing on the consumer, and tensor ownership.
using System.Collections.Concurrent;
using NUnit.Framework;
using ResidualEngine.Data;

namespace ResidualEngine.Tests.Data;

public class DataLoaderTests
{
    /// <summary>Sample i is a 3x2x2 image of value i plus a random draw (so the RNG is visible), label i % 5.</summary>
    private sealed class FakeDataset : IDataset
    {
        public FakeDataset(int count) => Count = count;
        public int Count { get; }
        public int NumClasses => 5;
        public IReadOnlyList<string> Classes => new[] { "a", "b", "c", "d", "e" };
        public Func<int, int>? Hook { get; init; }
        public ConcurrentBag<int> Requested { get; } = new();

        public Sample Get(int index, Random rng)
        {
            Requested.Add(index);
            Hook?.Invoke(index);
            var v = new float[12];
            for (int k = 0; k < v.Length; k++) v[k] = index + (float)rng.NextDouble();
            return new Sample(v, index % 5, 2, 2);
        }
    }

    private static List<(float[] Images, long[] Labels, int[] Indices)> ReadEpoch(DataLoader loader, int epoch)
    {
        var list = new List<(float[], long[], int[])>();
        foreach (var b in loader.Epoch(epoch))
            using (b)
                list.Add((b.Images.ToArray<float>(), b.Labels.ToArray<long>(), b.Indices.ToArray()));
        return list;
    }

    [Test]
    public void BatchesAreIdenticalWithOneOrThreeWorkersOrInline()
    {
        var ds = new FakeDataset(23);
        var runs = new[] { 1, 3, 0 }.Select(w =>
        {
            using var l = new DataLoader(ds, new DataLoaderOptions(5, Shuffle: true, Seed: 42, Workers: w, Prefetch: 2));
            return ReadEpoch(l, 3);
        }).ToArray();
        Assert.That(runs[0], Has.Count.EqualTo(5));
        for (int r = 1; r < runs.Length; r++)
            for (int b = 0; b < runs[0].Count; b++)
            {
                Assert.That(runs[r][b].Images, Is.EqualTo(runs[0][b].Images), $"run {r} batch {b} images");
                Assert.That(runs[r][b].Labels, Is.EqualTo(runs[0][b].Labels), $"run {r} batch {b} labels");
            }
        // Every sample once, shuffled, last batch short, labels consistent with indices.
        var all = runs[0].SelectMany(b => b.Indices).ToArray();
        Assert.That(all.Order(), Is.EqualTo(Enumerable.Range(0, 23)));
        Assert.That(all, Is.Not.EqualTo(Enumerable.Range(0, 23)));
        Assert.That(runs[0][^1].Indices, Has.Length.EqualTo(3));
        foreach (var b in runs[0])
            Assert.That(b.Labels, Is.EqualTo(b.Indices.Select(i => (long)(i % 5))));
    }

    [Test]
    public void OrderDependsOnSeedAndEpochOnly()
    {
        var ds = new FakeDataset(50);
        using var a = new DataLoader(ds, new DataLoaderOptions(8, true, Seed: 1));
        using var b = new DataLoader(ds, new DataLoaderOptions(8, true, Seed: 1, Workers: 4));
        using var c = new DataLoader(ds, new DataLoaderOptions(8, true, Seed: 2));
        Assert.That(a.SampleOrder(0), Is.EqualTo(b.SampleOrder(0)));
        Assert.That(a.SampleOrder(1), Is.Not.EqualTo(a.SampleOrder(0)));
        Assert.That(c.SampleOrder(0), Is.Not.EqualTo(a.SampleOrder(0)));
        using var plain = new DataLoader(ds, new DataLoaderOptions(8, false, 1, DropLast: true));
        Assert.That(plain.SampleOrder(5), Is.EqualTo(Enumerable.Range(0, 50)));
        Assert.That(plain.BatchesPerEpoch, Is.EqualTo(6));
        Assert.That(ReadEpoch(plain, 0).All(x => x.Indices.Length == 8), Is.True);
    }

    [Test]
    public void SlowConsumerNeverHasMoreThanPrefetchBatchesAlive()
    {
        const int batch = 4, prefetch = 3;
        int maxRequested = -1;
        var ds = new FakeDataset(80) { Hook = i => { InterlockedMax(ref maxRequested, i); return 0; } };
        using var loader = new DataLoader(ds, new DataLoaderOptions(batch, false, 0, Workers: 3, Prefetch: prefetch));
        int k = 0;
        foreach (var b in loader.Epoch(0))
        {
            using (b)
            {
                // Give the workers every chance to run ahead.
                Thread.Sleep(15);
                // Batches k .. k + prefetch - 1 may exist (this one included); no sample beyond them.
                Assert.That(Volatile.Read(ref maxRequested), Is.LessThan((k + prefetch) * batch), $"at batch {k}");
                Assert.That(loader.Stats.BatchesInFlight, Is.LessThanOrEqualTo(prefetch));
            }
            k++;
        }
        Assert.That(k, Is.EqualTo(20));
        Assert.That(loader.Stats.PeakBatchesInFlight, Is.InRange(1, prefetch));
        Assert.That(loader.Stats.Batches, Is.EqualTo(20));
    }

    private static void InterlockedMax(ref int target, int value)
    {
        int seen;
        while (value > (seen = Volatile.Read(ref target)))
            if (Interlocked.CompareExchange(ref target, value, seen) == seen) return;
    }

    [Test]
    public void UnreadableFilesAreSkippedReplacedCountedAndLoggedOnce()
    {
        using var d = new TempDir();
        var good = TestImages.Solid(12, 10, 90, 60, 30);
        for (int i = 0; i < 12; i++) d.Write($"a/{i:D2}.jpg", good);
        var cut = TestImages.Pattern(40, 40);
        d.Write("a/03.jpg", cut[..(cut.Length / 3)]);            // truncated
        d.Write("a/04.jpg", Array.Empty<byte>());                // zero bytes
        d.Write("a/09.jpg", "this is a text file"u8.ToArray());  // not an image
        var folder = ImageFolder.Open(d.Path);
        var log = new ConcurrentBag<string>();
        var ds = new ImageFolderDataset(folder, new EvalTransform(8));
        using var loader = new DataLoader(ds, new DataLoaderOptions(4, false, 0, Workers: 2) { Log = log.Add });
        for (int epoch = 0; epoch < 2; epoch++)
        {
            var batches = ReadEpoch(loader, epoch);
            Assert.That(batches.Select(b => b.Indices.Length), Is.EqualTo(new[] { 4, 4, 4 }), "batches keep their size");
            // Position 3 -> index 3 bad, 4 bad, so 5; position 4 -> 4 bad, so 5; position 9 -> 10.
            Assert.That(batches.SelectMany(b => b.Indices), Is.EqualTo(new[] { 0, 1, 2, 5, 5, 5, 6, 7, 8, 10, 10, 11 }));
        }
        Assert.That(loader.Stats.BadFiles, Is.EqualTo(3));
        Assert.That(log, Has.Count.EqualTo(3), "each bad file is logged once over two epochs");
        Assert.That(log.Any(m => m.Contains("03.jpg") && m.Contains("truncated")), Is.True, string.Join("\n", log));
        Assert.That(log.Any(m => m.Contains("04.jpg") && m.Contains("empty")), Is.True);
        Assert.That(log.Any(m => m.Contains("09.jpg") && m.Contains("not an image")), Is.True);
        Assert.That(loader.Stats.SkippedSamples, Is.EqualTo(2 * 4));
        Assert.That(loader.Stats.Samples, Is.EqualTo(2 * 12));
    }

    [Test]
    public void TooManyUnreadableFilesInARowIsAClearError()
    {
        using var d = new TempDir();
        for (int i = 0; i < 6; i++) d.Write($"a/{i}.jpg", "junk"u8.ToArray());
        var ds = new ImageFolderDataset(ImageFolder.Open(d.Path), new EvalTransform(8));
        using var loader = new DataLoader(ds, new DataLoaderOptions(2, false, 0) { Log = _ => { }, MaxConsecutiveFailures = 3 });
        var e = Assert.Throws<InvalidDataException>(() => ReadEpoch(loader, 0));
        Assert.That(e!.Message, Does.StartWith("too many unreadable images in a row").And.Contain(".jpg: not an image"));
    }

    [Test]
    public void WorkerExceptionsSurfaceOnTheConsumerAtTheirBatch()
    {
        var ds = new FakeDataset(30) { Hook = i => i == 13 ? throw new InvalidOperationException("boom at 13") : 0 };
        long before = TensorStats.LiveTensors;
        using (var loader = new DataLoader(ds, new DataLoaderOptions(5, false, 0, Workers: 3)))
        {
            int seen = 0;
            var e = Assert.Throws<InvalidOperationException>(() =>
            {
                foreach (var b in loader.Epoch(0)) { b.Dispose(); seen++; }
            });
            Assert.That(e!.Message, Is.EqualTo("boom at 13"));
            Assert.That(seen, Is.EqualTo(2), "batches 0 and 1 arrive, batch 2 (samples 10-14) fails");
        }
        Assert.That(TensorStats.LiveTensors, Is.EqualTo(before), "prefetched batches are freed");
    }

    [Test]
    public void BatchTensorsOutliveScopesAndAreFreedByDispose()
    {
        var ds = new FakeDataset(10);
        long before = TensorStats.LiveTensors;
        using var loader = new DataLoader(ds, new DataLoaderOptions(4, false, 0, Workers: 0));
        Batch first;
        using (TensorScope.Begin())
        {
            first = loader.Epoch(0).First();
        }
        Assert.That(first.Images.IsDisposed, Is.False);
        Assert.That(first.Images.Shape, Is.EqualTo(new Shape(4, 3, 2, 2)));
        Assert.That(first.Labels.DType, Is.EqualTo(DType.I64));
        first.Dispose();
        Assert.That(first.Images.IsDisposed, Is.True);
        Assert.That(TensorStats.LiveTensors, Is.EqualTo(before));
    }

    [Test]
    public void LeavingAnEpochEarlyStopsWorkersAndFreesPrefetchedBatches()
    {
        var ds = new FakeDataset(200);
        long before = TensorStats.LiveTensors;
        using (var loader = new DataLoader(ds, new DataLoaderOptions(4, true, 3, Workers: 2, Prefetch: 4)))
        {
            foreach (var b in loader.Epoch(0))
            {
                b.Dispose();
                break;
            }
            Assert.That(loader.Stats.BatchesInFlight, Is.Zero);
        }
        Assert.That(TensorStats.LiveTensors, Is.EqualTo(before));
        Assert.That(ds.Requested.Count, Is.LessThan(200), "the workers did not decode the whole epoch");
    }

    [Test]
    public void ImageFolderBatchesHaveTheTransformShape()
    {
        using var d = new TempDir();
        for (int c = 0; c < 3; c++)
            for (int i = 0; i < 3; i++)
                d.Write($"c{c}/{i}.jpg", TestImages.Solid(20 + i, 16, (byte)(80 * c), 100, 50));
        var ds = new ImageFolderDataset(ImageFolder.Open(d.Path), new TrainTransform(12));
        Assert.That((ds.Count, ds.NumClasses), Is.EqualTo((9, 3)));
        using var loader = new DataLoader(ds, new DataLoaderOptions(4, true, 0));
        var labels = new List<long>();
        foreach (var b in loader.Epoch(0))
            using (b)
            {
                Assert.That(b.Images.Shape, Is.EqualTo(new Shape(b.Count, 3, 12, 12)));
                var x = b.Images.ToArray<float>();
                // Solid colours: every pixel of sample 0 has its class's red value.
                double red = (80 * b.Labels.ToArray<long>()[0] / 255.0 - 0.485) / 0.229;
                Assert.That(x[0], Is.EqualTo(red).Within(0.1));
                labels.AddRange(b.Labels.ToArray<long>());
            }
        Assert.That(labels.Order(), Is.EqualTo(new long[] { 0, 0, 0, 1, 1, 1, 2, 2, 2 }));
    }

    [Test]
    public void BadOptionsAreRejected()
    {
        var ds = new FakeDataset(3);
        Assert.Throws<ArgumentException>(() => new DataLoader(ds, new DataLoaderOptions(0, false, 0)));
        Assert.Throws<ArgumentException>(() => new DataLoader(ds, new DataLoaderOptions(2, false, 0, Prefetch: 0)));
        Assert.Throws<ArgumentException>(() => new DataLoader(ds, new DataLoaderOptions(2, false, 0, Workers: -1)));
        var e = Assert.Throws<ArgumentException>(() => new DataLoader(ds, new DataLoaderOptions(4, false, 0, DropLast: true)));
        Assert.That(e!.Message, Does.Contain("no full batch"));
    }
}
