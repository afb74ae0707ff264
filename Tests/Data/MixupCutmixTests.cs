// Mixup and CutMix against torchvision's reference recipe (Fixtures/recipe/augment.json, made by
// Tools/reference/make_augment_fixtures.py): the mixup blend of a batch with its roll by one, bit
// for bit in float32; the cutmix box and corrected lambda for given (lambda, r_x, r_y); then the
// whole-batch draw: the switch between the two (probability 0.5 when both are on), lambda's
// Beta(alpha, alpha) law (mean 1/2, variance 1/(4(2 alpha + 1))), partner labels, and that the
// loader applies it per batch deterministically, whatever the number of workers.
using NUnit.Framework;
using ResidualEngine.Data;

namespace ResidualEngine.Tests.Data;

public class MixupCutmixTests
{
    [Test]
    public void MixupBlendsWithTheRolledBatchAsTorchvision()
    {
        var m = AutoAugmentTests.Fixture().GetProperty("mixup");
        var shape = m.GetProperty("shape").EnumerateArray().Select(x => x.GetInt32()).ToArray();
        var batch = m.GetProperty("batch").EnumerateArray().Select(x => (float)x.GetDouble()).ToArray();
        int per = shape[1] * shape[2] * shape[3];
        foreach (var c in m.GetProperty("cases").EnumerateArray())
        {
            var x = (float[])batch.Clone();
            MixupCutmix.Mixup(x, shape[0], per, c.GetProperty("lam").GetDouble());
            var expected = c.GetProperty("out").EnumerateArray().Select(v => (float)v.GetDouble()).ToArray();
            Assert.That(x, Is.EqualTo(expected), $"lambda {c.GetProperty("lam").GetDouble()}: bit for bit");
        }
    }

    [Test]
    public void CutmixBoxAndLambdaAreTorchvisions()
    {
        var cases = AutoAugmentTests.Fixture().GetProperty("cutmix").EnumerateArray().ToList();
        Assert.That(cases, Has.Count.GreaterThanOrEqualTo(8));
        foreach (var c in cases)
        {
            int h = c.GetProperty("h").GetInt32(), w = c.GetProperty("w").GetInt32();
            var (box, lam) = MixupCutmix.CutmixBox(h, w, c.GetProperty("lam").GetDouble(), c.GetProperty("r_x").GetInt32(), c.GetProperty("r_y").GetInt32());
            var b = c.GetProperty("box").EnumerateArray().Select(x => x.GetInt32()).ToArray();
            Assert.That(new[] { box.X, box.Y, box.X + box.Width, box.Y + box.Height }, Is.EqualTo(b), $"{c}");
            Assert.That(lam, Is.EqualTo(c.GetProperty("lam_corrected").GetDouble()), $"{c}");
        }
    }

    private static (float[] Images, long[] Labels) Batch(int n, int c, int h, int w)
    {
        var images = new float[n * c * h * w];
        for (int i = 0; i < n; i++) images.AsSpan(i * c * h * w, c * h * w).Fill(i + 1); // sample i is all (i + 1)
        return (images, Enumerable.Range(0, n).Select(i => (long)(10 + i)).ToArray());
    }

    [Test]
    public void CutmixPastesThePreviousSamplesBox()
    {
        const int n = 4, c = 3, h = 12, w = 10;
        var (images, labels) = Batch(n, c, h, w);
        var r = new MixupCutmix(0, 1.0).Apply(images, n, c, h, w, labels, new Random(5))!;
        Assert.That(r.Kind, Is.EqualTo(MixKind.Cutmix));
        Assert.That(r.PartnerLabels, Is.EqualTo(new long[] { 13, 10, 11, 12 }), "sample i is paired with i - 1");
        var box = r.Box!.Value;
        Assert.That(r.Lambda, Is.EqualTo(1.0 - (double)(box.Width * box.Height) / (h * w)));
        for (int i = 0; i < n; i++)
        {
            float own = i + 1, other = (i + n - 1) % n + 1;
            for (int ch = 0; ch < c; ch++)
                for (int y = 0; y < h; y++)
                    for (int x = 0; x < w; x++)
                    {
                        bool inside = x >= box.X && x < box.X + box.Width && y >= box.Y && y < box.Y + box.Height;
                        Assert.That(images[((i * c + ch) * h + y) * w + x], Is.EqualTo(inside ? other : own), $"sample {i} ({x}, {y})");
                    }
        }
    }

