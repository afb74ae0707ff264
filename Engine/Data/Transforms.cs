// Image transforms with torchvision's semantics, producing normalised float CHW samples:
//   TrainTransform  RandomResizedCrop(size, scale 0.08-1, ratio 3/4-4/3) + horizontal flip p=0.5
//   EvalTransform   Resize(short side round(size*256/224)) + CenterCrop(size)
//   CifarTransform  the small-image augmentation of He et al. (see SmallImageAugmentation.cs)
// each followed by Normalize(mean, std); the training ones optionally with an auto-augment policy
// before it and random erasing after it (SampleAugment). Random draws are made in torchvision's
// order from the System.Random passed in, so one seed gives one result. Resampling: see Resampler.cs (PIL's
// antialiased bilinear). JPEGs are decoded at a reduced DCT scale when that scale still has at
// least as many pixels as the resize produces (never upsampling from a reduced decode); set
// ScaledDecode = false for exactly torchvision's full-resolution path.
namespace ResidualEngine.Data;

/// <summary>Turns an image into a float CHW sample of 3 x OutputSize x OutputSize.</summary>
public interface ITransform
{
    int OutputSize { get; }

    /// <summary>Writes 3 * OutputSize * OutputSize values (CHW) to <paramref name="destination"/>.</summary>
    void Apply(IImageSource image, Random rng, Span<float> destination);
}

/// <summary>Per-channel mean and standard deviation, in 0..1 pixel units.</summary>
public sealed record Normalization(float MeanR, float MeanG, float MeanB, float StdR, float StdG, float StdB)
{
    public static Normalization ImageNet { get; } = new(0.485f, 0.456f, 0.406f, 0.229f, 0.224f, 0.225f);
    public static Normalization Cifar10 { get; } = new(0.4914f, 0.4822f, 0.4465f, 0.2470f, 0.2435f, 0.2616f);
    /// <summary>No normalisation: outputs are pixel / 255 (torchvision's ToTensor).</summary>
    public static Normalization None { get; } = new(0, 0, 0, 1, 1, 1);

    internal void Affine(Span<float> scale, Span<float> bias)
    {
        ReadOnlySpan<float> mean = [MeanR, MeanG, MeanB], std = [StdR, StdG, StdB];
        for (int c = 0; c < 3; c++)
        {
            if (!(std[c] > 0)) throw new ArgumentException($"normalisation std must be positive, got {std[c]} for channel {c}");
            scale[c] = 1f / (255f * std[c]);
            bias[c] = -mean[c] / std[c];
        }
    }
}

/// <summary>A crop rectangle in pixels: left X, top Y, Width, Height.</summary>
public readonly record struct CropBox(int X, int Y, int Width, int Height);

/// <summary>torchvision's RandomResizedCrop.get_params.</summary>
public static class RandomResizedCrop
{
    /// <summary>
    /// Up to 10 draws of an area fraction (uniform in <paramref name="scaleMin"/>..<paramref name="scaleMax"/>)
    /// and an aspect ratio (log-uniform in <paramref name="ratioMin"/>..<paramref name="ratioMax"/>); the first
    /// that fits gives the box, at a uniformly random position. Otherwise a centred crop of the whole
    /// image with its ratio clamped into the range.
    /// </summary>
    public static CropBox GetParams(int width, int height, Random rng,
        double scaleMin = 0.08, double scaleMax = 1.0, double ratioMin = 3.0 / 4.0, double ratioMax = 4.0 / 3.0)
    {
        ArgumentNullException.ThrowIfNull(rng);
        if (width <= 0 || height <= 0) throw new ArgumentException($"RandomResizedCrop: image size must be positive, got {width}x{height}");
        if (!(scaleMin > 0 && scaleMin <= scaleMax)) throw new ArgumentException($"RandomResizedCrop: need 0 < scale min <= max, got {scaleMin}..{scaleMax}");
        if (!(ratioMin > 0 && ratioMin <= ratioMax)) throw new ArgumentException($"RandomResizedCrop: need 0 < ratio min <= max, got {ratioMin}..{ratioMax}");
        double area = (double)width * height;
        double logLo = Math.Log(ratioMin), logHi = Math.Log(ratioMax);
        for (int attempt = 0; attempt < 10; attempt++)
        {
            double target = area * (scaleMin + (scaleMax - scaleMin) * rng.NextDouble());
            double aspect = Math.Exp(logLo + (logHi - logLo) * rng.NextDouble());
            // Python's round() is round-half-to-even, as is Math.Round's default.
            int w = (int)Math.Round(Math.Sqrt(target * aspect));
            int h = (int)Math.Round(Math.Sqrt(target / aspect));
            if (w > 0 && w <= width && h > 0 && h <= height)
            {
                int top = rng.Next(0, height - h + 1);
                int left = rng.Next(0, width - w + 1);
                return new CropBox(left, top, w, h);
            }
        }
        return Fallback(width, height, ratioMin, ratioMax);
    }

