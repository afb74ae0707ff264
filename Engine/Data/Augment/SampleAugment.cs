// What a training transform does to a sample after its crop and flip, in torchvision's reference
// order: an auto-augment policy on the 8-bit crop (rounded to bytes, as PIL's resize output is),
// then normalisation, then random erasing on the normalised floats. Without a policy the crop is
// normalised straight from the resampler's floats, as before. Draws come from the sample's
// System.Random after the crop's and flip's, so a sample is a pure function of (seed, epoch,
// position): a resumed run sees the same augmented images.
using System.Buffers;

namespace ResidualEngine.Data;

public sealed record SampleAugment(AutoAugmentPolicy? Policy, RandomErasing? Erasing)
{
    /// <summary>The augmentation --auto-augment and --random-erase ask for, or null when neither is on.</summary>
    public static SampleAugment? Create(string? autoAugment, double randomErase, int raNumOps = 2, int raMagnitude = 9)
    {
        var policy = autoAugment is null or "" or "none" ? null : AutoAugmentPolicy.Create(autoAugment, raNumOps, raMagnitude);
        var erase = randomErase > 0 ? new RandomErasing(randomErase) : null;
        return policy is null && erase is null ? null : new SampleAugment(policy, erase);
    }

    internal void Render(RgbImage img, in ResampleGeometry g, Normalization n, Random rng, Span<float> dst)
    {
        Span<float> scale = stackalloc float[3], bias = stackalloc float[3];
        n.Affine(scale, bias);
        int count = 3 * g.DstW * g.DstH;
        if (Policy is null) Resampler.RenderChw(img, g, scale, bias, dst);
        else
        {
            var raw = ArrayPool<float>.Shared.Rent(count);
            try
            {
                Resampler.RenderChw(img, g, [1f, 1f, 1f], [0f, 0f, 0f], raw);
                var bytes = PlanarImage.FromFloats(raw.AsSpan(0, count), 3, g.DstH, g.DstW);
                Policy.Apply(bytes, rng);
                bytes.Normalize(scale, bias, dst);
            }
            finally
            {
                ArrayPool<float>.Shared.Return(raw);
            }
        }
        Erasing?.Apply(dst, 3, g.DstH, g.DstW, rng);
    }
}
