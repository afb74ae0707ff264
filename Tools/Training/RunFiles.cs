// The human-facing files of a run directory: config.json (resolved options), metrics.jsonl
// (one JSON object per logged step, "kind": "train", and one per validation, "kind": "val",
// plus "val_ema" for the moving average of the weights with --model-ema,
// each with its wall-clock time as Unix seconds in "wall_time"), epochs.csv (one row per finished epoch) and the plots
// loss.png and error.png, redrawn after every epoch. On resume, rows past the checkpoint are
// dropped so the files read as if the run had never stopped. config.json is written only once a
// checkpoint made with those options is saved, so a failed attempt never changes what a later
// --resume starts from.
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using ResidualEngine.Training.Plotting;

namespace ResidualEngine.Training;

/// <summary>One logged training step: averages over the steps since the previous row.</summary>
public sealed record StepRow(int Epoch, long Step, double Loss, double Top1, double Lr, double ImagesPerSecond, double DataWaitMs)
{
    /// <summary>When the row was logged (Unix seconds); NaN when unknown.</summary>
    public double WallTime { get; init; } = double.NaN;
}

/// <summary>One validation pass: after epoch <paramref name="Epoch"/>, at global step <paramref name="Step"/>.</summary>
public sealed record ValRow(int Epoch, long Step, double Loss, double Top1, double Top5, double Seconds, double WallTime);

