// RandomErasing as torchvision's (scale 0.02-0.33, ratio 0.3-3.3, value 0, probability p, up to
// 10 attempts) and the per-sample pipeline of the training transforms: crop and flip, then the
// auto-augment policy on the 8-bit crop, then normalisation, then random erasing, with the draws
// in that order from the sample's generator (so a sample is a function of its seed).
using NUnit.Framework;
using ResidualEngine.Data;

namespace ResidualEngine.Tests.Data;

public class SampleAugmentTests
{
    [Test]
    public void ErasedBoxesFollowTorchvisionsRanges()
    {
        var e = new RandomErasing(1.0);
        int drawn = 0;
        for (int s = 0; s < 3000; s++)
        {
            var box = e.Draw(32, 40, new Random(s));
            if (box is not { } b) continue;
            drawn++;
            Assert.That(b.Height, Is.LessThan(32));
            Assert.That(b.Width, Is.LessThan(40));
            Assert.That(b.X, Is.InRange(0, 40 - b.Width));
            Assert.That(b.Y, Is.InRange(0, 32 - b.Height));
            // Rounding h and w moves the area off the drawn fraction by up to about a row and a column.
            double area = (double)b.Width * b.Height / (32 * 40), slack = (b.Width + b.Height + 1.0) / (32 * 40);
            Assert.That(area, Is.InRange(0.02 - slack, 0.33 + slack));
            if (b.Width > 3 && b.Height > 3) Assert.That((double)b.Height / b.Width, Is.InRange(0.3 * 0.6, 3.3 / 0.6));
        }
        Assert.That(drawn, Is.GreaterThan(2900), "with p = 1 nearly every image gets a box (a few draws fit in none of 10 attempts)");
        int some = Enumerable.Range(0, 4000).Count(s => new RandomErasing(0.25).Draw(32, 40, new Random(s)) is not null);
        Assert.That(some / 4000.0, Is.EqualTo(0.25).Within(0.03));
        Assert.That(Enumerable.Range(0, 100).All(s => new RandomErasing(0).Draw(8, 8, new Random(s)) is null));
        Assert.That(() => new RandomErasing(1.5), Throws.ArgumentException.With.Message.Contains("probability"));
    }

    [Test]
    public void ErasingZeroesTheBoxOnly()
    {
        var e = new RandomErasing(1.0);
        var x = Enumerable.Range(0, 3 * 10 * 12).Select(i => 1f + i).ToArray();
        var box = e.Draw(10, 12, new Random(3))!.Value;
        e.Apply(x, 3, 10, 12, new Random(3));
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < 10; y++)
                for (int u = 0; u < 12; u++)
                {
                    int i = (c * 10 + y) * 12 + u;
                    bool inside = u >= box.X && u < box.X + box.Width && y >= box.Y && y < box.Y + box.Height;
                    Assert.That(x[i], Is.EqualTo(inside ? 0f : 1f + i));
                }
    }

    private static RgbImage Picture(int size)
    {
        var px = new byte[3 * size * size];
        for (int i = 0; i < px.Length; i++) px[i] = (byte)(i * 29 % 251);
        return new RgbImage(size, size, px);
    }

    [TestCase("ta_wide", 0.0)]
    [TestCase("ra", 0.5)]
    [TestCase("imagenet", 1.0)]
    public void TheTransformCropsThenAugmentsThenNormalisesThenErases(string policy, double erase)
    {
        const int size = 16;
        var img = Picture(size);
        var augment = SampleAugment.Create(policy, erase)!;
        // Padding 0 and an image of the crop's size: the crop is the picture itself (or its mirror image).
        var t = new CifarTransform(size, train: true, Normalization.None, padding: 0) { Augment = augment };
        for (int seed = 0; seed < 40; seed++)
        {
            var got = new float[3 * size * size];
            t.Apply(img, new Random(seed), got);

            var rng = new Random(seed);
            var (_, _, flip) = t.Draw(rng);
            var p = new PlanarImage(3, size, size);
            for (int c = 0; c < 3; c++)
                for (int y = 0; y < size; y++)
                    for (int x = 0; x < size; x++)
                        p.Data[(c * size + y) * size + x] = img.Pixels[3 * (y * size + (flip ? size - 1 - x : x)) + c];
            augment.Policy!.Apply(p, rng);
            var expect = new float[got.Length];
            p.Normalize([1f / 255, 1f / 255, 1f / 255], [-0f, -0f, -0f], expect);
            augment.Erasing?.Apply(expect, 3, size, size, rng);
            Assert.That(got, Is.EqualTo(expect), $"seed {seed}");
        }
    }

    [Test]
    public void NoOptionsMeansNoAugmentation()
    {
        Assert.That(SampleAugment.Create("none", 0), Is.Null);
        Assert.That(SampleAugment.Create(null, 0), Is.Null);
        Assert.That(SampleAugment.Create("none", 0.1)!.Policy, Is.Null);
        Assert.That(SampleAugment.Create("ra", 0, raNumOps: 3, raMagnitude: 12)!.Policy, Is.TypeOf<RandAugment>().With.Property("NumOps").EqualTo(3).And.Property("Magnitude").EqualTo(12));
    }
}
