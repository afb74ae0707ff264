// He et al.'s small-image augmentation (CifarTransform) against torchvision 0.14: for fixed crop
// positions and flips, the output equals the functional pipeline CenterCrop/Resize -> Pad(4) +
// crop -> hflip -> ToTensor stored in Fixtures/data/small_image_refs.json (made by
// make_small_image_fixture.py) — exactly where no resampling happens, within 2 levels where PIL
// resizes; the random draw covers the same range as torchvision's RandomCrop.get_params, in the
// same order, with flips half the time; evaluation is the unpadded centre view.
using System.Text.Json;
using NUnit.Framework;
using ResidualEngine.Data;

namespace ResidualEngine.Tests.Data;

public class SmallImageAugmentationTests
{
    private static IEnumerable<TestCaseData> Cases()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(TestImages.Fixture("small_image_refs.json")));
        foreach (var c in doc.RootElement.GetProperty("cases").EnumerateArray())
            yield return new TestCaseData(c.GetProperty("image").GetString(), c.GetProperty("fit").GetString(), c.GetProperty("top").GetInt32(),
                c.GetProperty("left").GetInt32(), c.GetProperty("flip").GetBoolean(), c.GetProperty("chw").GetString());
    }

    [TestCaseSource(nameof(Cases))]
    public void MatchesTorchvision(string image, string fit, int top, int left, bool flip, string chw)
    {
        var expected = Convert.FromBase64String(chw);
        using var img = EncodedImage.Open(TestImages.Fixture(image));
        var t = new CifarTransform(32, train: true, Normalization.None, fit: fit == "pad" ? SmallImageFit.Pad : SmallImageFit.Resize);
        var o = new float[3 * 32 * 32];
        t.Render(img, top, left, flip, o);
        // Pad and crop move pixels without resampling: exact. PIL rounds between its resize passes: 2 levels.
        double tol = fit == "pad" ? 1e-3 : 2.01;
        double worst = 0;
        for (int i = 0; i < o.Length; i++) worst = Math.Max(worst, Math.Abs(o[i] * 255 - expected[i]));
        Assert.That(worst, Is.LessThanOrEqualTo(tol), $"{image} {fit} top {top} left {left} flip {flip}");
        // Auto picks padding for images no larger than 32, resizing for larger ones.
        var auto = new float[o.Length];
        new CifarTransform(32, train: true, Normalization.None).Render(img, top, left, flip, auto);
        bool autoPads = img.Width <= 32 && img.Height <= 32;
        if (autoPads == (fit == "pad")) Assert.That(auto, Is.EqualTo(o));
    }

    [Test]
    public void RandomDrawsCoverTorchvisionsRangeInItsOrder()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(TestImages.Fixture("small_image_refs.json")));
        var tops = doc.RootElement.GetProperty("random_crop_tops").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        var lefts = doc.RootElement.GetProperty("random_crop_lefts").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        var t = new CifarTransform(32, train: true);
        var rng = new Random(3);
        var seenTop = new int[9];
        var seenLeft = new int[9];
        int flips = 0, n = 9000;
        for (int i = 0; i < n; i++)
        {
            var (top, left, flip) = t.Draw(rng);
            seenTop[top]++;
            seenLeft[left]++;
            if (flip) flips++;
        }
        Assert.That(Enumerable.Range(0, 9).Where(k => seenTop[k] > 0), Is.EqualTo(tops));
        Assert.That(Enumerable.Range(0, 9).Where(k => seenLeft[k] > 0), Is.EqualTo(lefts));
        // Uniform: each of 9 positions ~1000 times (binomial sd ~30); flips ~4500 (sd ~47).
        Assert.That(seenTop.Concat(seenLeft).Min(), Is.GreaterThan(850));
        Assert.That(seenTop.Concat(seenLeft).Max(), Is.LessThan(1150));
        Assert.That(flips, Is.InRange(4250, 4750));
        // Draw consumes top, left, flip in this order, as torchvision (randint for i, then j; then rand for the flip).
        var a = new Random(11);
        var b = new Random(11);
        var d = t.Draw(a);
        Assert.That(d, Is.EqualTo((b.Next(0, 9), b.Next(0, 9), b.NextDouble() < 0.5)));
    }

    [Test]
    public void ApplyIsRenderOfTheDrawAndEvalIsTheCentreView()
    {
        using var img = EncodedImage.Open(TestImages.Fixture("small_gray_28x28.png"));
        var t = new CifarTransform(32, train: true, Normalization.Cifar10);
        var viaApply = new float[3072];
        var viaRender = new float[3072];
        t.Apply(img, new Random(5), viaApply);
        var (top, left, flip) = t.Draw(new Random(5));
        t.Render(img, top, left, flip, viaRender);
        Assert.That(viaApply, Is.EqualTo(viaRender));

        var eval = new float[3072];
        new CifarTransform(32, train: false, Normalization.Cifar10).Apply(img, new Random(5), eval);
        var centre = new float[3072];
        t.Render(img, 4, 4, false, centre);
        Assert.That(eval, Is.EqualTo(centre));
        // The 28x28 picture sits at (2, 2) in the 32x32 view; around it is normalised black.
        var gray = ImageDecoder.Decode(TestImages.Fixture("small_gray_28x28.png"));
        var n = Normalization.Cifar10;
        Assert.That(eval[0], Is.EqualTo(-n.MeanR / n.StdR).Within(1e-5));
        Assert.That(eval[1024 + 2 * 32 + 2], Is.EqualTo((gray.GetPixel(0, 0).G / 255f - n.MeanG) / n.StdG).Within(1e-5));
        Assert.That(eval[2048 + 31 * 32 + 31], Is.EqualTo(-n.MeanB / n.StdB).Within(1e-5));
        Assert.Throws<ArgumentOutOfRangeException>(() => t.Render(img, 9, 0, false, centre));
    }

    [Test]
    public void ZeroPaddingMeansFlipsOnly()
    {
        using var img = EncodedImage.Open(TestImages.Fixture("small_rgb_27x30.png"));
        var t = new CifarTransform(32, train: true, Normalization.None, padding: 0);
        var eval = new float[3072];
        new CifarTransform(32, train: false, Normalization.None, padding: 0).Apply(img, new Random(0), eval);
        int flipped = 0;
        for (int seed = 0; seed < 20; seed++)
        {
            var o = new float[3072];
            t.Apply(img, new Random(seed), o);
            bool same = o.SequenceEqual(eval);
            if (!same)
            {
                flipped++;
                for (int c = 0; c < 3; c++)
                    for (int y = 0; y < 32; y++)
                        for (int x = 0; x < 32; x++)
                            Assert.That(o[c * 1024 + y * 32 + x], Is.EqualTo(eval[c * 1024 + y * 32 + 31 - x]));
            }
        }
        Assert.That(flipped, Is.InRange(3, 17));
    }
}
