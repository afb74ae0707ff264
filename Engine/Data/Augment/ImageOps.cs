// The photometric AutoAugment operations on 8-bit images, with the arithmetic of
// torchvision.transforms.functional (0.14) on uint8 tensors, so results are bitwise equal:
//   blend(x, y, r)   = clamp(r * x + (1 - r) * y, 0, 255), truncated to 8 bits, in float32
//                      (r and 1 - r each rounded to float32, as torch rounds a Python scalar)
//   brightness f     = blend(x, 0, f)
//   saturation f     = blend(x, gray, f), gray = trunc(0.2989 R + 0.587 G + 0.114 B) in float32
//   contrast f       = blend(x, mean(gray), f), the mean in float32
//   sharpness f      = blend(x, blurred, f); blurred = round(3x3 [1 1 1; 1 5 1; 1 1 1] / 13) inside,
//                      the one-pixel border unchanged; images of 2 pixels or less on a side unchanged
//   posterize b      = x & ~(2^(8-b) - 1)        solarize t = x >= t ? 255 - x : x
//   autocontrast     = per channel (x - min) * 255 / (max - min) in float32, truncated; a flat
//                      channel is unchanged
//   equalize         = per channel, torchvision's histogram lookup table (see Equalize)
//   invert           = 255 - x
// Every operation works in place on a PlanarImage.
namespace ResidualEngine.Data;

public static class ImageOps
{
    private static byte Truncate(float v) => v <= 0f ? (byte)0 : v >= 255f ? (byte)255 : (byte)v;

    /// <summary>Blends every channel with a per-pixel <paramref name="other"/> plane (shared by the channels).</summary>
    private static void BlendPlane(PlanarImage img, ReadOnlySpan<byte> other, double ratio)
    {
        float r = (float)ratio, q = (float)(1.0 - ratio);
        for (int c = 0; c < img.Channels; c++)
        {
            var p = img.Plane(c);
            for (int i = 0; i < p.Length; i++) p[i] = Truncate(r * p[i] + q * other[i]);
        }
    }

    private static void CheckFactor(double factor, string what)
    {
        if (!(factor >= 0) || double.IsInfinity(factor)) throw new ArgumentException($"{what} factor must be >= 0 and finite, got {factor}");
    }

    public static void Brightness(PlanarImage img, double factor)
    {
        ArgumentNullException.ThrowIfNull(img);
        CheckFactor(factor, "brightness");
        float r = (float)factor, q = (float)(1.0 - factor);
        var d = img.Data;
        for (int i = 0; i < d.Length; i++) d[i] = Truncate(r * d[i] + q * 0f);
    }

    /// <summary>torchvision's rgb_to_grayscale on uint8: 0.2989 R + 0.587 G + 0.114 B in float32, truncated.</summary>
    public static byte[] Grayscale(PlanarImage img)
    {
        ArgumentNullException.ThrowIfNull(img);
        if (img.Channels != 3) throw new ArgumentException($"grayscale needs 3 channels, got {img.Channels}");
        var gray = new byte[img.PlaneSize];
        ReadOnlySpan<byte> r = img.Plane(0), g = img.Plane(1), b = img.Plane(2);
        for (int i = 0; i < gray.Length; i++) gray[i] = (byte)(0.2989f * r[i] + 0.587f * g[i] + 0.114f * b[i]);
        return gray;
    }

    /// <summary>torchvision's adjust_saturation ("Color" in AutoAugment).</summary>
    public static void Saturation(PlanarImage img, double factor)
    {
        ArgumentNullException.ThrowIfNull(img);
        CheckFactor(factor, "saturation");
        if (img.Channels == 1) return;
        BlendPlane(img, Grayscale(img), factor);
    }

    public static void Contrast(PlanarImage img, double factor)
    {
        ArgumentNullException.ThrowIfNull(img);
        CheckFactor(factor, "contrast");
        var gray = img.Channels == 3 ? Grayscale(img) : img.Data;
        long sum = 0;
        foreach (var v in gray) sum += v;
        // torch sums in float32; below 2^24 (any image up to 256 x 256) that sum is exact.
        float mean = (float)sum / gray.Length;
        float r = (float)factor, q = (float)(1.0 - factor), m = q * mean;
        var d = img.Data;
        for (int i = 0; i < d.Length; i++) d[i] = Truncate(r * d[i] + m);
    }

