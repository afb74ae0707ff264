// Every named network as a one-line configuration. Torchvision's models keep torchvision's
// names ("resnet50", "resnext50_32x4d", "wide_resnet50_2"); the rest follow the same style
// ("resnet20", "plain34", "preact_resnet164", "se_resnet50"). Lookups ignore case, '-' and
// '_' ("ResNet-56", "plain-56", "preact-resnet18" all work); an unknown name lists close ones.
// Describe() builds the model shape-only (no initialisation) to count parameters and traces
// one image at the native size to count multiply-accumulates.
using System.Collections.Concurrent;
using ResidualEngine.Nn;

namespace ResidualEngine.Models;

/// <summary>Size of a zoo model: parameters and forward GMACs for one image at its native input size.</summary>
public sealed record ModelInfo(string Name, long Parameters, double GMacs, int InputSize, ResNetConfig Config);

public static class ModelZoo
{
    private static readonly int[] s_r18 = [2, 2, 2, 2], s_r34 = [3, 4, 6, 3], s_r101 = [3, 4, 23, 3],
        s_r152 = [3, 8, 36, 3], s_r200 = [3, 24, 36, 3];

    private static ResNetConfig Net(string name, BlockKind block, int[] layers) =>
        new() { Name = name, Block = block, Layers = layers, Stem = StemKind.Imagenet, NumClasses = 1000 };

    /// <summary>CIFAR nets of He et al. 2015: 6n + 2 layers, basic blocks, option-A shortcuts, 16/32/64 planes.</summary>
    private static ResNetConfig Cifar(string name, int n) =>
        new() { Name = name, Block = BlockKind.Basic, Layers = [n, n, n], Stem = StemKind.Cifar, Shortcut = ShortcutOption.A, NumClasses = 10 };

    /// <summary>Pre-activation CIFAR bottleneck nets of He et al. 2016: 9n + 2 layers, outputs 64/128/256, projection shortcuts.</summary>
    private static ResNetConfig CifarPreAct(string name, int n) =>
        new() { Name = name, Block = BlockKind.Bottleneck, Layers = [n, n, n], Stem = StemKind.Cifar, PreActivation = true, NumClasses = 10 };

    private static readonly (string Name, Func<ResNetConfig> Make)[] s_entries =
    [
        ("resnet18", () => Net("resnet18", BlockKind.Basic, s_r18)),
        ("resnet34", () => Net("resnet34", BlockKind.Basic, s_r34)),
        ("resnet50", () => Net("resnet50", BlockKind.Bottleneck, s_r34)),
        ("resnet101", () => Net("resnet101", BlockKind.Bottleneck, s_r101)),
        ("resnet152", () => Net("resnet152", BlockKind.Bottleneck, s_r152)),
        ("resnet200", () => Net("resnet200", BlockKind.Bottleneck, s_r200)),
        ("resnext50_32x4d", () => Net("resnext50_32x4d", BlockKind.Bottleneck, s_r34) with { Groups = 32, WidthPerGroup = 4 }),
        ("wide_resnet50_2", () => Net("wide_resnet50_2", BlockKind.Bottleneck, s_r34) with { WidthPerGroup = 128 }),
        ("se_resnet50", () => Net("se_resnet50", BlockKind.Bottleneck, s_r34) with { SqueezeExcitation = true }),
        ("plain18", () => Net("plain18", BlockKind.Basic, s_r18) with { Plain = true }),
        ("plain34", () => Net("plain34", BlockKind.Basic, s_r34) with { Plain = true }),
        ("plain50", () => Net("plain50", BlockKind.Bottleneck, s_r34) with { Plain = true }),
        ("preact_resnet18", () => Net("preact_resnet18", BlockKind.Basic, s_r18) with { PreActivation = true }),
        ("preact_resnet34", () => Net("preact_resnet34", BlockKind.Basic, s_r34) with { PreActivation = true }),
        ("preact_resnet50", () => Net("preact_resnet50", BlockKind.Bottleneck, s_r34) with { PreActivation = true }),
        ("preact_resnet101", () => Net("preact_resnet101", BlockKind.Bottleneck, s_r101) with { PreActivation = true }),
        ("preact_resnet152", () => Net("preact_resnet152", BlockKind.Bottleneck, s_r152) with { PreActivation = true }),
        ("resnet20", () => Cifar("resnet20", 3)),
        ("resnet32", () => Cifar("resnet32", 5)),
        ("resnet44", () => Cifar("resnet44", 7)),
        ("resnet56", () => Cifar("resnet56", 9)),
        ("resnet110", () => Cifar("resnet110", 18)),
        ("resnet1202", () => Cifar("resnet1202", 200)),
        ("plain20", () => Cifar("plain20", 3) with { Plain = true }),
        ("plain32", () => Cifar("plain32", 5) with { Plain = true }),
        ("plain44", () => Cifar("plain44", 7) with { Plain = true }),
        ("plain56", () => Cifar("plain56", 9) with { Plain = true }),
        ("plain110", () => Cifar("plain110", 18) with { Plain = true }),
        // He et al. 2016's pairs: ResNet-110 (basic, option A) with and without pre-activation, and
        // the 164-layer bottleneck net (projection shortcuts) in its original post-activation form.
        ("preact_resnet110", () => Cifar("preact_resnet110", 18) with { PreActivation = true }),
        ("resnet164", () => CifarPreAct("resnet164", 18) with { PreActivation = false }),
        ("preact_resnet164", () => CifarPreAct("preact_resnet164", 18)),
        ("preact_resnet1001", () => CifarPreAct("preact_resnet1001", 111)),
    ];

