// Mixup and CutMix on a whole batch, as torchvision's reference recipe (RandomMixup/RandomCutmix
// in references/classification/transforms.py, applied in the loader's collate step) and timm's
// Mixup (mode "batch") do it:
//   - with both enabled, CutMix is chosen with probability SwitchProbability (timm's switch_prob,
//     0.5: the same as torchvision's RandomChoice of the two); otherwise the one enabled;
//   - lambda ~ Beta(alpha, alpha) of the chosen method;
//   - each sample i is mixed with sample i - 1 (the batch rolled by one, torchvision's pairing;
//     timm pairs i with n - 1 - i): mixup x_i = lambda x_i + (1 - lambda) x_(i-1) in float32, as
//     torchvision computes it; cutmix pastes the box of x_(i-1) whose centre (r_x, r_y) is uniform
//     over the image and whose half sides are int(0.5 sqrt(1 - lambda) W) and ... H, clipped to
//     the image, and corrects lambda to 1 - box area / image area;
//   - the targets are lambda onehot(y_i) + (1 - lambda) onehot(y_(i-1)) (smoothed by the loss's
//     label smoothing, which is linear in the target), returned as the partner labels y_(i-1)
//     and lambda, so the loss is lambda CE(y) + (1 - lambda) CE(y_(i-1)).
// Runs on the host in the loader's workers, before the batch goes to the device (where
// torchvision runs it too); draws come from the batch's own System.Random, seeded from (seed,
// epoch, batch index), so a resumed run mixes the same way.
namespace ResidualEngine.Data;

public enum MixKind
{
    Mixup,
    Cutmix,
}

/// <summary>How a batch was mixed: each sample i with sample i - 1 (labels <see cref="PartnerLabels"/>), weight <see cref="Lambda"/> on its own.</summary>
public sealed record MixResult(MixKind Kind, double Lambda, long[] PartnerLabels, CropBox? Box);

/// <summary>Something the loader applies to each whole host batch (images N x C x H x W, labels N) before it leaves the workers.</summary>
public interface IBatchAugmentation
{
    /// <summary>Changes the images in place and says how the targets are to be mixed (null: unchanged).</summary>
    MixResult? Apply(Span<float> images, int n, int channels, int height, int width, ReadOnlySpan<long> labels, Random rng);
}

public sealed class MixupCutmix : IBatchAugmentation
{
    public MixupCutmix(double mixupAlpha, double cutmixAlpha, double switchProbability = 0.5)
    {
        if (!(mixupAlpha >= 0) || double.IsInfinity(mixupAlpha)) throw new ArgumentException($"mixup alpha must be >= 0 and finite, got {mixupAlpha}");
        if (!(cutmixAlpha >= 0) || double.IsInfinity(cutmixAlpha)) throw new ArgumentException($"cutmix alpha must be >= 0 and finite, got {cutmixAlpha}");
        if (mixupAlpha == 0 && cutmixAlpha == 0) throw new ArgumentException("mixup and cutmix alphas are both 0: nothing to mix");
        if (!(switchProbability >= 0 && switchProbability <= 1)) throw new ArgumentException($"switch probability must be in [0, 1], got {switchProbability}");
        MixupAlpha = mixupAlpha;
        CutmixAlpha = cutmixAlpha;
        SwitchProbability = switchProbability;
    }

    public double MixupAlpha { get; }
    public double CutmixAlpha { get; }
    public double SwitchProbability { get; }

    public MixResult? Apply(Span<float> images, int n, int channels, int height, int width, ReadOnlySpan<long> labels, Random rng)
    {
        ArgumentNullException.ThrowIfNull(rng);
        int per = channels * height * width;
        if (n < 1 || labels.Length != n || images.Length < (long)n * per)
            throw new ArgumentException($"MixupCutmix: a batch of {n} needs {n} labels and {(long)n * per} values, got {labels.Length} and {images.Length}");
        bool cutmix = MixupAlpha == 0 || (CutmixAlpha > 0 && rng.NextDouble() < SwitchProbability);
        double lam = Beta.Sample(cutmix ? CutmixAlpha : MixupAlpha, rng);
        var partner = new long[n];
        for (int i = 0; i < n; i++) partner[i] = labels[(i + n - 1) % n];
        if (!cutmix)
        {
            Mixup(images, n, per, lam);
            return new MixResult(MixKind.Mixup, lam, partner, null);
        }
        int rx = rng.Next(width), ry = rng.Next(height);
        var (box, corrected) = CutmixBox(height, width, lam, rx, ry);
        Paste(images, n, channels, height, width, box);
        return new MixResult(MixKind.Cutmix, corrected, partner, box);
    }

