// The augmentation He et al. (2015, section 4.2) use for CIFAR-10's 32x32 images: "4 pixels are
// padded on each side, and a 32x32 crop is randomly sampled from the padded image or its
// horizontal flip"; evaluation uses the single 32x32 view. (RandomResizedCrop, the ImageNet
// recipe, would throw away most of a 28-32 px image.) With torchvision's semantics, exactly:
//   train  [fit to size] -> RandomCrop(size, padding=4, fill=0) -> RandomHorizontalFlip(0.5) -> ToTensor -> Normalize
//   eval   [fit to size] -> ToTensor -> Normalize
// The padding is black (pixel value 0) before normalisation, as torchvision pads; the paper pads
// its mean-subtracted images, i.e. with the mean colour. For images whose background is black
// (MNIST, Fashion-MNIST) torchvision's choice is the one that matches the picture.
// "Fit to size" for images that are not size x size (Fit):
//   Pad     torchvision's CenterCrop(size): a smaller image is zero-padded around its centre (28 -> 32:
//           2 pixels on each side; an odd difference puts the extra pixel right/bottom), a larger one is
//           centre-cropped. No resampling, so a pixel stays a pixel; LeCun et al. (1998) centred the
//           28x28 MNIST digits in a 32x32 field the same way.
//   Resize  torchvision's Resize((size, size)): PIL's antialiased bilinear (see Resampler.cs).
//   Auto    Pad when the image is no larger than size in either direction, else Resize (the default).
// Random draws, from the System.Random passed in, in torchvision's order: crop top, crop left, flip.
namespace ResidualEngine.Data;

/// <summary>How an image that is not size x size becomes size x size.</summary>
public enum SmallImageFit
{
    Auto,
    Pad,
    Resize,
}

/// <summary>He et al.'s small-image augmentation (pad 4 + random crop + horizontal flip), or its evaluation view.</summary>
public sealed class CifarTransform : ITransform
{
    public CifarTransform(int size, bool train, Normalization? normalization = null, int padding = 4, SmallImageFit fit = SmallImageFit.Auto)
    {
        if (size <= 0) throw new ArgumentException($"CifarTransform: size must be positive, got {size}", nameof(size));
        if (padding < 0) throw new ArgumentException($"CifarTransform: padding must be >= 0, got {padding}", nameof(padding));
        OutputSize = size;
        Train = train;
        Padding = padding;
        Fit = fit;
        Normalization = normalization ?? Normalization.Cifar10;
    }

    public int OutputSize { get; }
    public bool Train { get; }
    /// <summary>Pixels of zero padding on each side before the random crop (4 in the paper; 0 = flips only).</summary>
    public int Padding { get; }
    public SmallImageFit Fit { get; }
    public Normalization Normalization { get; }
    public double FlipProbability { get; init; } = 0.5;
    /// <summary>Auto-augment and random erasing after the crop and flip, in training (none when null).</summary>
    public SampleAugment? Augment { get; init; }

    /// <summary>The random choices of one training sample: crop top and left in the padded image (0..2 x Padding), and the flip.</summary>
    public (int Top, int Left, bool Flip) Draw(Random rng)
    {
        ArgumentNullException.ThrowIfNull(rng);
        int span = 2 * Padding + 1;
        int top = rng.Next(0, span), left = rng.Next(0, span);
        bool flip = rng.NextDouble() < FlipProbability;
        return (top, left, flip);
    }

    public void Apply(IImageSource image, Random rng, Span<float> destination)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(rng);
        var (top, left, flip) = Train ? Draw(rng) : (Padding, Padding, false);
        Render(image, top, left, flip, destination, Train ? Augment : null, rng);
    }

    /// <summary>
    /// The sample for given choices: the fitted image padded by <see cref="Padding"/>, cropped at
    /// (<paramref name="top"/>, <paramref name="left"/>), mirrored when <paramref name="flip"/>.
    /// (Padding, Padding, false) is the evaluation view.
    /// </summary>
    public void Render(IImageSource image, int top, int left, bool flip, Span<float> destination) =>
        Render(image, top, left, flip, destination, null, null);

    private void Render(IImageSource image, int top, int left, bool flip, Span<float> destination, SampleAugment? augment, Random? rng)
    {
        ArgumentNullException.ThrowIfNull(image);
        if ((uint)top > (uint)(2 * Padding) || (uint)left > (uint)(2 * Padding))
            throw new ArgumentOutOfRangeException(nameof(top), $"crop position ({top}, {left}) is outside 0..{2 * Padding}");
        int s = OutputSize;
        bool pad = Fit == SmallImageFit.Pad || (Fit == SmallImageFit.Auto && image.Width <= s && image.Height <= s);
        var img = pad ? CentreCrop(image.Decode(), s) : image.Decode(s, s);
        var g = new ResampleGeometry(0, 0, img.Width, img.Height, s, s, left - Padding, top - Padding, s, s, flip);
        if (augment is null) TrainTransform.Render(img, g, Normalization, destination);
        else augment.Render(img, g, Normalization, rng!, destination);
    }

    /// <summary>torchvision's center_crop to size x size: a short side is zero-padded around the centre, a long one cropped.</summary>
    internal static RgbImage CentreCrop(RgbImage img, int size)
    {
        if (img.Width == size && img.Height == size) return img;
        int offX = CentreOffset(img.Width, size), offY = CentreOffset(img.Height, size);
        var px = new byte[3 * size * size];
        for (int y = 0; y < size; y++)
        {
            int sy = y + offY;
            if (sy < 0 || sy >= img.Height) continue;
            int x0 = Math.Max(0, -offX), x1 = Math.Min(size, img.Width - offX);
            if (x0 < x1) Buffer.BlockCopy(img.Pixels, 3 * (sy * img.Width + x0 + offX), px, 3 * (y * size + x0), 3 * (x1 - x0));
        }
        return new RgbImage(size, size, px);
    }

    /// <summary>Where the size-long window starts along an axis of <paramref name="n"/> pixels (negative: padding before).</summary>
    internal static int CentreOffset(int n, int size) =>
        n < size ? -((size - n) / 2) : (int)Math.Round((n - size) / 2.0, MidpointRounding.ToEven);
}
