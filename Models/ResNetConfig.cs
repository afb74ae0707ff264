// The whole description of a plain or residual network as one record, so that ResNet-34 and
// plain-34 differ by one flag and every zoo entry is a one-line factory (ModelZoo). The
// builder (ResNet) only reads it; Validate() rejects combinations that have no meaning, with
// an ArgumentException that names the problem.
namespace ResidualEngine.Models;

/// <summary>Residual unit shape: two 3x3 convs (expansion 1) or 1x1-3x3-1x1 (expansion 4).</summary>
public enum BlockKind
{
    Basic,
    Bottleneck,
}

/// <summary>ImageNet stem (7x7/2 conv, BN, ReLU, 3x3/2 max-pool, 224 input) or CIFAR stem (3x3 conv, BN, ReLU, 32 input).</summary>
public enum StemKind
{
    Imagenet,
    Cifar,
}

/// <summary>He et al. (2015) shortcut options where a block changes shape: A zero-pads (no parameters),
/// B projects only there (1x1 conv + BN), C projects in every block.</summary>
public enum ShortcutOption
{
    A,
    B,
    C,
}

public sealed record ResNetConfig
{
    /// <summary>Zoo name or a free label; only used in messages and summaries.</summary>
    public string Name { get; init; } = "resnet";
    public BlockKind Block { get; init; } = BlockKind.Basic;
    /// <summary>Blocks per stage, e.g. [3, 4, 6, 3]; the number of stages is its length.</summary>
    public required IReadOnlyList<int> Layers { get; init; }
    public StemKind Stem { get; init; } = StemKind.Imagenet;
    /// <summary>Planes per stage before expansion; null for the standard ones (64/128/256/512 ImageNet, 16/32/64 CIFAR).</summary>
    public IReadOnlyList<int>? Widths { get; init; }
    /// <summary>Output channels of the stem conv; null for the first stage's width.</summary>
    public int? StemWidth { get; init; }
    public ShortcutOption Shortcut { get; init; } = ShortcutOption.B;
    /// <summary>No shortcuts at all: the same stacks as a "plain" network.</summary>
    public bool Plain { get; init; }
    /// <summary>Full pre-activation blocks (BN, ReLU, conv), He et al. 2016.</summary>
    public bool PreActivation { get; init; }
    /// <summary>Groups of the bottleneck's 3x3 conv (ResNeXt cardinality).</summary>
    public int Groups { get; init; } = 1;
    /// <summary>Bottleneck width = floor(planes * WidthPerGroup / 64) * Groups (torchvision's rule).</summary>
    public int WidthPerGroup { get; init; } = 64;
    /// <summary>Squeeze-and-excitation on each block's residual branch (Hu et al.).</summary>
    public bool SqueezeExcitation { get; init; }
    public int SeReduction { get; init; } = 16;
    /// <summary>Stochastic depth: the last block drops its branch with this probability in training;
    /// block i of L uses rate * i / (L - 1), as timm.</summary>
    public double DropPathRate { get; init; }
    /// <summary>Each residual branch starts at zero (last BN gamma = 0; last conv = 0 in pre-activation blocks).</summary>
    public bool ZeroInitResidual { get; init; }
    /// <summary>Multiplies each residual branch by 1/sqrt(L), L the number of blocks.</summary>
    public bool ScaleResidual { get; init; }
    public int NumClasses { get; init; } = 1000;

    public int Expansion => Block == BlockKind.Basic ? BasicBlock.Expansion : Bottleneck.Expansion;
    public int NativeImageSize => Stem == StemKind.Imagenet ? 224 : 32;
    public int BlockCount => Layers.Sum();

    /// <summary>The widths actually used (the defaults when <see cref="Widths"/> is null).</summary>
    public IReadOnlyList<int> StageWidths => Widths ?? DefaultWidths(Stem, Layers.Count);

    public int ResolvedStemWidth => StemWidth ?? StageWidths[0];

    private static int[] DefaultWidths(StemKind stem, int stages)
    {
        int w = stem == StemKind.Imagenet ? 64 : 16;
        var r = new int[stages];
        for (int i = 0; i < stages; i++) r[i] = w << Math.Min(i, 20);
        return r;
    }

    /// <summary>Channels a bottleneck uses inside (its 3x3 conv) for <paramref name="planes"/>.</summary>
    public int BottleneckWidth(int planes) => (int)((long)planes * WidthPerGroup / 64) * Groups;

