// The engine behind the paper's comparison figures (He et al. 2015 Fig. 6: plain vs residual nets of
// several depths; He et al. 2016: post- vs pre-activation): several networks, each trained from
// several seeds on the same data with the same schedule (a seed fixes the weights and the data
// order, the same for every network), training error and test error recorded along the way.
// Every finished run is saved at once under OUT/runs/ with a key of everything that determines it,
// and a later invocation with the same options reuses it instead of training again, so a long run
// that is interrupted continues where it stopped. After each run the outputs are rewritten from
// all runs so far (partial results are always on disk):
//   <name>.png    one panel per group, on the same axes: per network the mean over seeds of the
//                 training error (dashed) and the test error (solid), the min..max over seeds shaded
//   curves.csv    every point of every run (model, group, seed, iteration, errors, loss, lr)
//   results.csv / results.md   per network: final training and test error, mean, sd, min, max over seeds
using System.Globalization;
using System.Text;
using System.Text.Json;
using ResidualEngine.Models;
using ResidualEngine.Tools.Bench;
using ResidualEngine.Training.Plotting;

namespace ResidualEngine.Tools.Experiments;

/// <summary>One network of a comparison: the panel it is drawn in, its label, and its configuration.
/// Networks train seed by seed, lower <see cref="Priority"/> first, then in the listed order.</summary>
public sealed record NetSpec(string Group, string Label, ResNetConfig Config)
{
    public int Priority { get; init; }
}

public sealed record ComparisonOptions(string Name, string Title, IReadOnlyList<string> Groups, IReadOnlyList<NetSpec> Nets,
    IReadOnlyList<int> Seeds, DataSpec Data, Schedule Schedule, string Out, int Threads, Device Device);

/// <summary>A network's runs over seeds and their summary; errors in percent.</summary>
public sealed record NetResult(NetSpec Net, IReadOnlyList<TrainRun> Runs)
{
    public IReadOnlyList<double> FinalTrain => Runs.Select(r => r.Final.TrainError).ToList();
    public IReadOnlyList<double> FinalTest => Runs.Select(r => r.Final.ValError).ToList();
}

public static class ComparisonExperiment
{
    public sealed record Result(IReadOnlyList<NetResult> Nets, string Figure, string Table, string TableCsv, string CurvesCsv, double Minutes);

    public static Result Run(ComparisonOptions o, string commandLine, Action<string>? log = null)
    {
        ArgumentNullException.ThrowIfNull(o);
        using var threadScope = ThreadControl.Apply(o.Threads);
        int threads = threadScope.Threads;
        var data = ExperimentData.Open(o.Data, log);
        var n = data.Normalization;
        log?.Invoke(string.Create(CultureInfo.InvariantCulture,
            $"data: {o.Data.Describe()} ({data.TrainCount} train, {data.ValCount} val images, {data.NumClasses} classes; mean {n.MeanR:F3}/{n.MeanG:F3}/{n.MeanB:F3}, std {n.StdR:F3}/{n.StdG:F3}/{n.StdB:F3}); {threads} threads"));
        var runsDir = Path.Combine(o.Out, "runs");
        Directory.CreateDirectory(runsDir);
        var done = o.Nets.ToDictionary(x => x.Label, _ => new List<TrainRun>(), StringComparer.Ordinal);
        var sw = System.Diagnostics.Stopwatch.StartNew();
        Result? result = null;
        foreach (var seed in o.Seeds)
        {
            foreach (var net in o.Nets.Select((x, i) => (x, i)).OrderBy(t => t.x.Priority).ThenBy(t => t.i).Select(t => t.x))
            {
                var key = Key(o, data, net, seed);
                var file = Path.Combine(runsDir, $"{net.Label}-seed{seed}.json");
                var run = Load(file, key);
                if (run is not null) log?.Invoke($"{net.Label} seed {seed}: reusing {file}");
                else
                {
                    log?.Invoke($"training {net.Label} seed {seed} ({o.Schedule.BatchSize} per batch, lr {o.Schedule.LearningRate}); {sw.Elapsed.TotalMinutes:F1} min so far");
                    using var model = new ResNet(net.Config with { NumClasses = data.NumClasses }, seed);
                    model.To(o.Device);
                    run = ExperimentTrainer.Train(net.Label, model, data, o.Schedule with { Seed = seed }, o.Device, log);
                    Save(file, key, run);
                }
                done[net.Label].Add(run);
                result = WriteOutputs(o, data, done, commandLine, threads, sw.Elapsed.TotalMinutes);
            }
        }
        if (result is null) throw new ArgumentException("nothing to train: no networks or no seeds");
        log?.Invoke($"wrote {result.Figure}, {result.Table}, {result.TableCsv}, {result.CurvesCsv} ({sw.Elapsed.TotalMinutes:F1} min)");
        return result;
    }

