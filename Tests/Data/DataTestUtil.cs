// Helpers for the data tests: temporary folders, images encoded with SkiaSharp, fixture paths.
using NUnit.Framework;
using SkiaSharp;

namespace ResidualEngine.Tests.Data;

internal sealed class TempDir : IDisposable
{
    public TempDir()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "residual-data-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string Sub(params string[] parts) => System.IO.Path.Combine([Path, .. parts]);

    /// <summary>Writes bytes to a path relative to the folder, creating folders.</summary>
    public string Write(string relative, byte[] bytes)
    {
        var p = Sub(relative);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(p)!);
        File.WriteAllBytes(p, bytes);
        return p;
    }

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); }
        catch (IOException) { }
    }
}

internal static class TestImages
{
    public static string Fixture(string name) =>
        System.IO.Path.Combine(TestContext.CurrentContext.TestDirectory, "Fixtures", "data", name);

    /// <summary>An image whose pixel (x, y) is f(x, y), encoded in <paramref name="format"/>.</summary>
    public static byte[] Encode(int w, int h, Func<int, int, (byte R, byte G, byte B)> f,
        SKEncodedImageFormat format = SKEncodedImageFormat.Jpeg, int quality = 95)
    {
        using var bmp = new SKBitmap(new SKImageInfo(w, h, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        var px = bmp.GetPixelSpan();
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                var (r, g, b) = f(x, y);
                int o = 4 * (y * w + x);
                px[o] = r;
                px[o + 1] = g;
                px[o + 2] = b;
                px[o + 3] = 255;
            }
        using var data = bmp.Encode(format, quality);
        return data.ToArray();
    }

    /// <summary>A solid-colour JPEG.</summary>
    public static byte[] Solid(int w, int h, byte r, byte g, byte b) => Encode(w, h, (_, _) => (r, g, b));

    /// <summary>A smooth gradient with some structure (for resampling comparisons).</summary>
    public static byte[] Pattern(int w, int h, SKEncodedImageFormat format = SKEncodedImageFormat.Jpeg) =>
        Encode(w, h, (x, y) => ((byte)(255 * x / Math.Max(1, w - 1)), (byte)(255 * y / Math.Max(1, h - 1)),
            (byte)(128 + 100 * Math.Sin(x * 0.05) * Math.Cos(y * 0.07))), format);
}