public sealed class RunFiles
{
    public RunFiles(string directory)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        Directory = directory;
    }

    public string Directory { get; }
    public string ConfigPath => Path.Combine(Directory, "config.json");
    public string MetricsPath => Path.Combine(Directory, "metrics.jsonl");
    public string EpochsPath => Path.Combine(Directory, "epochs.csv");
    public string LossPlotPath => Path.Combine(Directory, "loss.png");
    public string ErrorPlotPath => Path.Combine(Directory, "error.png");

    public const string EpochsHeader = "epoch,train_loss,train_top1,val_loss,val_top1,val_top5,lr,seconds";

    public void WriteConfig(JsonObject config) =>
        AtomicFile.WriteAllText(ConfigPath, config.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");

    public void AppendStep(StepRow r)
    {
        var o = new JsonObject
        {
            ["kind"] = "train",
            ["wall_time"] = WallTime(r.WallTime),
            ["epoch"] = r.Epoch,
            ["step"] = r.Step,
            ["loss"] = Num(r.Loss),
            ["top1"] = Num(r.Top1),
            ["lr"] = Num(r.Lr),
            ["img_per_s"] = Num(Math.Round(r.ImagesPerSecond, 2)),
            ["data_wait_ms"] = Num(Math.Round(r.DataWaitMs, 3)),
        };
        System.IO.Directory.CreateDirectory(Directory);
        File.AppendAllText(MetricsPath, o.ToJsonString() + "\n");
    }

    /// <summary>Appends a validation row to metrics.jsonl.</summary>
    /// <param name="kind">"val", or "val_ema" for the moving average of the weights.</param>
    public void AppendValidation(ValRow r, string kind = "val")
    {
        ArgumentNullException.ThrowIfNull(r);
        var o = new JsonObject
        {
            ["kind"] = kind,
            ["wall_time"] = WallTime(r.WallTime),
            ["epoch"] = r.Epoch,
            ["step"] = r.Step,
            ["loss"] = Num(r.Loss),
            ["top1"] = Num(r.Top1),
            ["top5"] = Num(r.Top5),
            ["seconds"] = Num(Math.Round(r.Seconds, 3)),
        };
        System.IO.Directory.CreateDirectory(Directory);
        File.AppendAllText(MetricsPath, o.ToJsonString() + "\n");
    }

    /// <summary>Unix seconds with millisecond resolution (now when not given).</summary>
    public static double Now() => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0;

    private static JsonNode? WallTime(double t) => Num(double.IsNaN(t) ? Now() : t);

    /// <summary>The validation rows of metrics.jsonl (lines that do not parse are skipped).</summary>
    public List<ValRow> ReadValidations()
    {
        var rows = new List<ValRow>();
        if (!File.Exists(MetricsPath)) return rows;
        foreach (var line in File.ReadLines(MetricsPath))
        {
            try
            {
                if (JsonNode.Parse(line) is not JsonObject o || (string?)o["kind"] != "val") continue;
                rows.Add(new ValRow((int)o["epoch"]!, (long)o["step"]!, D(o["loss"]), D(o["top1"]), D(o["top5"]), D(o["seconds"]), D(o["wall_time"])));
            }
            catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException or NullReferenceException)
            {
            }
        }
        return rows;
    }

    // NaN and infinities are not JSON numbers; they are written as strings so the file stays parseable.
    private static JsonNode? Num(double v) => double.IsFinite(v) ? JsonValue.Create(v) : JsonValue.Create(v.ToString(CultureInfo.InvariantCulture));

    /// <summary>Reads metrics.jsonl back (skipping lines that do not parse, such as a torn last line).</summary>
    public List<StepRow> ReadSteps()
    {
        var rows = new List<StepRow>();
        if (!File.Exists(MetricsPath)) return rows;
        foreach (var line in ReadLines(MetricsPath))
        {
            if (string.IsNullOrWhiteSpace(line)) continue;
            try
            {
                var o = JsonNode.Parse(line)!.AsObject();
                if ((string?)o["kind"] is "val" or "val_ema") continue;
                rows.Add(new StepRow((int)o["epoch"]!, (long)o["step"]!, D(o["loss"]), D(o["top1"]), D(o["lr"]), D(o["img_per_s"]), D(o["data_wait_ms"]))
                {
                    WallTime = D(o["wall_time"]),
                });
            }
            catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException or NullReferenceException)
            {
                // A line cut short by a crash; the rest of the file is still useful.
            }
        }
        return rows;
    }

    private static double D(JsonNode? n) => n is null ? double.NaN
        : n.GetValueKind() == JsonValueKind.String ? double.Parse(n.GetValue<string>(), CultureInfo.InvariantCulture) : n.GetValue<double>();

    /// <summary>
    /// Drops metrics rows after global step <paramref name="lastStep"/> (they belong to no checkpoint:
    /// used when resuming, and with -1 when a run directory is reused); returns how many were dropped.
    /// </summary>
    public int TruncateSteps(long lastStep)
    {
        if (!File.Exists(MetricsPath)) return 0;
        var keep = new StringBuilder();
        int dropped = 0;
        foreach (var line in ReadLines(MetricsPath))
        {
            if (string.IsNullOrWhiteSpace(line)) continue;
            try
            {
                if ((long)JsonNode.Parse(line)!["step"]! <= lastStep) keep.Append(line).Append('\n');
                else dropped++;
            }
            catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException or NullReferenceException)
            {
                dropped++; // a line cut short by a crash
            }
        }
        if (dropped > 0) AtomicFile.WriteAllText(MetricsPath, keep.ToString());
        return dropped;
    }

    // Only a regular file is read line by line (run directories are ours, but a FIFO would block).
    private static IEnumerable<string> ReadLines(string path)
    {
        ResidualEngine.IO.SafeFile.RequireRegular(path, "metrics file");
        return File.ReadLines(path);
    }

    /// <summary>Rewrites epochs.csv from the full history (small, so atomically every epoch).</summary>
    public void WriteEpochs(IReadOnlyList<EpochRow> history)
    {
        var sb = new StringBuilder(EpochsHeader).Append('\n');
        foreach (var r in history)
            sb.Append(string.Join(",", new[] { r.Epoch.ToString(CultureInfo.InvariantCulture), F(r.TrainLoss), F(r.TrainTop1), F(r.ValLoss), F(r.ValTop1), F(r.ValTop5), F(r.Lr), r.Seconds.ToString("F3", CultureInfo.InvariantCulture) })).Append('\n');
        AtomicFile.WriteAllText(EpochsPath, sb.ToString());
    }

    private static string F(double v) => v.ToString("R", CultureInfo.InvariantCulture);

    /// <summary>Redraws loss.png and error.png (train and val curves per epoch, plus the logged train steps).</summary>
    public void WritePlots(IReadOnlyList<EpochRow> history, IReadOnlyList<StepRow> steps, int stepsPerEpoch)
    {
        var stepX = new List<(double, double)>();
        var stepErr = new List<(double, double)>();
        foreach (var s in steps)
        {
            double x = stepsPerEpoch > 0 ? (double)s.Step / stepsPerEpoch : s.Epoch;
            stepX.Add((x, s.Loss));
            stepErr.Add((x, 100 * (1 - s.Top1)));
        }
        var trainLoss = history.Select(r => ((double)r.Epoch, r.TrainLoss)).ToList();
        var valLoss = history.Select(r => ((double)r.Epoch, r.ValLoss)).ToList();
        var trainErr = history.Select(r => ((double)r.Epoch, 100 * (1 - r.TrainTop1))).ToList();
        var valErr = history.Select(r => ((double)r.Epoch, 100 * (1 - r.ValTop1))).ToList();
        var valErr5 = history.Select(r => ((double)r.Epoch, 100 * (1 - r.ValTop5))).ToList();

        var lossSeries = new List<Series>();
        if (stepX.Count > 0) lossSeries.Add(new Series("train (logged steps)", stepX));
        lossSeries.Add(new Series("train (epoch mean)", trainLoss));
        lossSeries.Add(new Series("val", valLoss));
        // A log axis once the loss spans about a decade (long runs); linear before that.
        var all = lossSeries.SelectMany(s => s.Points).Select(p => p.Y).Where(double.IsFinite).ToList();
        bool logY = all.Count > 0 && all.Min() > 0 && all.Max() / all.Min() >= 8;
        LineChart.Save(LossPlotPath, [new Panel("Loss", "epoch", "cross-entropy", lossSeries, LogY: logY)]);

        var errSeries = new List<Series>();
        if (stepErr.Count > 0) errSeries.Add(new Series("train (logged steps)", stepErr));
        errSeries.Add(new Series("train top-1", trainErr));
        errSeries.Add(new Series("val top-1", valErr));
        errSeries.Add(new Series("val top-5", valErr5));
        LineChart.Save(ErrorPlotPath, [new Panel("Error", "epoch", "error (%)", errSeries)]);
    }
}