    private static readonly Dictionary<string, (string Name, Func<ResNetConfig> Make)> s_byKey =
        s_entries.ToDictionary(e => Key(e.Name), e => e, StringComparer.Ordinal);

    private static readonly ConcurrentDictionary<string, ModelInfo> s_info = new(StringComparer.Ordinal);

    /// <summary>Every zoo name, ImageNet models first, in a stable order.</summary>
    public static IReadOnlyList<string> Names { get; } = s_entries.Select(e => e.Name).ToArray();

    /// <summary>The canonical name for any accepted spelling ("ResNet-56" -> "resnet56"); throws for unknown names.</summary>
    public static string Canonical(string name) => Find(name).Name;

    /// <summary>A fresh copy of a zoo model's configuration (ImageNet: 1000 classes, CIFAR: 10).</summary>
    public static ResNetConfig Config(string name) => Find(name).Make();

    /// <summary>Builds a zoo model with seeded weights.</summary>
    /// <param name="numClasses">Classifier outputs; null for the default (1000 ImageNet, 10 CIFAR).</param>
    public static ResNet Create(string name, int? numClasses = null, int seed = 0, DType dtype = DType.F32)
    {
        var cfg = Config(name);
        if (numClasses is { } k)
        {
            if (k < 1) throw new ArgumentException($"ModelZoo.Create: number of classes must be positive, got {k}", nameof(numClasses));
            cfg = cfg with { NumClasses = k };
        }
        return new ResNet(cfg, seed, dtype);
    }

    /// <summary>Parameters and forward GMACs (conv + linear multiply-accumulates, one image at the native size, default head).</summary>
    public static ModelInfo Describe(string name)
    {
        var entry = Find(name);
        return s_info.GetOrAdd(entry.Name, _ => Measure(entry.Make()));
    }

    /// <summary>Parameters and GMACs of any configuration, without initialising weights.</summary>
    public static ModelInfo Measure(ResNetConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        using var skip = Init.SkipInitialization();
        using var model = new ResNet(config);
        return new ModelInfo(config.Name, model.ParameterCount(), model.ForwardMacs() / 1e9, config.NativeImageSize, config);
    }

    private static (string Name, Func<ResNetConfig> Make) Find(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (s_byKey.TryGetValue(Key(name), out var e)) return e;
        var close = Suggestions(name);
        var hint = close.Count > 0
            ? $"did you mean {string.Join(", ", close)}?"
            : $"known models: {string.Join(", ", Names)}";
        throw new ArgumentException($"unknown model '{name}'; {hint}");
    }

    /// <summary>Zoo names close to <paramref name="name"/>: same key prefix/substring or within a small edit distance.</summary>
    public static IReadOnlyList<string> Suggestions(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        var k = Key(name);
        if (k.Length == 0) return [];
        return s_entries
            .Select(e => (e.Name, Key: Key(e.Name)))
            .Select(e => (e.Name, Dist: e.Key.Contains(k, StringComparison.Ordinal) || k.Contains(e.Key, StringComparison.Ordinal) ? 0 : Distance(k, e.Key)))
            .Where(e => e.Dist <= Math.Max(2, k.Length / 4))
            .OrderBy(e => e.Dist).ThenBy(e => e.Name, StringComparer.Ordinal)
            .Take(6)
            .Select(e => e.Name)
            .ToList();
    }

    private static string Key(string name) =>
        new(name.Trim().ToLowerInvariant().Where(c => c is not ('-' or '_' or ' ')).ToArray());

    private static int Distance(string a, string b)
    {
        var prev = new int[b.Length + 1];
        var cur = new int[b.Length + 1];
        for (int j = 0; j <= b.Length; j++) prev[j] = j;
        for (int i = 1; i <= a.Length; i++)
        {
            cur[0] = i;
            for (int j = 1; j <= b.Length; j++)
                cur[j] = Math.Min(Math.Min(cur[j - 1] + 1, prev[j] + 1), prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
            (prev, cur) = (cur, prev);
        }
        return prev[b.Length];
    }
}
