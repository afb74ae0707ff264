// Decoding to RGB: grayscale and CMYK JPEGs (fixtures written by PIL), PNG alpha dropped as PIL's
// convert("RGB") does, format found from the content (a PNG named .JPEG), scaled JPEG decoding,
// and clear errors for empty, truncated and non-image files.
using NUnit.Framework;
using ResidualEngine.Data;
using SkiaSharp;

namespace ResidualEngine.Tests.Data;

public class DecodeTests
{
    // The fixtures' two colour blocks (see Fixtures/data/make_fixtures.py).
    private static readonly (int R, int G, int B) Left = (200, 30, 40), Right = (20, 120, 220);

    private static void AssertNear((byte R, byte G, byte B) actual, (int R, int G, int B) expected, int tol, string what)
    {
        Assert.That(Math.Abs(actual.R - expected.R), Is.LessThanOrEqualTo(tol), $"{what}: R {actual.R} vs {expected.R}");
        Assert.That(Math.Abs(actual.G - expected.G), Is.LessThanOrEqualTo(tol), $"{what}: G {actual.G} vs {expected.G}");
        Assert.That(Math.Abs(actual.B - expected.B), Is.LessThanOrEqualTo(tol), $"{what}: B {actual.B} vs {expected.B}");
    }

    [Test]
    public void CmykJpegDecodesToItsRgbColours()
    {
        using var img = EncodedImage.Open(TestImages.Fixture("cmyk.jpg"));
        Assert.That(img.Format, Is.EqualTo("Jpeg"));
        var rgb = img.Decode();
        Assert.That((rgb.Width, rgb.Height), Is.EqualTo((24, 16)));
        AssertNear(rgb.GetPixel(4, 8), Left, 8, "left block");
        AssertNear(rgb.GetPixel(19, 8), Right, 8, "right block");
    }

    [Test]
    public void GrayscaleJpegIsReplicatedToThreeChannels()
    {
        var rgb = ImageDecoder.Decode(TestImages.Fixture("gray.jpg"));
        // PIL's L = (299 R + 587 G + 114 B) / 1000.
        int left = (299 * Left.R + 587 * Left.G + 114 * Left.B) / 1000;
        int right = (299 * Right.R + 587 * Right.G + 114 * Right.B) / 1000;
        AssertNear(rgb.GetPixel(4, 8), (left, left, left), 3, "left block");
        AssertNear(rgb.GetPixel(19, 8), (right, right, right), 3, "right block");
    }

    [Test]
    public void PngAlphaIsDroppedKeepingTheColour()
    {
        var rgb = ImageDecoder.Decode(TestImages.Fixture("alpha.png"));
        Assert.That(rgb.GetPixel(1, 1), Is.EqualTo(((byte)180, (byte)40, (byte)60)));
        // Fully transparent pixels keep their stored colour (PIL convert("RGB") drops alpha).
        Assert.That(rgb.GetPixel(6, 6), Is.EqualTo(((byte)10, (byte)200, (byte)30)));
    }

    [TestCase("blocks.gif", "Gif")]
    [TestCase("blocks.bmp", "Bmp")]
    public void PaletteAndBitmapFormatsDecode(string file, string format)
    {
        using var img = EncodedImage.Open(TestImages.Fixture(file));
        Assert.That(img.Format, Is.EqualTo(format));
        var rgb = img.Decode();
        AssertNear(rgb.GetPixel(4, 8), Left, 2, "left block");
        AssertNear(rgb.GetPixel(19, 8), Right, 2, "right block");
    }

    [Test]
    public void WebpRoundTrips()
    {
        var webp = TestImages.Encode(6, 4, (x, _) => x < 3 ? ((byte)200, (byte)30, (byte)40) : ((byte)20, (byte)120, (byte)220),
            SkiaSharp.SKEncodedImageFormat.Webp, quality: 100);
        using var img = EncodedImage.FromBytes(webp, "x.webp");
        Assert.That(img.Format, Is.EqualTo("Webp"));
        AssertNear(img.Decode().GetPixel(0, 1), Left, 12, "left");
    }

    [Test]
    public void FormatComesFromTheContentNotTheExtension()
    {
        using var d = new TempDir();
        var png = TestImages.Encode(5, 3, (x, y) => ((byte)(40 * x), (byte)(80 * y), 7), SKEncodedImageFormat.Png);
        var path = d.Write("cls/photo.JPEG", png);
        using var img = EncodedImage.Open(path);
        Assert.That(img.Format, Is.EqualTo("Png"));
        var rgb = img.Decode(1, 1); // scaling requests are ignored for non-JPEG formats
        Assert.That((rgb.Width, rgb.Height), Is.EqualTo((5, 3)));
        Assert.That(rgb.GetPixel(3, 2), Is.EqualTo(((byte)120, (byte)160, (byte)7)), "PNG is lossless");
    }

    [Test]
    public void JpegDecodesAtTheSmallestScaleCoveringTheRequest()
    {
        using var img = EncodedImage.FromBytes(TestImages.Pattern(64, 48), "pattern");
        Assert.That(img.Decode().Width, Is.EqualTo(64));
        var q = img.Decode(16, 12);
        Assert.That((q.Width, q.Height), Is.EqualTo((16, 12)), "1/4 covers 16x12");
        var h = img.Decode(17, 12);
        Assert.That((h.Width, h.Height), Is.EqualTo((32, 24)), "1/4 is one pixel short: 1/2");
        var e = img.Decode(1, 1);
        Assert.That((e.Width, e.Height), Is.EqualTo((8, 6)), "1/8 is the smallest scale");
        var f = img.Decode(33, 1);
        Assert.That((f.Width, f.Height), Is.EqualTo((64, 48)), "no scale below 1 covers 33 columns");
        // A reduced decode is a faithful small version: compare with a box average of the full one.
        var full = img.Decode();
        var (r, g, b) = q.GetPixel(8, 6);
        double avgR = 0;
        for (int y = 24; y < 28; y++) for (int x = 32; x < 36; x++) avgR += full.GetPixel(x, y).R;
        Assert.That(r, Is.EqualTo(avgR / 16).Within(6));
    }

    [Test]
    public void UnreadableInputsThrowInvalidDataNamingTheFile()
    {
        var e1 = Assert.Throws<InvalidDataException>(() => EncodedImage.FromBytes(Array.Empty<byte>(), "zero.jpg"));
        Assert.That(e1!.Message, Does.Contain("zero.jpg").And.Contain("empty"));

        var e2 = Assert.Throws<InvalidDataException>(() => EncodedImage.FromBytes("hello, not an image"u8.ToArray(), "text.jpg"));
        Assert.That(e2!.Message, Does.Contain("text.jpg").And.Contain("not an image"));

        var jpeg = TestImages.Pattern(64, 64);
        var cut = jpeg[..(jpeg.Length / 2)];
        var e3 = Assert.Throws<InvalidDataException>(() => ImageDecoder.Decode(cut, "cut.jpg"));
        Assert.That(e3!.Message, Does.Contain("cut.jpg").And.Contain("truncated"));
    }

    [Test]
    public void RgbImageValidatesItsBuffer()
    {
        Assert.Throws<ArgumentException>(() => new RgbImage(2, 2, new byte[11]));
        Assert.Throws<ArgumentException>(() => new RgbImage(0, 2, Array.Empty<byte>()));
    }
}
