// Transforms against torchvision: RandomResizedCrop parameter bounds and its centre-crop
// fallback, eval resize/centre-crop geometry, and pixel outputs compared with torchvision 0.14's
// (PIL) results stored in Fixtures/data/torchvision_refs.json (made by make_fixtures.py).
// Tolerance: PIL rounds to 8 bits between its two resampling passes and we do not, so outputs
// may differ by ~2 pixel levels, i.e. ~0.04 after normalisation.
using System.Text.Json;
using NUnit.Framework;
using ResidualEngine.Data;

namespace ResidualEngine.Tests.Data;

public class TransformTests
{
    private const double PixelTol = 0.05;

    [Test]
    public void RandomResizedCropStaysWithinItsBounds()
    {
        var rng = new Random(7);
        double minScale = 1, maxScale = 0, minRatio = 10, maxRatio = 0;
        foreach (var (w, h) in new[] { (500, 375), (64, 64), (37, 211) })
            for (int i = 0; i < 3000; i++)
            {
                var b = RandomResizedCrop.GetParams(w, h, rng);
                Assert.That(b.X, Is.InRange(0, w - b.Width));
                Assert.That(b.Y, Is.InRange(0, h - b.Height));
                Assert.That(b.Width, Is.InRange(1, w));
                Assert.That(b.Height, Is.InRange(1, h));
                if (b == RandomResizedCrop.Fallback(w, h)) continue;
                double scale = (double)b.Width * b.Height / (w * h), ratio = (double)b.Width / b.Height;
                // Rounding w and h to integers moves area and ratio a little off the sampled values.
                double slack = 1.0 / Math.Min(b.Width, b.Height);
                Assert.That(scale, Is.InRange(0.08 * (1 - 2.5 * slack), 1.0));
                Assert.That(ratio, Is.InRange(0.75 * (1 - 2.5 * slack), 4.0 / 3.0 * (1 + 2.5 * slack)));
                if (w == 500)
                {
                    minScale = Math.Min(minScale, scale); maxScale = Math.Max(maxScale, scale);
                    minRatio = Math.Min(minRatio, ratio); maxRatio = Math.Max(maxRatio, ratio);
                }
            }
        // The whole ranges are used, not a corner of them.
        Assert.That(minScale, Is.LessThan(0.1));
        Assert.That(maxScale, Is.GreaterThan(0.9));
        Assert.That(minRatio, Is.LessThan(0.78));
        Assert.That(maxRatio, Is.GreaterThan(1.28));
    }

    [Test]
    public void RandomResizedCropFallsBackToATrimmedCentreCrop()
    {
        // Scale 0.9..1 can never fit a 100x10 image with ratio <= 4/3: all 10 attempts fail.
        var rng = new Random(1);
        var wide = RandomResizedCrop.GetParams(100, 10, rng, scaleMin: 0.9, scaleMax: 1.0);
        // torchvision: in_ratio 10 > 4/3, so h = 10, w = round(10 * 4/3) = 13, j = (100 - 13) // 2.
        Assert.That(wide, Is.EqualTo(new CropBox(43, 0, 13, 10)));
        var tall = RandomResizedCrop.GetParams(10, 100, rng, scaleMin: 0.9, scaleMax: 1.0);
        // in_ratio 0.1 < 3/4: w = 10, h = round(10 / 0.75) = 13, i = (100 - 13) // 2.
        Assert.That(tall, Is.EqualTo(new CropBox(0, 43, 10, 13)));
        // In-range ratio: the whole image.
        Assert.That(RandomResizedCrop.Fallback(40, 36), Is.EqualTo(new CropBox(0, 0, 40, 36)));
    }

    [Test]
    public void EvalGeometryFollowsTorchvision()
    {
        var t = new EvalTransform(224);
        Assert.That(t.ResizeTo, Is.EqualTo(256));
        // 500x375: short side 256, long int(256 * 500 / 375) = 341; left round(58.5) = 58 (half to even).
        Assert.That(t.Geometry(500, 375), Is.EqualTo((341, 256, new CropBox(58, 16, 224, 224))));
        Assert.That(t.Geometry(375, 500), Is.EqualTo((256, 341, new CropBox(16, 58, 224, 224))));
        Assert.That(new EvalTransform(64).ResizeTo, Is.EqualTo(73), "round(64 * 256 / 224) = round(73.14)");
    }

    private static RgbImage Fixture(string name) => ImageDecoder.Decode(TestImages.Fixture(name));