    public static void Sharpness(PlanarImage img, double factor)
    {
        ArgumentNullException.ThrowIfNull(img);
        CheckFactor(factor, "sharpness");
        int h = img.Height, w = img.Width;
        if (h <= 2 || w <= 2) return;
        float r = (float)factor, q = (float)(1.0 - factor);
        var blurred = new byte[img.PlaneSize];
        for (int c = 0; c < img.Channels; c++)
        {
            var p = img.Plane(c);
            p.CopyTo(blurred);
            for (int y = 1; y < h - 1; y++)
                for (int x = 1; x < w - 1; x++)
                {
                    int o = y * w + x;
                    int s = p[o - w - 1] + p[o - w] + p[o - w + 1] + p[o - 1] + 5 * p[o] + p[o + 1] + p[o + w - 1] + p[o + w] + p[o + w + 1];
                    // round(s / 13): s / 13 is never exactly halfway, so the float32 convolution rounds the same.
                    blurred[o] = (byte)((2 * s + 13) / 26);
                }
            for (int i = 0; i < p.Length; i++) p[i] = Truncate(r * p[i] + q * blurred[i]);
        }
    }

    public static void Posterize(PlanarImage img, int bits)
    {
        ArgumentNullException.ThrowIfNull(img);
        if (bits < 0 || bits > 8) throw new ArgumentException($"posterize keeps 0 to 8 bits, got {bits}");
        byte mask = (byte)(0xFF << (8 - bits));
        var d = img.Data;
        for (int i = 0; i < d.Length; i++) d[i] &= mask;
    }

    public static void Solarize(PlanarImage img, double threshold)
    {
        ArgumentNullException.ThrowIfNull(img);
        if (!(threshold >= 0 && threshold <= 255)) throw new ArgumentException($"solarize threshold must be in [0, 255], got {threshold}");
        float t = (float)threshold;
        var d = img.Data;
        for (int i = 0; i < d.Length; i++) if (d[i] >= t) d[i] = (byte)(255 - d[i]);
    }

    public static void AutoContrast(PlanarImage img)
    {
        ArgumentNullException.ThrowIfNull(img);
        for (int c = 0; c < img.Channels; c++)
        {
            var p = img.Plane(c);
            byte lo = 255, hi = 0;
            foreach (var v in p)
            {
                if (v < lo) lo = v;
                if (v > hi) hi = v;
            }
            if (lo == hi) continue; // scale = 255 / 0: torchvision leaves the channel as it is
            float min = lo, scale = 255f / (hi - (float)lo);
            for (int i = 0; i < p.Length; i++) p[i] = Truncate((p[i] - min) * scale);
        }
    }

    /// <summary>
    /// Per channel: with hist the 256-bin histogram, step = (pixels minus the count of the highest
    /// value present) / 255, floored; when step is 0 the channel is unchanged, else value v maps
    /// to floor((cumsum(hist)[v - 1] + floor(step / 2)) / step), clamped to 255 (0 maps to 0).
    /// </summary>
    public static void Equalize(PlanarImage img)
    {
        ArgumentNullException.ThrowIfNull(img);
        Span<int> hist = stackalloc int[256];
        Span<byte> lut = stackalloc byte[256];
        for (int c = 0; c < img.Channels; c++)
        {
            var p = img.Plane(c);
            hist.Clear();
            foreach (var v in p) hist[v]++;
            int last = 255;
            while (hist[last] == 0) last--;
            int step = (p.Length - hist[last]) / 255;
            if (step == 0) continue;
            long cum = 0;
            lut[0] = 0;
            for (int v = 1; v < 256; v++)
            {
                cum += hist[v - 1];
                lut[v] = (byte)Math.Min(255, (cum + step / 2) / step);
            }
            for (int i = 0; i < p.Length; i++) p[i] = lut[p[i]];
        }
    }

    public static void Invert(PlanarImage img)
    {
        ArgumentNullException.ThrowIfNull(img);
        var d = img.Data;
        for (int i = 0; i < d.Length; i++) d[i] = (byte)(255 - d[i]);
    }
}