    /// <summary>x_i = lambda x_i + (1 - lambda) x_(i-1) (x_(-1) = x_(n-1)), each product rounded to float32 as torch's in-place ops do.</summary>
    public static void Mixup(Span<float> images, int n, int per, double lambda)
    {
        float a = (float)lambda, b = (float)(1.0 - lambda);
        var last = images.Slice((n - 1) * per, per).ToArray();
        for (int i = n - 1; i >= 0; i--)
        {
            var x = images.Slice(i * per, per);
            ReadOnlySpan<float> prev = i > 0 ? images.Slice((i - 1) * per, per) : last;
            for (int k = 0; k < per; k++)
            {
                float own = x[k] * a, other = prev[k] * b;
                x[k] = own + other;
            }
        }
    }

    /// <summary>torchvision's RandomCutmix box for centre (<paramref name="rx"/>, <paramref name="ry"/>) and the corrected lambda.</summary>
    public static (CropBox Box, double Lambda) CutmixBox(int height, int width, double lambda, int rx, int ry)
    {
        double r = 0.5 * Math.Sqrt(1.0 - lambda);
        int halfW = (int)(r * width), halfH = (int)(r * height);
        int x1 = Math.Max(rx - halfW, 0), y1 = Math.Max(ry - halfH, 0);
        int x2 = Math.Min(rx + halfW, width), y2 = Math.Min(ry + halfH, height);
        var box = new CropBox(x1, y1, x2 - x1, y2 - y1);
        return (box, 1.0 - (double)(box.Width * box.Height) / (width * height));
    }

    /// <summary>Pastes the box of sample i - 1 (of the unmixed batch) into sample i, for every i.</summary>
    private static void Paste(Span<float> images, int n, int channels, int height, int width, CropBox box)
    {
        if (box.Width <= 0 || box.Height <= 0) return;
        int plane = height * width, per = channels * plane;
        var last = images.Slice((n - 1) * per, per).ToArray();
        for (int i = n - 1; i >= 0; i--)
        {
            var x = images.Slice(i * per, per);
            ReadOnlySpan<float> prev = i > 0 ? images.Slice((i - 1) * per, per) : last;
            for (int c = 0; c < channels; c++)
                for (int y = box.Y; y < box.Y + box.Height; y++)
                {
                    int o = c * plane + y * width + box.X;
                    prev.Slice(o, box.Width).CopyTo(x.Slice(o, box.Width));
                }
        }
    }
}

/// <summary>Beta(alpha, alpha) samples from two Gamma(alpha) draws (Marsaglia and Tsang), in log space so small alphas do not underflow.</summary>
public static class Beta
{
    public static double Sample(double alpha, Random rng)
    {
        ArgumentNullException.ThrowIfNull(rng);
        if (!(alpha > 0) || double.IsInfinity(alpha)) throw new ArgumentException($"Beta: alpha must be positive and finite, got {alpha}");
        double lx = LogGamma(alpha, rng), ly = LogGamma(alpha, rng);
        return 1.0 / (1.0 + Math.Exp(ly - lx));
    }

    /// <summary>log of a Gamma(shape, 1) sample.</summary>
    private static double LogGamma(double shape, Random rng)
    {
        if (shape < 1)
        {
            // Gamma(a) = Gamma(a + 1) * U^(1/a).
            double u = 1.0 - rng.NextDouble(); // (0, 1]
            return LogGamma(shape + 1, rng) + Math.Log(u) / shape;
        }
        double d = shape - 1.0 / 3.0, c = 1.0 / Math.Sqrt(9 * d);
        while (true)
        {
            double x, v;
            do
            {
                x = Normal(rng);
                v = 1 + c * x;
            } while (v <= 0);
            v = v * v * v;
            double u = rng.NextDouble();
            if (u < 1 - 0.0331 * x * x * x * x || Math.Log(u) < 0.5 * x * x + d * (1 - v + Math.Log(v)))
                return Math.Log(d * v);
        }
    }

    private static double Normal(Random rng)
    {
        double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
        return Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }
}
