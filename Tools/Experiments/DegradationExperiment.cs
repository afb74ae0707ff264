// `residual experiment degradation`: the experiment behind Figure 1/6 of He et al. (2015). A deeper
// plain network trains to a HIGHER training error than a shallower one (the degradation problem),
// while the residual versions of the same depths do not degrade. Trains plain-20 and plain-56, then
// ResNet-20 and ResNet-56 (CIFAR-style; --imagenet: 18 and 34 layers) on the same data with the same
// schedule and seed, and writes one figure (panels: plain, residual), the curves as CSV, and a table
// of final errors (Markdown + CSV) into --out.
using System.Diagnostics;
using System.Globalization;
using ResidualEngine.Models;
using ResidualEngine.Tools.Bench;
using ResidualEngine.Tools.Cli;
using ResidualEngine.Training.Plotting;

namespace ResidualEngine.Tools.Experiments;

public sealed record DegradationOptions
{
    public DataSpec Data { get; init; } = new();
    public Schedule Schedule { get; init; } = new(Epochs: 6, BatchSize: 32, LearningRate: 0.1, EvalPoints: 12, Seed: 0);
    public bool ImageNet { get; init; }
    public int Shallow { get; init; } = 20;
    public int Deep { get; init; } = 56;
    public string Out { get; init; } = Path.Combine("docs", "experiments", "degradation");
    public int Threads { get; init; }
    public Device Device { get; init; } = Device.Cpu;

    public IReadOnlyList<(string Family, string Model)> Models =>
    [
        ("plain", $"plain{Shallow}"), ("plain", $"plain{Deep}"),
        ("residual", $"resnet{Shallow}"), ("residual", $"resnet{Deep}"),
    ];

    public const string Usage = """
        usage: residual experiment degradation [options]
          trains plain-20 vs plain-56 and ResNet-20 vs ResNet-56 on the same data, same schedule and seed
          --imagenet            plain/ResNet 18 vs 34 (ImageNet stem) instead of the CIFAR nets
          --shallow N --deep M  other depths (CIFAR: 6n+2, e.g. 20 and 110; ImageNet: 18 and 34)
          --data DIR            an ImageFolder with train/ and val/, or one ImageFolder (every 10th image per class
                                is held out for validation); default: synthetic images
          --classes K --train-per-class N --val-per-class M   size of the synthetic data (10, 250, 50)
          --image-size S        input size (32; --imagenet: 64)
          --augment A           none, flip (default) or crop-flip
          --epochs E            training epochs (6); lr divided by 10 at 50% and 75% of the iterations
          --batch-size B        (32)   --lr LR (0.1)   --seed N (0)   --eval-points P (12)
          --device D            cpu or cuda   --threads T (CPU threads, 0 = all)   --workers W (data threads, 1)
          --out DIR             where the figure and tables go (docs/experiments/degradation)
        """;

    public static DegradationOptions Parse(Args a)
    {
        ArgumentNullException.ThrowIfNull(a);
        bool imagenet = a.Flag("imagenet");
        var d = new DegradationOptions();
        var dataDefaults = imagenet ? d.Data with { ImageSize = 64 } : d.Data;
        var o = d with
        {
            ImageNet = imagenet,
            Data = DataSpec.Parse(a, dataDefaults),
            Schedule = new Schedule(
                a.Int("epochs", d.Schedule.Epochs, 1, 100_000),
                a.Int("batch-size", d.Schedule.BatchSize, 1, 65536),
                a.Double("lr", d.Schedule.LearningRate, 1e-6, 10),
                a.Int("eval-points", d.Schedule.EvalPoints, 1, 10_000),
                a.Int("seed", d.Schedule.Seed)),
            Shallow = a.Int("shallow", imagenet ? 18 : 20, 2, 10_000),
            Deep = a.Int("deep", imagenet ? 34 : 56, 2, 10_000),
            Out = a.String("out") ?? d.Out,
            Threads = a.Int("threads", 0, 0, 1024),
            Device = a.String("device") is { } dev ? Device.Parse(dev) : Device.Cpu,
        };
        if (o.Shallow >= o.Deep) throw new ArgumentException($"--shallow ({o.Shallow}) must be less deep than --deep ({o.Deep})");
        foreach (var (_, m) in o.Models) ModelZoo.Canonical(m); // unknown depths fail here, with suggestions
        return o;
    }
}

