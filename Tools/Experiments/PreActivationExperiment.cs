// `residual experiment preact`: He et al. (2016), "Identity Mappings in Deep Residual Networks",
// on any image folder: the original (post-activation) residual unit against the full
// pre-activation one (BN and ReLU before each convolution, nothing after the addition) at 110
// layers (basic blocks, option-A shortcuts for both) and 164 layers (bottlenecks, projection
// shortcuts for both), so that each pair differs only in the order of the operations. The paper's
// CIFAR-10 numbers: 6.61% vs 6.37% test error at 110 layers, 5.93% vs 5.46% at 164. Same protocol
// as the degradation experiment, plus the paper's warm-up at lr 0.01 (400 of 64k iterations,
// scaled with the run unless --warmup-iterations is given). Runs go through ComparisonExperiment.
using ResidualEngine.Models;
using ResidualEngine.Tools.Cli;

namespace ResidualEngine.Tools.Experiments;

public sealed record PreActivationOptions
{
    public DataSpec Data { get; init; } = new();
    public Schedule Schedule { get; init; } = new(Epochs: 6, BatchSize: 128, LearningRate: 0.1, EvalPoints: 16, Seed: 0);
    public IReadOnlyList<int> Depths { get; init; } = [110, 164];
    public IReadOnlyList<int> Seeds { get; init; } = [0];
    public string Out { get; init; } = Path.Combine("docs", "experiments", "preact");
    public int Threads { get; init; }
    public Device Device { get; init; } = Device.Cpu;

    public static PreActivationOptions Parse(Args a)
    {
        ArgumentNullException.ThrowIfNull(a);
        var d = new PreActivationOptions();
        var depths = a.Ints("depths", [.. d.Depths]).Distinct().Order().ToList();
        if (depths.Count == 0) throw new ArgumentException("--depths needs at least one depth");
        foreach (var depth in depths) Config(depth, false);
        bool warmupGiven = a.String("warmup-iterations") is not null;
        var schedule = DegradationOptions.ParseSchedule(a, d.Schedule);
        var o = d with
        {
            Data = DataSpec.Parse(a, d.Data),
            Depths = depths,
            Seeds = DegradationOptions.ParseSeeds(a),
            Out = a.String("out") ?? d.Out,
            Threads = a.Int("threads", 0, 0, 1024),
            Device = a.String("device") is { } dev ? Device.Parse(dev) : Device.Cpu,
            Schedule = schedule,
        };
        return warmupGiven ? o : o with { Schedule = schedule with { WarmupIterations = -1 } };
    }

    /// <summary>The CIFAR net of <paramref name="depth"/> layers, post- or pre-activation.</summary>
    public static ResNetConfig Config(int depth, bool preActivation)
    {
        if (depth >= 164 && (depth - 2) % 9 == 0)
            return ModelZoo.Config("preact_resnet164") with { Name = $"{(preActivation ? "preact_" : "")}resnet{depth}", Layers = Stages((depth - 2) / 9), PreActivation = preActivation };
        if (depth < 164 && depth >= 8 && (depth - 2) % 6 == 0)
            return ModelZoo.Config("resnet20") with { Name = $"{(preActivation ? "preact_" : "")}resnet{depth}", Layers = Stages((depth - 2) / 6), PreActivation = preActivation };
        throw new ArgumentException($"--depths: {depth} is not a CIFAR depth (6n+2 below 164 for basic blocks, e.g. 20, 56, 110; 9n+2 from 164 for bottlenecks, e.g. 164, 1001)");
    }

    private static int[] Stages(int n) => [n, n, n];

    public ComparisonOptions ToComparison(int totalIterations)
    {
        var s = Schedule.WarmupIterations >= 0 ? Schedule
            : Schedule with { WarmupIterations = Math.Max(1, (int)Math.Round(400.0 * totalIterations / 64000)) };
        return new ComparisonOptions("preact", "Pre-activation vs post-activation (He et al. 2016)",
            ["original (post-activation)", "full pre-activation"],
            [
                .. Depths.Select(d => new NetSpec("original (post-activation)", $"ResNet-{d}", Config(d, false))),
                .. Depths.Select(d => new NetSpec("full pre-activation", $"pre-act ResNet-{d}", Config(d, true))),
            ],
            Seeds, Data, s, Out, Threads, Device);
    }
}

public static class PreActivationExperiment
{
    public static ComparisonExperiment.Result Run(PreActivationOptions o, string commandLine, Action<string>? log = null)
    {
        ArgumentNullException.ThrowIfNull(o);
        // The scaled warm-up needs the run's length: iterations, or epochs of the training split.
        int total = o.Schedule.Iterations;
        if (total == 0)
        {
            var data = ExperimentData.Open(o.Data);
            total = data.TrainCount / o.Schedule.BatchSize * o.Schedule.Epochs;
        }
        return ComparisonExperiment.Run(o.ToComparison(total), commandLine, log);
    }
}