    /// <summary>The centred fallback crop: the whole image, trimmed to the nearest allowed ratio.</summary>
    public static CropBox Fallback(int width, int height, double ratioMin = 3.0 / 4.0, double ratioMax = 4.0 / 3.0)
    {
        double inRatio = (double)width / height;
        int w, h;
        if (inRatio < ratioMin) { w = width; h = (int)Math.Round(w / ratioMin); }
        else if (inRatio > ratioMax) { h = height; w = (int)Math.Round(h * ratioMax); }
        else { w = width; h = height; }
        return new CropBox((width - w) / 2, (height - h) / 2, w, h);
    }
}

/// <summary>RandomResizedCrop + RandomHorizontalFlip + Normalize.</summary>
public sealed class TrainTransform : ITransform
{
    public TrainTransform(int size, Normalization? normalization = null)
    {
        if (size <= 0) throw new ArgumentException($"TrainTransform: size must be positive, got {size}", nameof(size));
        OutputSize = size;
        Normalization = normalization ?? Normalization.ImageNet;
    }

    public int OutputSize { get; }
    public Normalization Normalization { get; }
    public double ScaleMin { get; init; } = 0.08;
    public double ScaleMax { get; init; } = 1.0;
    public double RatioMin { get; init; } = 3.0 / 4.0;
    public double RatioMax { get; init; } = 4.0 / 3.0;
    public double FlipProbability { get; init; } = 0.5;
    public bool ScaledDecode { get; init; } = true;
    /// <summary>Auto-augment and random erasing after the crop and flip (none when null).</summary>
    public SampleAugment? Augment { get; init; }

    public void Apply(IImageSource image, Random rng, Span<float> destination)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(rng);
        int s = OutputSize;
        var box = RandomResizedCrop.GetParams(image.Width, image.Height, rng, ScaleMin, ScaleMax, RatioMin, RatioMax);
        bool flip = rng.NextDouble() < FlipProbability;
        var img = ScaledDecode
            ? image.Decode(CeilDiv((long)image.Width * s, box.Width), CeilDiv((long)image.Height * s, box.Height))
            : image.Decode();
        double fx = (double)img.Width / image.Width, fy = (double)img.Height / image.Height;
        var g = new ResampleGeometry(box.X * fx, box.Y * fy, (box.X + box.Width) * fx, (box.Y + box.Height) * fy,
            s, s, 0, 0, s, s, flip);
        if (Augment is null) Render(img, g, Normalization, destination);
        else Augment.Render(img, g, Normalization, rng, destination);
    }

    internal static int CeilDiv(long a, long b) => (int)Math.Min(int.MaxValue, (a + b - 1) / b);

    internal static void Render(RgbImage img, in ResampleGeometry g, Normalization n, Span<float> destination)
    {
        Span<float> scale = stackalloc float[3], bias = stackalloc float[3];
        n.Affine(scale, bias);
        Resampler.RenderChw(img, g, scale, bias, destination);
    }
}

/// <summary>Resize (short side to round(size * 256/224)) + CenterCrop(size) + Normalize.</summary>
public sealed class EvalTransform : ITransform
{
    public EvalTransform(int size, Normalization? normalization = null, double resizeRatio = 256.0 / 224.0)
    {
        if (size <= 0) throw new ArgumentException($"EvalTransform: size must be positive, got {size}", nameof(size));
        if (!(resizeRatio >= 1)) throw new ArgumentException($"EvalTransform: resize ratio must be >= 1, got {resizeRatio}", nameof(resizeRatio));
        OutputSize = size;
        ResizeTo = (int)Math.Round(size * resizeRatio);
        Normalization = normalization ?? Normalization.ImageNet;
    }

    public int OutputSize { get; }

    /// <summary>The short side after resizing (256 for size 224).</summary>
    public int ResizeTo { get; }
    public Normalization Normalization { get; }
    public bool ScaledDecode { get; init; } = true;

    /// <summary>
    /// torchvision's geometry: the short side becomes <see cref="ResizeTo"/>, the long side
    /// int(ResizeTo * long / short); the crop starts at int(round((resized - size) / 2)).
    /// </summary>
    public (int ResizedW, int ResizedH, CropBox Crop) Geometry(int width, int height)
    {
        if (width <= 0 || height <= 0) throw new ArgumentException($"EvalTransform: image size must be positive, got {width}x{height}");
        int rw, rh;
        if (width <= height) { rw = ResizeTo; rh = (int)((double)ResizeTo * height / width); }
        else { rh = ResizeTo; rw = (int)((double)ResizeTo * width / height); }
        int s = OutputSize;
        int left = (int)Math.Round((rw - s) / 2.0), top = (int)Math.Round((rh - s) / 2.0);
        return (rw, rh, new CropBox(left, top, s, s));
    }

    public void Apply(IImageSource image, Random rng, Span<float> destination)
    {
        ArgumentNullException.ThrowIfNull(image);
        var (rw, rh, crop) = Geometry(image.Width, image.Height);
        var img = ScaledDecode ? image.Decode(rw, rh) : image.Decode();
        var g = new ResampleGeometry(0, 0, img.Width, img.Height, rw, rh, crop.X, crop.Y, crop.Width, crop.Height, false);
        TrainTransform.Render(img, g, Normalization, destination);
    }
}