public static class DegradationExperiment
{
    public sealed record Result(IReadOnlyList<(string Family, TrainRun Run)> Runs, string Figure, string Table, string TableCsv, string CurvesCsv);

    public static Result Run(DegradationOptions o, string commandLine, Action<string>? log = null)
    {
        ArgumentNullException.ThrowIfNull(o);
        using var threadScope = ThreadControl.Apply(o.Threads);
        int threads = threadScope.Threads;
        var data = ExperimentData.Open(o.Data, log);
        log?.Invoke($"data: {o.Data.Describe()} ({data.TrainCount} train, {data.ValCount} val images); {threads} threads");
        var runs = new List<(string Family, TrainRun Run)>();
        var total = Stopwatch.StartNew();
        foreach (var (family, name) in o.Models)
        {
            log?.Invoke($"training {name} ({o.Schedule.Epochs} epochs, batch {o.Schedule.BatchSize}, lr {o.Schedule.LearningRate})");
            using var model = ModelZoo.Create(name, data.NumClasses, o.Schedule.Seed);
            model.To(o.Device);
            runs.Add((family, ExperimentTrainer.Train(name, model, data, o.Schedule, o.Device, log)));
        }
        Directory.CreateDirectory(o.Out);
        var figure = Path.Combine(o.Out, "degradation.png");
        LineChart.Save(figure, Panels(runs));
        var curves = Path.Combine(o.Out, "curves.csv");
        ResultFiles.Write(curves, ResultFiles.Csv(
            ["model", "family", "iteration", "epoch", "train_error_pct", "val_error_pct", "train_loss", "lr"],
            runs.SelectMany(r => r.Run.Curve.Select(p => (IReadOnlyList<object?>)
                [r.Run.Model, r.Family, p.Iteration, p.Epoch, p.TrainError, p.ValError, p.TrainLoss, p.LearningRate]))));
        string[] header = ["model", "family", "parameters", "final train error %", "final val error %", "best val error %", "train time s", "img/s"];
        var rows = runs.Select(r => (IReadOnlyList<object?>)
            [r.Run.Model, r.Family, r.Run.Parameters, Math.Round(r.Run.Final.TrainError, 1), Math.Round(r.Run.Final.ValError, 1),
             Math.Round(r.Run.BestValError, 1), Math.Round(r.Run.Seconds), Math.Round(r.Run.ImagesPerSecond, 1)]).ToList();
        var tableCsv = Path.Combine(o.Out, "results.csv");
        ResultFiles.Write(tableCsv, ResultFiles.Csv(header, rows));
        var table = Path.Combine(o.Out, "results.md");
        ResultFiles.Write(table, string.Create(CultureInfo.InvariantCulture, $"""
            # Degradation experiment: final errors

            Command: `{commandLine}`

            Data: {o.Data.Describe()} ({data.TrainCount} train / {data.ValCount} val images).
            Schedule: {o.Schedule.Epochs} epochs of batch {o.Schedule.BatchSize} ({runs[0].Run.Iterations} iterations), SGD lr {o.Schedule.LearningRate}
            (divided by 10 at 50% and 75%), momentum {Schedule.Momentum}, weight decay {Schedule.WeightDecay}, seed {o.Schedule.Seed}.
            Training error: top-1 error of the mini-batches since the previous point, in train mode (the paper's thin curves);
            final = the last {Math.Max(1, runs[0].Run.Iterations / o.Schedule.EvalPoints)} iterations. Validation error: eval mode, whole val split.
            Machine: {MachineInfo.Describe()}, {threads} threads, device {o.Device}; total {total.Elapsed.TotalMinutes:F1} min.

            {ResultFiles.Markdown(header, rows)}
            """));
        log?.Invoke($"wrote {figure}, {table}, {tableCsv}, {curves}");
        return new Result(runs, figure, table, tableCsv, curves);
    }

    private static List<Panel> Panels(List<(string Family, TrainRun Run)> runs)
    {
        Panel PanelOf(string family, string title) => new(title, "iteration", "error (%)",
            runs.Where(r => r.Family == family).SelectMany(r => new[]
            {
                new Series($"{r.Run.Model} train", r.Run.Curve.Select(p => ((double)p.Iteration, p.TrainError)).ToList()),
                new Series($"{r.Run.Model} val", r.Run.Curve.Select(p => ((double)p.Iteration, p.ValError)).ToList()),
            }).ToList());
        return [PanelOf("plain", "plain networks"), PanelOf("residual", "residual networks")];
    }
}
