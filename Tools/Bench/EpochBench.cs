// `residual bench epoch`: end to end on a real image folder, ours against the plain PyTorch loop
// (Tools/bench/pytorch_train_loop.py), each in a fresh process, alternating: ours then PyTorch,
// --repeat times. Ours is `residual train --augment cifar` (He et al.'s small-image recipe, the
// default SGD + cosine schedule, every epoch evaluated and checkpointed); the PyTorch loop does the
// same with torchvision's ImageFolder, transforms and DataLoader worker processes. Reported per
// epoch: total seconds (training + evaluation + checkpoint), the evaluation's seconds, val top-1,
// and the ratio of epoch times (above 1: ours is faster), with the load average before each run,
// since on a shared machine the numbers move with it.
using System.Globalization;
using System.Text;
using System.Text.Json;
using ResidualEngine.Tools.Cli;

namespace ResidualEngine.Tools.Bench;

public static class EpochBench
{
    public const string ScriptName = "pytorch_train_loop.py";

    public sealed record EpochTimes(string Engine, int Epoch, double Seconds, double EvalSeconds, double ValTop1, double LoadBefore);

    public static int Run(Args a)
    {
        ArgumentNullException.ThrowIfNull(a);
        var data = a.String("data") ?? throw new ArgumentException("bench epoch needs --data DIR (a folder with train/ and val/ class folders)");
        var model = a.String("model", "resnet20");
        int size = a.Int("image-size", 32, 8, 4096);
        int batch = a.Int("batch-size", 128, 1, 65536);
        int epochs = a.Int("epochs", 1, 1, 1000);
        int workers = a.Int("workers", 2, 0, 256);
        int repeat = a.Int("repeat", 1, 1, 100);
        var python = a.String("python");
        var json = a.String("json");
        a.RejectUnknown();
        if (!Directory.Exists(Path.Combine(data, "train")) || !Directory.Exists(Path.Combine(data, "val")))
            throw new ArgumentException($"bench epoch: '{data}' needs train/ and val/ class folders");
        data = Path.GetFullPath(data);

        var probe = PythonBaseline.Find(python is null ? PythonBaseline.DefaultCandidates() : [python]);
        var script = FindScript();
        string? skip = !probe.Found ? probe.Explain() : script is null ? $"{ScriptName} is not next to the tool or under Tools/bench/" : null;
        if (skip is not null) Console.Error.WriteLine($"residual bench epoch: PyTorch loop skipped: {skip}");
        Console.WriteLine($"residual bench epoch: {model} on {data}, {size} px, batch {batch}, {epochs} epoch(s), {workers} loader workers, " +
            $"{Environment.ProcessorCount} compute threads, {repeat} repeat(s)");

        var rows = new List<EpochTimes>();
        var work = Path.Combine(Path.GetTempPath(), $"residual-bench-epoch-{Environment.ProcessId}");
        try
        {
            for (int rep = 1; rep <= repeat; rep++)
            {
                double load = LoadAverage();
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"[{rep}/{repeat}] ours (load {load:F1})"));
                var ours = RunOurs(data, model, size, batch, epochs, workers, Path.Combine(work, $"ours-{rep}"), load);
                rows.AddRange(ours);
                Print(ours);
                if (skip is not null) continue;
                load = LoadAverage();
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"[{rep}/{repeat}] PyTorch (load {load:F1})"));
                var torch = RunTorch(probe.Python!, script!, data, model, size, batch, epochs, workers, Path.Combine(work, $"torch-{rep}"), load);
                rows.AddRange(torch);
                Print(torch);
            }
        }
        finally
        {
            if (Directory.Exists(work)) Directory.Delete(work, recursive: true);
        }
        Console.WriteLine();
        Console.WriteLine(Table(rows));
        if (json is not null)
        {
            BenchResult.WriteFile(json, JsonSerializer.Serialize(rows, BenchResult.JsonOptions));
            Console.WriteLine($"wrote {json}");
        }
        return 0;
    }

    private static string? FindScript()
    {
        var candidates = new[]
        {
            Path.Combine(AppContext.BaseDirectory, "bench", ScriptName),
            Path.Combine(Directory.GetCurrentDirectory(), "Tools", "bench", ScriptName),
        };
        return candidates.FirstOrDefault(File.Exists);
    }

    /// <summary>The 1-minute load average (Linux), or NaN.</summary>
    public static double LoadAverage()
    {
        try
        {
            var s = File.ReadAllText("/proc/loadavg").Split(' ');
            return double.Parse(s[0], CultureInfo.InvariantCulture);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
        {
            return double.NaN;
        }
    }

    private static List<EpochTimes> RunOurs(string data, string model, int size, int batch, int epochs, int workers, string outDir, double load)
    {
        var (file, lead) = IsolatedRun.SelfCommand();
        var args = new List<string>(lead)
        {
            "train", "--data", data, "--model", model, "--image-size", S(size), "--augment", "cifar", "--batch-size", S(batch),
            "--epochs", S(epochs), "--workers", S(workers), "--device", "cpu", "--out", outDir, "--tensorboard", "false",
        };
        var r = PythonBaseline.RunProcess(file, args, 24 * 3_600_000);
        if (r.Error is not null || r.ExitCode != 0)
            throw new InvalidOperationException($"`residual train` failed ({r.Error ?? $"exit {r.ExitCode}"}): {Last(r.StdErr + r.StdOut)}");
        // epochs.csv: epoch,train_loss,train_top1,val_loss,val_top1,val_top5,lr,seconds (seconds include evaluation);
        // metrics.jsonl "val" rows hold the evaluation's own seconds.
        var evalSeconds = File.ReadLines(Path.Combine(outDir, "metrics.jsonl"))
            .Select(l => JsonDocument.Parse(l).RootElement)
            .Where(e => e.GetProperty("kind").GetString() == "val")
            .ToDictionary(e => e.GetProperty("epoch").GetInt32(), e => e.GetProperty("seconds").GetDouble());
        var list = new List<EpochTimes>();
        foreach (var line in File.ReadLines(Path.Combine(outDir, "epochs.csv")).Skip(1))
        {
            var f = line.Split(',');
            int e = int.Parse(f[0], CultureInfo.InvariantCulture);
            list.Add(new EpochTimes("residual", e, D(f[7]), evalSeconds.GetValueOrDefault(e, double.NaN), D(f[4]), load));
        }
        return list;
    }

    private static List<EpochTimes> RunTorch(string python, string script, string data, string model, int size, int batch, int epochs,
        int workers, string outDir, double load)
    {
        var args = new List<string>
        {
            script, "--data", data, "--model", model, "--image-size", S(size), "--batch-size", S(batch), "--epochs", S(epochs),
            "--workers", S(workers), "--threads", S(Environment.ProcessorCount), "--out", outDir,
        };
        var r = PythonBaseline.RunProcess(python, args, 24 * 3_600_000);
        if (r.Error is not null || r.ExitCode != 0)
            throw new InvalidOperationException($"the PyTorch loop failed ({r.Error ?? $"exit {r.ExitCode}"}): {Last(r.StdErr)}");
        int start = r.StdOut.IndexOf('{', StringComparison.Ordinal);
        using var doc = JsonDocument.Parse(r.StdOut[start..]);
        return doc.RootElement.GetProperty("epochs").EnumerateArray().Select(e => new EpochTimes("pytorch", e.GetProperty("epoch").GetInt32(),
            e.GetProperty("seconds").GetDouble(), e.GetProperty("eval_seconds").GetDouble(), e.GetProperty("val_top1").GetDouble(), load)).ToList();
    }

    private static void Print(IEnumerable<EpochTimes> rows)
    {
        foreach (var r in rows)
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  {r.Engine} epoch {r.Epoch}: {r.Seconds:F1} s (evaluation {r.EvalSeconds:F1} s), val top-1 {100 * r.ValTop1:F1}%"));
    }

    /// <summary>Markdown: per epoch number, the median seconds of each engine and their ratio (PyTorch / ours).</summary>
    public static string Table(IReadOnlyList<EpochTimes> rows)
    {
        ArgumentNullException.ThrowIfNull(rows);
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.AppendLine("| epoch | runs | ours s (eval s) | PyTorch s (eval s) | ratio (PyTorch s / ours s) | ours val top-1 | PyTorch val top-1 |");
        sb.AppendLine("|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var g in rows.GroupBy(r => r.Epoch).OrderBy(g => g.Key))
        {
            var ours = g.Where(r => r.Engine == "residual").ToList();
            var torch = g.Where(r => r.Engine == "pytorch").ToList();
            string Cell(List<EpochTimes> l) => l.Count == 0 ? "n/a"
                : string.Create(inv, $"{Stats.Median(l.Select(r => r.Seconds)):F1} ({Stats.Median(l.Select(r => r.EvalSeconds)):F1})");
            string Top(List<EpochTimes> l) => l.Count == 0 ? "n/a" : string.Create(inv, $"{100 * Stats.Median(l.Select(r => r.ValTop1)):F1}%");
            string ratio = ours.Count == 0 || torch.Count == 0 ? "n/a"
                : string.Create(inv, $"{Stats.Median(torch.Select(r => r.Seconds)) / Stats.Median(ours.Select(r => r.Seconds)):F2}x");
            sb.AppendLine(inv, $"| {g.Key} | {ours.Count} + {torch.Count} | {Cell(ours)} | {Cell(torch)} | {ratio} | {Top(ours)} | {Top(torch)} |");
        }
        return sb.ToString();
    }

    private static string S(int v) => v.ToString(CultureInfo.InvariantCulture);
    private static double D(string s) => double.Parse(s, CultureInfo.InvariantCulture);
    private static string Last(string s) => string.Join(" | ", s.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).TakeLast(6));
}