    /// <summary>Throws an ArgumentException naming the first problem with this configuration.</summary>
    public void Validate()
    {
        string who = $"ResNetConfig '{Name}'";
        if (Layers is null || Layers.Count == 0) throw new ArgumentException($"{who}: needs at least one stage (Layers is empty)");
        for (int i = 0; i < Layers.Count; i++)
            if (Layers[i] < 1) throw new ArgumentException($"{who}: stage {i + 1} has {Layers[i]} blocks; every stage needs at least one");
        var widths = StageWidths;
        if (widths.Count != Layers.Count)
            throw new ArgumentException($"{who}: {widths.Count} widths for {Layers.Count} stages");
        for (int i = 0; i < widths.Count; i++)
            if (widths[i] < 1) throw new ArgumentException($"{who}: stage {i + 1} width must be positive, got {widths[i]}");
        if (ResolvedStemWidth < 1) throw new ArgumentException($"{who}: stem width must be positive, got {ResolvedStemWidth}");
        if (Groups < 1) throw new ArgumentException($"{who}: groups must be positive, got {Groups}");
        if (WidthPerGroup < 1) throw new ArgumentException($"{who}: width per group must be positive, got {WidthPerGroup}");
        if (Block == BlockKind.Basic && (Groups != 1 || WidthPerGroup != 64))
            throw new ArgumentException($"{who}: basic blocks support only groups = 1 and width per group = 64 (got groups = {Groups}, width per group = {WidthPerGroup}); use bottleneck blocks for ResNeXt or wide variants");
        if (Block == BlockKind.Bottleneck)
            foreach (var w in widths)
                if (BottleneckWidth(w) < Groups)
                    throw new ArgumentException($"{who}: bottleneck of {w} planes with width per group {WidthPerGroup} has no channels per group");
        if (Shortcut == ShortcutOption.A && Block == BlockKind.Bottleneck && !Plain)
            throw new ArgumentException($"{who}: option A (zero-padding) shortcuts are defined for basic blocks only, not bottlenecks; use option B or C");
        if (Shortcut == ShortcutOption.A && !Plain)
        {
            int c = ResolvedStemWidth;
            foreach (var w in widths)
            {
                if (w * Expansion < c)
                    throw new ArgumentException($"{who}: option A shortcuts cannot reduce channels ({c} -> {w * Expansion}); use option B");
                c = w * Expansion;
            }
        }
        if (SeReduction < 1) throw new ArgumentException($"{who}: SE reduction must be positive, got {SeReduction}");
        if (!(DropPathRate >= 0 && DropPathRate < 1))
            throw new ArgumentException($"{who}: drop-path rate must be in [0, 1), got {DropPathRate}");
        if (Plain && DropPathRate > 0) throw new ArgumentException($"{who}: stochastic depth (drop-path) needs shortcuts; a plain network would drop its only path");
        if (Plain && ZeroInitResidual) throw new ArgumentException($"{who}: zero-init of the residual branch needs shortcuts; a plain network would output zeros");
        if (Plain && ScaleResidual) throw new ArgumentException($"{who}: residual-branch scaling needs shortcuts; a plain network has no residual branch");
        if (NumClasses < 1) throw new ArgumentException($"{who}: number of classes must be positive, got {NumClasses}");
    }

    /// <summary>One-line summary, e.g. "resnet50: bottleneck [3, 4, 6, 3], imagenet stem, shortcut B".</summary>
    public string Describe()
    {
        var parts = new List<string>
        {
            $"{(PreActivation ? "pre-activation " : "")}{Block.ToString().ToLowerInvariant()} [{string.Join(", ", Layers)}]",
            $"widths [{string.Join(", ", StageWidths)}]",
            $"{Stem.ToString().ToLowerInvariant()} stem",
            Plain ? "plain (no shortcuts)" : $"shortcut {Shortcut}",
        };
        if (Groups != 1 || WidthPerGroup != 64) parts.Add($"groups {Groups} x {WidthPerGroup}");
        if (SqueezeExcitation) parts.Add($"SE 1/{SeReduction}");
        if (DropPathRate > 0) parts.Add($"drop-path {DropPathRate}");
        if (ZeroInitResidual) parts.Add("zero-init residual");
        if (ScaleResidual) parts.Add("residual scale 1/sqrt(L)");
        parts.Add($"{NumClasses} classes");
        return $"{Name}: {string.Join(", ", parts)}";
    }
}