    [Test]
    public void BothOnSwitchesHalfTheTimeAndLambdaFollowsBeta()
    {
        const int n = 2, c = 1, h = 8, w = 8;
        var both = new MixupCutmix(0.2, 1.0);
        int cut = 0, trials = 4000;
        var mixLams = new List<double>();
        for (int s = 0; s < trials; s++)
        {
            var (images, labels) = Batch(n, c, h, w);
            var r = both.Apply(images, n, c, h, w, labels, new Random(s))!;
            if (r.Kind == MixKind.Cutmix) cut++;
            else mixLams.Add(r.Lambda);
            Assert.That(r.Lambda, Is.InRange(0.0, 1.0));
        }
        Assert.That(cut / (double)trials, Is.EqualTo(0.5).Within(0.04));
        // Beta(0.2, 0.2): mean 1/2, variance 1 / (4 (2 * 0.2 + 1)) = 0.1786; most mass near 0 and 1.
        double mean = mixLams.Average(), variance = mixLams.Select(l => (l - mean) * (l - mean)).Average();
        Assert.That(mean, Is.EqualTo(0.5).Within(0.03));
        Assert.That(variance, Is.EqualTo(1 / (4 * 1.4)).Within(0.015));
        // Beta(1, 1) is uniform: variance 1/12.
        var uniform = Enumerable.Range(0, 4000).Select(s => Beta.Sample(1.0, new Random(s))).ToList();
        double um = uniform.Average();
        Assert.That(uniform.Select(l => (l - um) * (l - um)).Average(), Is.EqualTo(1.0 / 12).Within(0.006));
        // A tiny alpha still gives a number in [0, 1] (no 0/0).
        Assert.That(Enumerable.Range(0, 200).Select(s => Beta.Sample(0.001, new Random(s))), Is.All.InRange(0.0, 1.0));
        Assert.That(() => new MixupCutmix(0, 0), Throws.ArgumentException.With.Message.Contains("both 0"));
        Assert.That(() => new MixupCutmix(-1, 0), Throws.ArgumentException.With.Message.Contains("mixup alpha"));
    }

    [Test]
    public void TheLoaderMixesEachBatchTheSameWayWhateverTheWorkers()
    {
        var data = new FixedDataset(24, 3, 16);
        MixResult?[] Run(int workers, out float[][] images)
        {
            using var loader = new DataLoader(data, new DataLoaderOptions(8, Shuffle: true, Seed: 4, Workers: workers) { BatchAugmentation = new MixupCutmix(0.4, 1.0) });
            var mixes = new List<MixResult?>();
            var imgs = new List<float[]>();
            foreach (var b in loader.Epoch(1))
                using (b)
                {
                    Assert.That(b.Mix, Is.Not.Null);
                    Assert.That(b.Mix!.PartnerLabels.ToArray<long>(), Is.EqualTo(Roll(b.Labels.ToArray<long>())));
                    mixes.Add(new MixResult(b.Mix.Kind, b.Mix.Lambda, b.Mix.PartnerLabels.ToArray<long>(), null));
                    imgs.Add(b.Images.ToArray<float>());
                }
            images = imgs.ToArray();
            return mixes.ToArray();
        }
        var a = Run(0, out var ia);
        var b = Run(3, out var ib);
        Assert.That(a.Select(m => (m!.Kind, m.Lambda)), Is.EqualTo(b.Select(m => (m!.Kind, m.Lambda))));
        Assert.That(ia, Is.EqualTo(ib));
        Assert.That(a.Select(m => m!.Lambda).Distinct().Count(), Is.GreaterThan(1), "each batch draws its own lambda");
    }

    private static long[] Roll(long[] y) => y.Select((_, i) => y[(i + y.Length - 1) % y.Length]).ToArray();

    /// <summary>Sample k: an image filled with k, label k % classes.</summary>
    private sealed class FixedDataset(int count, int classes, int size) : IDataset
    {
        public int Count => count;
        public int NumClasses => classes;
        public IReadOnlyList<string> Classes => Enumerable.Range(0, classes).Select(i => $"c{i}").ToList();

        public Sample Get(int index, Random rng)
        {
            var img = new float[3 * size * size];
            Array.Fill(img, index);
            return new Sample(img, index % classes, size, size);
        }
    }
}
