// `residual experiment degradation`: He et al. (2015) Figure 6 on any image folder. Plain nets of
// depth 20/32/44/56 degrade — the deeper one reaches a HIGHER training error — while the residual
// nets of the same depths (same layers plus identity shortcuts, same parameter counts) do not: the
// deeper residual net trains to a lower error. Trains plain-N and ResNet-N for every depth and
// several seeds with the paper's CIFAR protocol scaled to --iterations (SGD 0.1, /10 at 50% and
// 75%, momentum 0.9, weight decay 1e-4, batch 128, pad-4 crop + flip), and draws the two panels of
// the figure on the same axes. --imagenet: plain/ResNet-18 and -34 (Figure 4) instead.
// The runs go through ComparisonExperiment (seeds, saved runs, outputs).
using ResidualEngine.Models;
using ResidualEngine.Tools.Cli;

namespace ResidualEngine.Tools.Experiments;

public sealed record DegradationOptions
{
    public DataSpec Data { get; init; } = new();
    public Schedule Schedule { get; init; } = new(Epochs: 6, BatchSize: 128, LearningRate: 0.1, EvalPoints: 16, Seed: 0);
    public bool ImageNet { get; init; }
    public IReadOnlyList<int> Depths { get; init; } = [20, 32, 44, 56];
    public IReadOnlyList<int> Seeds { get; init; } = [0];
    public string Out { get; init; } = Path.Combine("docs", "experiments", "degradation");
    public int Threads { get; init; }
    public Device Device { get; init; } = Device.Cpu;

    /// <summary>(family, zoo name): the plain nets by depth, then the residual ones.</summary>
    public IReadOnlyList<(string Family, string Model)> Models =>
        [.. Depths.Select(d => ("plain", $"plain{d}")), .. Depths.Select(d => ("residual", $"resnet{d}"))];

    public static DegradationOptions Parse(Args a)
    {
        ArgumentNullException.ThrowIfNull(a);
        bool imagenet = a.Flag("imagenet");
        var d = new DegradationOptions();
        var dataDefaults = imagenet ? d.Data with { ImageSize = 64 } : d.Data;
        var depths = a.Ints("depths", imagenet ? [18, 34] : [20, 32, 44, 56]).ToList();
        int? shallow = a.String("shallow") is null ? null : a.Int("shallow", 0, 2, 10_000);
        int? deep = a.String("deep") is null ? null : a.Int("deep", 0, 2, 10_000);
        if (shallow is not null || deep is not null)
        {
            int s = shallow ?? depths[0], e = deep ?? depths[^1];
            if (s >= e) throw new ArgumentException($"--shallow ({s}) must be less deep than --deep ({e})");
            depths = [s, e];
        }
        if (depths.Count == 0) throw new ArgumentException("--depths needs at least one depth");
        if (depths.Distinct().Count() != depths.Count) throw new ArgumentException($"--depths lists a depth twice: {string.Join(",", depths)}");
        depths.Sort();
        var o = d with
        {
            ImageNet = imagenet,
            Data = DataSpec.Parse(a, dataDefaults),
            Schedule = ParseSchedule(a, d.Schedule),
            Depths = depths,
            Seeds = ParseSeeds(a),
            Out = a.String("out") ?? d.Out,
            Threads = a.Int("threads", 0, 0, 1024),
            Device = a.String("device") is { } dev ? Device.Parse(dev) : Device.Cpu,
        };
        foreach (var (_, m) in o.Models) ModelZoo.Canonical(m); // unknown depths fail here, with suggestions
        return o;
    }

    /// <summary>--epochs/--iterations/--batch-size/--lr/--eval-points/--eval-images/--warmup-iterations over <paramref name="d"/>.</summary>
    internal static Schedule ParseSchedule(Args a, Schedule d) =>
        new Schedule(
            a.Int("epochs", d.Epochs, 1, 100_000),
            a.Int("batch-size", d.BatchSize, 1, 65536),
            a.Double("lr", d.LearningRate, 1e-6, 10),
            a.Int("eval-points", d.EvalPoints, 1, 10_000),
            0)
        {
            Iterations = a.Int("iterations", d.Iterations, 0, 100_000_000),
            WarmupIterations = a.Int("warmup-iterations", d.WarmupIterations, 0, 100_000_000),
            EvalImages = a.Int("eval-images", d.EvalImages, 0, 100_000_000),
        };

    /// <summary>--seeds 0,1,2 (a list) or --seeds 3 (a count: 0, 1, 2); default 0.</summary>
    internal static IReadOnlyList<int> ParseSeeds(Args a)
    {
        var s = a.String("seeds");
        if (s is null) return [a.Int("seed", 0)];
        var list = a.Ints("seeds", [0]);
        if (!s.Contains(',', StringComparison.Ordinal))
        {
            if (list[0] < 1 || list[0] > 1000) throw new ArgumentException($"--seeds {s}: a count must be 1..1000 (or give a list, e.g. --seeds 0,1,2)");
            return Enumerable.Range(0, list[0]).ToList();
        }
        if (list.Distinct().Count() != list.Length) throw new ArgumentException($"--seeds lists a seed twice: {s}");
        return list;
    }

    private static int Depth(string model) => int.Parse(model.TrimStart("plainresnet".ToCharArray()), System.Globalization.CultureInfo.InvariantCulture);

    public ComparisonOptions ToComparison() => new(
        "degradation",
        ImageNet ? "Degradation (He et al. 2015, Fig. 4 setting)" : "Degradation (He et al. 2015, Fig. 6)",
        ["plain networks", "residual networks"],
        Models.Select(m => new NetSpec(m.Family == "plain" ? "plain networks" : "residual networks",
            m.Model.StartsWith("plain", StringComparison.Ordinal) ? $"plain-{m.Model[5..]}" : $"ResNet-{m.Model[6..]}",
            ModelZoo.Config(m.Model))
        {
            // The shallowest and the deepest of both families train first: the comparison that matters is on disk early.
            Priority = Depth(m.Model) == Depths[0] || Depth(m.Model) == Depths[^1] ? 0 : 1,
        }).ToList(),
        Seeds, Data, Schedule, Out, Threads, Device);
}

public static class DegradationExperiment
{
    public static ComparisonExperiment.Result Run(DegradationOptions o, string commandLine, Action<string>? log = null)
    {
        ArgumentNullException.ThrowIfNull(o);
        return ComparisonExperiment.Run(o.ToComparison(), commandLine, log);
    }
}
