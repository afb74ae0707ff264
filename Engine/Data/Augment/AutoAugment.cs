// Automatic augmentation policies with torchvision 0.14's semantics (transforms/autoaugment.py),
// applied to the 8-bit crop before normalisation, as torchvision's reference recipe does:
//   ta_wide   TrivialAugmentWide: one op drawn uniformly from 14, a magnitude bin drawn from 31,
//             a random sign for signed ops.
//   ra        RandAugment(num_ops 2, magnitude 9 of 31 bins): num_ops ops drawn uniformly from 14,
//             each at the fixed magnitude, a random sign for signed ops.
//   imagenet  AutoAugment's ImageNet policy: one of 25 sub-policies, each of two (op, probability,
//             bin) steps applied with their probability, signs drawn at random.
// The draws are made in torchvision's order from the sample's System.Random, so one seed gives one
// result (torch's generator is not reproduced: the distribution is the same, the numbers are not).
// Magnitude tables are torch.linspace values in float32 (Linspace), interpolation is nearest and
// the fill 0, torchvision's defaults. Each operation is in ImageOps/AffineOps.
namespace ResidualEngine.Data;

/// <summary>The operations of the AutoAugment family (torchvision's names).</summary>
public enum AugmentOp
{
    Identity, ShearX, ShearY, TranslateX, TranslateY, Rotate, Brightness, Color, Contrast, Sharpness,
    Posterize, Solarize, AutoContrast, Equalize, Invert,
}

/// <summary>One operation of a policy's search space: its magnitudes (empty: takes none) and whether a sign is drawn.</summary>
public sealed record AugmentSpaceEntry(AugmentOp Op, float[] Magnitudes, bool Signed);

public abstract class AutoAugmentPolicy
{
    /// <summary>The names --auto-augment accepts.</summary>
    public static IReadOnlyList<string> Names { get; } = ["ta_wide", "ra", "imagenet"];

    /// <summary>Augments <paramref name="img"/> in place with draws from <paramref name="rng"/>.</summary>
    public abstract void Apply(PlanarImage img, Random rng);

    /// <summary>The policy --auto-augment names: ta_wide, ra (with <paramref name="numOps"/> and <paramref name="magnitude"/>) or imagenet.</summary>
    public static AutoAugmentPolicy Create(string name, int numOps = 2, int magnitude = 9) => name switch
    {
        "ta_wide" => new TrivialAugmentWide(),
        "ra" => new RandAugment(numOps, magnitude),
        "imagenet" => new ImageNetAutoAugment(),
        _ => throw new ArgumentException($"unknown auto-augment policy '{name}'; choose {string.Join(", ", Names)}"),
    };

    /// <summary>torchvision's _apply_op: one operation at a (signed) magnitude, in place.</summary>
    public static void ApplyOp(PlanarImage img, AugmentOp op, double magnitude)
    {
        ArgumentNullException.ThrowIfNull(img);
        switch (op)
        {
            case AugmentOp.Identity: break;
            case AugmentOp.ShearX: AffineOps.ShearX(img, magnitude); break;
            case AugmentOp.ShearY: AffineOps.ShearY(img, magnitude); break;
            case AugmentOp.TranslateX: AffineOps.TranslateX(img, magnitude); break;
            case AugmentOp.TranslateY: AffineOps.TranslateY(img, magnitude); break;
            case AugmentOp.Rotate: AffineOps.Rotate(img, magnitude); break;
            case AugmentOp.Brightness: ImageOps.Brightness(img, 1.0 + magnitude); break;
            case AugmentOp.Color: ImageOps.Saturation(img, 1.0 + magnitude); break;
            case AugmentOp.Contrast: ImageOps.Contrast(img, 1.0 + magnitude); break;
            case AugmentOp.Sharpness: ImageOps.Sharpness(img, 1.0 + magnitude); break;
            case AugmentOp.Posterize: ImageOps.Posterize(img, (int)magnitude); break;
            case AugmentOp.Solarize: ImageOps.Solarize(img, magnitude); break;
            case AugmentOp.AutoContrast: ImageOps.AutoContrast(img); break;
            case AugmentOp.Equalize: ImageOps.Equalize(img); break;
            case AugmentOp.Invert: ImageOps.Invert(img); break;
            default: throw new ArgumentOutOfRangeException(nameof(op), op, "unknown augmentation op");
        }
    }

    private static AugmentSpaceEntry Signed(AugmentOp op, float max, int bins) => new(op, Linspace.Float32(0f, max, bins), true);
    private static AugmentSpaceEntry Plain(AugmentOp op) => new(op, [], false);

