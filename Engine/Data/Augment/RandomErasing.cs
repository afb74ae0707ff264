// torchvision's RandomErasing (0.14) with its defaults (scale 0.02-0.33, ratio 0.3-3.3, value 0),
// applied to the normalised sample as torchvision's reference recipe does (after Normalize, so
// the erased box is 0, the mean colour). With probability P, up to 10 attempts draw an area
// fraction uniformly and an aspect ratio log-uniformly; h = round(sqrt(area * ratio)),
// w = round(sqrt(area / ratio)) (half to even, as Python's round); the first box smaller than the
// image in both directions is placed uniformly and erased; if none fits, nothing is erased.
// Draws come from the sample's System.Random in torchvision's order.
namespace ResidualEngine.Data;

public sealed class RandomErasing
{
    public RandomErasing(double probability, double scaleMin = 0.02, double scaleMax = 0.33, double ratioMin = 0.3, double ratioMax = 3.3, float value = 0f)
    {
        if (!(probability >= 0 && probability <= 1)) throw new ArgumentException($"RandomErasing: probability must be in [0, 1], got {probability}");
        if (!(scaleMin >= 0 && scaleMin <= scaleMax && scaleMax <= 1)) throw new ArgumentException($"RandomErasing: need 0 <= scale min <= max <= 1, got {scaleMin}..{scaleMax}");
        if (!(ratioMin > 0 && ratioMin <= ratioMax) || double.IsInfinity(ratioMax)) throw new ArgumentException($"RandomErasing: need 0 < ratio min <= max, got {ratioMin}..{ratioMax}");
        Probability = probability;
        ScaleMin = scaleMin;
        ScaleMax = scaleMax;
        RatioMin = ratioMin;
        RatioMax = ratioMax;
        Value = value;
    }

    public double Probability { get; }
    public double ScaleMin { get; }
    public double ScaleMax { get; }
    public double RatioMin { get; }
    public double RatioMax { get; }
    public float Value { get; }

    /// <summary>The box to erase in a <paramref name="height"/> x <paramref name="width"/> image, or null (not drawn, or no attempt fitted).</summary>
    public CropBox? Draw(int height, int width, Random rng)
    {
        ArgumentNullException.ThrowIfNull(rng);
        if (!(rng.NextDouble() < Probability)) return null;
        double area = (double)height * width, logLo = Math.Log(RatioMin), logHi = Math.Log(RatioMax);
        for (int attempt = 0; attempt < 10; attempt++)
        {
            double target = area * (ScaleMin + (ScaleMax - ScaleMin) * rng.NextDouble());
            double aspect = Math.Exp(logLo + (logHi - logLo) * rng.NextDouble());
            int h = (int)Math.Round(Math.Sqrt(target * aspect));
            int w = (int)Math.Round(Math.Sqrt(target / aspect));
            if (!(h < height && w < width)) continue;
            int top = rng.Next(0, height - h + 1);
            int left = rng.Next(0, width - w + 1);
            return new CropBox(left, top, w, h);
        }
        return null;
    }

    /// <summary>Erases a drawn box of a CHW sample (<paramref name="channels"/> planes of height x width) in place.</summary>
    public void Apply(Span<float> chw, int channels, int height, int width, Random rng)
    {
        if (chw.Length < channels * height * width) throw new ArgumentException($"sample holds {chw.Length} values, needs {channels * height * width}");
        if (Draw(height, width, rng) is not { } box) return;
        for (int c = 0; c < channels; c++)
            for (int y = box.Y; y < box.Y + box.Height; y++)
                chw.Slice(c * height * width + y * width + box.X, box.Width).Fill(Value);
    }
}