    /// <summary>Everything that determines a run; a saved run is reused only when its key is equal.</summary>
    private static string Key(ComparisonOptions o, ExperimentData data, NetSpec net, int seed) =>
        JsonSerializer.Serialize(new
        {
            net = net.Label,
            config = net.Config with { NumClasses = data.NumClasses },
            seed,
            schedule = o.Schedule with { Seed = seed },
            o.Schedule.Iterations, o.Schedule.WarmupIterations, o.Schedule.WarmupLearningRate, o.Schedule.EvalImages,
            data = o.Data.Describe(),
            train = data.TrainCount,
            val = data.ValCount,
            device = o.Device.ToString(),
        });

    private sealed record SavedRun(string Key, TrainRun Run);

    private static TrainRun? Load(string file, string key)
    {
        if (!File.Exists(file)) return null;
        try
        {
            var s = JsonSerializer.Deserialize<SavedRun>(File.ReadAllText(file));
            return s is not null && s.Key == key && s.Run.Curve.Count > 0 ? s.Run : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static void Save(string file, string key, TrainRun run) =>
        ResultFiles.Write(file, JsonSerializer.Serialize(new SavedRun(key, run), new JsonSerializerOptions { WriteIndented = true }));

    private static Result WriteOutputs(ComparisonOptions o, ExperimentData data, Dictionary<string, List<TrainRun>> done,
        string commandLine, int threads, double minutes)
    {
        var nets = o.Nets.Select(x => new NetResult(x, done[x.Label])).ToList();
        var withRuns = nets.Where(r => r.Runs.Count > 0).ToList();
        var figure = Path.Combine(o.Out, o.Name + ".png");
        LineChart.Save(figure, Panels(o, withRuns), panelWidth: 620, height: 460);

        var curves = Path.Combine(o.Out, "curves.csv");
        ResultFiles.Write(curves, ResultFiles.Csv(
            ["model", "group", "seed", "iteration", "epoch", "train_error_pct", "test_error_pct", "train_loss", "lr"],
            withRuns.SelectMany(r => r.Runs.SelectMany(run => run.Curve.Select(p => (IReadOnlyList<object?>)
                [r.Net.Label, r.Net.Group, run.Seed, p.Iteration, p.Epoch, p.TrainError, p.ValError, p.TrainLoss, p.LearningRate])))));

        string[] header = ["model", "group", "parameters", "seeds", "final train error % (mean)", "sd", "min", "max",
            "final test error % (mean)", "sd", "min", "max", "minutes per run"];
        var rows = withRuns.Select(r => (IReadOnlyList<object?>)
        [
            r.Net.Label, r.Net.Group, r.Runs[0].Parameters, r.Runs.Count,
            Round(Mean(r.FinalTrain)), Round(Sd(r.FinalTrain)), Round(r.FinalTrain.Min()), Round(r.FinalTrain.Max()),
            Round(Mean(r.FinalTest)), Round(Sd(r.FinalTest)), Round(r.FinalTest.Min()), Round(r.FinalTest.Max()),
            Math.Round(r.Runs.Average(x => x.Seconds) / 60, 1),
        ]).ToList();
        var tableCsv = Path.Combine(o.Out, "results.csv");
        ResultFiles.Write(tableCsv, ResultFiles.Csv(header, rows));

        var first = withRuns.FirstOrDefault()?.Runs[0];
        int total = first?.Iterations ?? 0;
        int perEpoch = first is null ? 1 : Math.Max(1, (int)Math.Round(first.Curve[^1].Iteration / first.Curve[^1].Epoch));
        int window = first is null || first.Curve.Count < 2 ? total : first.Curve[^1].Iteration - first.Curve[^2].Iteration;
        var perSeed = new StringBuilder();
        foreach (var r in withRuns)
            perSeed.AppendLine(CultureInfo.InvariantCulture, $"- {r.Net.Label}: train {string.Join(", ", r.Runs.Select(x => $"{x.Final.TrainError:F2} (seed {x.Seed})"))}; " +
                $"test {string.Join(", ", r.Runs.Select(x => $"{x.Final.ValError:F2}"))}");
        var table = Path.Combine(o.Out, "results.md");
        ResultFiles.Write(table, string.Create(CultureInfo.InvariantCulture, $"""
            # {o.Title}: final errors

            Command: `{commandLine}`

            Data: {o.Data.Describe()} ({data.TrainCount} train / {data.ValCount} test images, {data.NumClasses} classes).
            Schedule: {o.Schedule.Describe(total, perEpoch)}; seeds {string.Join(", ", o.Seeds)}
            (a seed fixes the initial weights and the data order, the same for every network).
            Training error: top-1 error of the training mini-batches in train mode (augmented), over the last {window} iterations.
            Test error: eval mode, the whole test split{(o.Schedule.EvalImages > 0 ? $" (the points before the last use {o.Schedule.EvalImages} evenly spaced test images)" : "")}.
            Machine: {MachineInfo.Describe()}, {threads} threads, device {o.Device}; {minutes:F1} min so far, {withRuns.Sum(r => r.Runs.Count)} of {o.Nets.Count * o.Seeds.Count} runs done.

            {ResultFiles.Markdown(header, rows)}
            Per seed (final train error, then test error, %):
            {perSeed}
            """));
        return new Result(nets, figure, table, tableCsv, curves, minutes);
    }

    private static double Round(double v) => Math.Round(v, 2);

    public static double Mean(IReadOnlyList<double> v) => v.Count == 0 ? double.NaN : v.Average();

    /// <summary>Sample standard deviation (0 for one value).</summary>
    public static double Sd(IReadOnlyList<double> v)
    {
        if (v.Count < 2) return 0;
        double m = v.Average();
        return Math.Sqrt(v.Sum(x => (x - m) * (x - m)) / (v.Count - 1));
    }

    /// <summary>One panel per group on shared axes: mean training error (dashed) and test error (solid) per network, min..max shaded.</summary>
    private static List<Panel> Panels(ComparisonOptions o, List<NetResult> nets)
    {
        var series = new Dictionary<string, List<Series>>(StringComparer.Ordinal);
        double yMax = 0, xMax = 0;
        foreach (var r in nets)
        {
            // The same colour for the same position in every panel (plain-20 and ResNet-20 alike).
            int colour = o.Nets.Where(x => x.Group == r.Net.Group).ToList().IndexOf(r.Net);
            var (train, trainBand) = MeanCurve(r.Runs, p => p.TrainError);
            var (test, testBand) = MeanCurve(r.Runs, p => p.ValError);
            bool bands = r.Runs.Count > 1;
            if (!series.TryGetValue(r.Net.Group, out var list)) series[r.Net.Group] = list = [];
            list.Add(new Series($"{r.Net.Label} train", train, Dashed: true, Color: colour, Band: bands ? trainBand : null));
            list.Add(new Series($"{r.Net.Label} test", test, Dashed: false, Color: colour, Band: bands ? testBand : null));
            foreach (var (x, y) in train.Concat(test)) { yMax = Math.Max(yMax, y); xMax = Math.Max(xMax, x); }
        }
        double top = Math.Min(100, Math.Max(5, Math.Ceiling(yMax / 5) * 5));
        return o.Groups.Select(g => new Panel(g, "iteration", "error (%): training dashed, test solid",
            series.TryGetValue(g, out var l) ? l : [], XMin: 0, XMax: Math.Max(1, xMax), YMin: 0, YMax: top, LegendBottomLeft: true)).ToList();
    }

    /// <summary>The mean over runs at each iteration all runs have, and the min..max band.</summary>
    private static (List<(double X, double Y)> Mean, List<(double X, double Lo, double Hi)> Band) MeanCurve(IReadOnlyList<TrainRun> runs, Func<CurvePoint, double> f)
    {
        var its = runs.Select(r => r.Curve.Select(p => p.Iteration).ToHashSet()).Aggregate((a, b) => { a.IntersectWith(b); return a; });
        var mean = new List<(double, double)>();
        var band = new List<(double, double, double)>();
        foreach (var it in its.Order())
        {
            var v = runs.Select(r => f(r.Curve.First(p => p.Iteration == it))).ToList();
            mean.Add((it, v.Average()));
            band.Add((it, v.Min(), v.Max()));
        }
        return (mean, band);
    }
}