    /// <summary>8 - round(k / ((bins - 1) / divisor)) bits, k = 0..bins-1 (float32 division, half to even).</summary>
    private static AugmentSpaceEntry Posterize(int bins, double divisor)
    {
        var m = new float[bins];
        float d = (float)((bins - 1) / divisor);
        for (int k = 0; k < bins; k++) m[k] = 8 - (int)MathF.Round(k / d, MidpointRounding.ToEven);
        return new(AugmentOp.Posterize, m, false);
    }

    /// <summary>TrivialAugmentWide's space (torchvision's order, which the op draw indexes).</summary>
    public static IReadOnlyList<AugmentSpaceEntry> TrivialAugmentWideSpace(int bins = 31) =>
    [
        Plain(AugmentOp.Identity), Signed(AugmentOp.ShearX, 0.99f, bins), Signed(AugmentOp.ShearY, 0.99f, bins),
        Signed(AugmentOp.TranslateX, 32f, bins), Signed(AugmentOp.TranslateY, 32f, bins), Signed(AugmentOp.Rotate, 135f, bins),
        Signed(AugmentOp.Brightness, 0.99f, bins), Signed(AugmentOp.Color, 0.99f, bins), Signed(AugmentOp.Contrast, 0.99f, bins),
        Signed(AugmentOp.Sharpness, 0.99f, bins), Posterize(bins, 6), new(AugmentOp.Solarize, Linspace.Float32(255f, 0f, bins), false),
        Plain(AugmentOp.AutoContrast), Plain(AugmentOp.Equalize),
    ];

    /// <summary>RandAugment's and AutoAugment's space for an image of <paramref name="height"/> x <paramref name="width"/>;
    /// RandAugment's starts with Identity, AutoAugment's ends with Invert.</summary>
    public static IReadOnlyList<AugmentSpaceEntry> RandAugmentSpace(int bins, int height, int width, bool autoAugment = false)
    {
        var list = new List<AugmentSpaceEntry>();
        if (!autoAugment) list.Add(Plain(AugmentOp.Identity));
        list.AddRange([
            Signed(AugmentOp.ShearX, 0.3f, bins), Signed(AugmentOp.ShearY, 0.3f, bins),
            Signed(AugmentOp.TranslateX, (float)(150.0 / 331.0 * width), bins), Signed(AugmentOp.TranslateY, (float)(150.0 / 331.0 * height), bins),
            Signed(AugmentOp.Rotate, 30f, bins), Signed(AugmentOp.Brightness, 0.9f, bins), Signed(AugmentOp.Color, 0.9f, bins),
            Signed(AugmentOp.Contrast, 0.9f, bins), Signed(AugmentOp.Sharpness, 0.9f, bins), Posterize(bins, 4),
            new(AugmentOp.Solarize, Linspace.Float32(255f, 0f, bins), false), Plain(AugmentOp.AutoContrast), Plain(AugmentOp.Equalize),
        ]);
        if (autoAugment) list.Add(Plain(AugmentOp.Invert));
        return list;
    }
}

/// <summary>torchvision's TrivialAugmentWide (31 magnitude bins).</summary>
public sealed class TrivialAugmentWide : AutoAugmentPolicy
{
    private readonly IReadOnlyList<AugmentSpaceEntry> _space = TrivialAugmentWideSpace();

    public override void Apply(PlanarImage img, Random rng)
    {
        ArgumentNullException.ThrowIfNull(rng);
        var e = _space[rng.Next(_space.Count)];
        double m = e.Magnitudes.Length > 0 ? e.Magnitudes[rng.Next(e.Magnitudes.Length)] : 0.0;
        if (e.Signed && rng.Next(2) == 1) m = -m;
        ApplyOp(img, e.Op, m);
    }
}

/// <summary>torchvision's RandAugment: <see cref="NumOps"/> ops at magnitude bin <see cref="Magnitude"/> of 31.</summary>
public sealed class RandAugment : AutoAugmentPolicy
{
    public const int Bins = 31;

    public RandAugment(int numOps = 2, int magnitude = 9)
    {
        if (numOps < 0) throw new ArgumentException($"RandAugment: num_ops must be >= 0, got {numOps}");
        if (magnitude < 0 || magnitude >= Bins) throw new ArgumentException($"RandAugment: magnitude must be in [0, {Bins - 1}], got {magnitude}");
        NumOps = numOps;
        Magnitude = magnitude;
    }

    public int NumOps { get; }
    public int Magnitude { get; }
    private readonly SpaceCache _space = new(Bins);

    public override void Apply(PlanarImage img, Random rng)
    {
        ArgumentNullException.ThrowIfNull(img);
        ArgumentNullException.ThrowIfNull(rng);
        var space = _space.For(img, autoAugment: false);
        for (int i = 0; i < NumOps; i++)
        {
            var e = space[rng.Next(space.Count)];
            double m = e.Magnitudes.Length > 0 ? e.Magnitudes[Magnitude] : 0.0;
            if (e.Signed && rng.Next(2) == 1) m = -m;
            ApplyOp(img, e.Op, m);
        }
    }
}