    [Test]
    public void EvalOutputMatchesTorchvision()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(TestImages.Fixture("torchvision_refs.json")));
        int cases = 0;
        foreach (var c in doc.RootElement.GetProperty("eval").EnumerateArray())
        {
            int size = c.GetProperty("size").GetInt32();
            var expected = c.GetProperty("output").EnumerateArray().Select(v => v.GetDouble()).ToArray();
            var img = Fixture(c.GetProperty("image").GetString()!);
            var actual = new float[3 * size * size];
            new EvalTransform(size).Apply(img, new Random(0), actual);
            AssertClose(actual, expected, $"eval {c.GetProperty("image").GetString()} size {size}");
            cases++;
        }
        Assert.That(cases, Is.EqualTo(3));
    }

    [Test]
    public void ResizedCropOutputMatchesTorchvision()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(TestImages.Fixture("torchvision_refs.json")));
        int cases = 0;
        foreach (var c in doc.RootElement.GetProperty("crops").EnumerateArray())
        {
            int size = c.GetProperty("size").GetInt32();
            int top = c.GetProperty("top").GetInt32(), left = c.GetProperty("left").GetInt32();
            int h = c.GetProperty("height").GetInt32(), w = c.GetProperty("width").GetInt32();
            bool flip = c.GetProperty("flip").GetBoolean();
            var expected = c.GetProperty("output").EnumerateArray().Select(v => v.GetDouble()).ToArray();
            var img = Fixture(c.GetProperty("image").GetString()!);
            var actual = new float[3 * size * size];
            var g = new ResampleGeometry(left, top, left + w, top + h, size, size, 0, 0, size, size, flip);
            TrainTransform.Render(img, g, Normalization.ImageNet, actual);
            AssertClose(actual, expected, $"resized crop ({left},{top},{w}x{h}) -> {size}{(flip ? " flipped" : "")}");
            cases++;
        }
        Assert.That(cases, Is.EqualTo(4));
    }

    private static void AssertClose(float[] actual, double[] expected, string what)
    {
        Close.Assert(actual.Select(v => (double)v).ToArray(), expected, PixelTol, 0, what);
        double mean = actual.Zip(expected, (a, e) => Math.Abs(a - e)).Average();
        Assert.That(mean, Is.LessThan(0.01), $"{what}: mean |difference|");
    }

    [Test]
    public void TrainTransformIsDeterministicAndFlipMirrors()
    {
        var img = ImageDecoder.Decode(TestImages.Pattern(80, 60));
        var t = new TrainTransform(16);
        var a = new float[3 * 16 * 16];
        var b = new float[3 * 16 * 16];
        t.Apply(img, new Random(5), a);
        t.Apply(img, new Random(5), b);
        Assert.That(b, Is.EqualTo(a));
        t.Apply(img, new Random(6), b);
        Assert.That(b, Is.Not.EqualTo(a));

        var g = new ResampleGeometry(3, 4, 50, 40, 16, 16, 0, 0, 16, 16, false);
        TrainTransform.Render(img, g, Normalization.None, a);
        TrainTransform.Render(img, g with { Flip = true }, Normalization.None, b);
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < 16; y++)
                for (int x = 0; x < 16; x++)
                    Assert.That(b[(c * 16 + y) * 16 + x], Is.EqualTo(a[(c * 16 + y) * 16 + 15 - x]));
    }

    [Test]
    public void NormalisationUsesImageNetMeanAndStd()
    {
        var img = new RgbImage(1, 1, new byte[] { 255, 0, 128 });
        var o = new float[3];
        TrainTransform.Render(img, new ResampleGeometry(0, 0, 1, 1, 1, 1, 0, 0, 1, 1, false), Normalization.ImageNet, o);
        Assert.That(o[0], Is.EqualTo((1 - 0.485) / 0.229).Within(1e-5));
        Assert.That(o[1], Is.EqualTo((0 - 0.456) / 0.224).Within(1e-5));
        Assert.That(o[2], Is.EqualTo((128 / 255.0 - 0.406) / 0.225).Within(1e-5));
    }

    [Test]
    public void CifarCropPadsWithZerosAndIdentityCropIsExact()
    {
        var img = new RgbImage(8, 8, Enumerable.Range(0, 192).Select(i => (byte)(i + 30)).ToArray());
        var t = new CifarTransform(8, train: true, Normalization.None);
        int seen = 0;
        for (int seed = 0; seed < 40; seed++)
        {
            var o = new float[3 * 64];
            t.Apply(img, new Random(seed), o);
            // Every value is either a pixel of the image or padding (0).
            var levels = img.Pixels.ToHashSet();
            Assert.That(o.All(v => v == 0 || (Math.Abs(v * 255 - Math.Round(v * 255)) < 1e-3 && levels.Contains((byte)Math.Round(v * 255)))), Is.True);
            if (o.Contains(0f)) seen++;
        }
        Assert.That(seen, Is.GreaterThan(20), "most random crops show some padding");

        var e = new float[3 * 64];
        new CifarTransform(8, train: false, Normalization.None).Apply(img, new Random(0), e);
        for (int c = 0; c < 3; c++)
            for (int i = 0; i < 64; i++)
                Assert.That(e[c * 64 + i], Is.EqualTo(img.Pixels[3 * i + c] / 255f).Within(1e-6));
    }

    [Test]
    public void ScaledJpegDecodeStaysCloseToFullResolution()
    {
        using var img = EncodedImage.FromBytes(TestImages.Pattern(256, 192), "pattern");
        var fast = new float[3 * 24 * 24];
        var exact = new float[3 * 24 * 24];
        new EvalTransform(24).Apply(img, new Random(0), fast);
        new EvalTransform(24) { ScaledDecode = false }.Apply(img, new Random(0), exact);
        double mean = fast.Zip(exact, (a, b) => Math.Abs(a - b)).Average();
        Assert.That(mean, Is.LessThan(0.03), "mean difference in normalised units (~1.7 levels)");
        Assert.That(fast, Is.Not.EqualTo(exact), "the reduced decode was really used");
    }
}