/// <summary>torchvision's AutoAugment with the ImageNet policy (10 magnitude bins).</summary>
public sealed class ImageNetAutoAugment : AutoAugmentPolicy
{
    public const int Bins = 10;
    private readonly SpaceCache _space = new(Bins);

    /// <summary>The 25 sub-policies: two (op, probability, magnitude bin or -1 for none) steps each.</summary>
    public static IReadOnlyList<(AugmentOp Op, double P, int Bin)[]> SubPolicies { get; } = Table();

    private static (AugmentOp, double, int)[][] Table()
    {
        const AugmentOp Po = AugmentOp.Posterize, Ro = AugmentOp.Rotate, So = AugmentOp.Solarize, Ac = AugmentOp.AutoContrast,
            Eq = AugmentOp.Equalize, Co = AugmentOp.Color, In = AugmentOp.Invert, Ct = AugmentOp.Contrast, Sh = AugmentOp.Sharpness, Sx = AugmentOp.ShearX;
        return
        [
            [(Po, 0.4, 8), (Ro, 0.6, 9)], [(So, 0.6, 5), (Ac, 0.6, -1)], [(Eq, 0.8, -1), (Eq, 0.6, -1)], [(Po, 0.6, 7), (Po, 0.6, 6)],
            [(Eq, 0.4, -1), (So, 0.2, 4)], [(Eq, 0.4, -1), (Ro, 0.8, 8)], [(So, 0.6, 3), (Eq, 0.6, -1)], [(Po, 0.8, 5), (Eq, 1.0, -1)],
            [(Ro, 0.2, 3), (So, 0.6, 8)], [(Eq, 0.6, -1), (Po, 0.4, 6)], [(Ro, 0.8, 8), (Co, 0.4, 0)], [(Ro, 0.4, 9), (Eq, 0.6, -1)],
            [(Eq, 0.0, -1), (Eq, 0.8, -1)], [(In, 0.6, -1), (Eq, 1.0, -1)], [(Co, 0.6, 4), (Ct, 1.0, 8)], [(Ro, 0.8, 8), (Co, 1.0, 2)],
            [(Co, 0.8, 8), (So, 0.8, 7)], [(Sh, 0.4, 7), (In, 0.6, -1)], [(Sx, 0.6, 5), (Eq, 1.0, -1)], [(Co, 0.4, 0), (Eq, 0.6, -1)],
            [(Eq, 0.4, -1), (So, 0.2, 4)], [(So, 0.6, 5), (Ac, 0.6, -1)], [(In, 0.6, -1), (Eq, 1.0, -1)], [(Co, 0.6, 4), (Ct, 1.0, 8)],
            [(Eq, 0.8, -1), (Eq, 0.6, -1)],
        ];
    }

    public override void Apply(PlanarImage img, Random rng)
    {
        ArgumentNullException.ThrowIfNull(img);
        ArgumentNullException.ThrowIfNull(rng);
        // torchvision draws the sub-policy, both probabilities and both signs first.
        var sub = SubPolicies[rng.Next(SubPolicies.Count)];
        double p0 = rng.NextDouble(), p1 = rng.NextDouble();
        int s0 = rng.Next(2), s1 = rng.Next(2);
        var space = _space.For(img, autoAugment: true);
        for (int i = 0; i < 2; i++)
        {
            var (op, p, bin) = sub[i];
            if (!((i == 0 ? p0 : p1) <= p)) continue;
            var e = space.First(x => x.Op == op);
            double m = bin >= 0 ? e.Magnitudes[bin] : 0.0;
            if (e.Signed && (i == 0 ? s0 : s1) == 0) m = -m;
            ApplyOp(img, op, m);
        }
    }
}

/// <summary>The last image size's RandAugment/AutoAugment space (the crop size rarely changes); safe across threads.</summary>
internal sealed class SpaceCache(int bins)
{
    private sealed record Entry(int H, int W, IReadOnlyList<AugmentSpaceEntry> Space);
    private Entry? _last;

    public IReadOnlyList<AugmentSpaceEntry> For(PlanarImage img, bool autoAugment)
    {
        var last = Volatile.Read(ref _last);
        if (last is not null && last.H == img.Height && last.W == img.Width) return last.Space;
        var space = AutoAugmentPolicy.RandAugmentSpace(bins, img.Height, img.Width, autoAugment);
        Volatile.Write(ref _last, new Entry(img.Height, img.Width, space));
        return space;
    }
}
