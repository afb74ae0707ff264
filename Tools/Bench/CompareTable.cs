// The side-by-side table of `residual bench compare`: one row per configuration (and per repeat),
// ours vs PyTorch in images per second and peak memory, as Markdown so it can go straight into
// docs/benchmarks.md. A missing PyTorch result shows as "n/a".
using System.Globalization;
using System.Text;

namespace ResidualEngine.Tools.Bench;

public sealed record CompareRow(string Config, BenchResult Ours, BenchResult? Torch)
{
    /// <summary>Ours / PyTorch in images per second (above 1 = we are faster), or null without a baseline.</summary>
    public double? Ratio => Torch is { ImagesPerSec: > 0 } t ? Ours.ImagesPerSec / t.ImagesPerSec : null;
}

public static class CompareTable
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static string Markdown(IReadOnlyList<CompareRow> rows)
    {
        ArgumentNullException.ThrowIfNull(rows);
        var sb = new StringBuilder();
        sb.AppendLine("| config | ours img/s | PyTorch img/s | ratio | ours peak MB | PyTorch peak MB |");
        sb.AppendLine("|---|---:|---:|---:|---:|---:|");
        foreach (var r in rows)
        {
            sb.AppendLine(Inv, $"| {r.Config} | {Rate(r.Ours)} | {(r.Torch is null ? "n/a" : Rate(r.Torch))} | " +
                $"{(r.Ratio is { } x ? x.ToString("F2", Inv) + "x" : "n/a")} | {Mb(r.Ours.PeakMemoryBytes)} | " +
                $"{(r.Torch is null ? "n/a" : Mb(r.Torch.PeakMemoryBytes))} |");
        }
        // With repeats of one configuration, the median ratio is the number to quote.
        foreach (var g in rows.GroupBy(r => r.Config).Where(g => g.Count() > 1))
        {
            var ratios = g.Select(r => r.Ratio).OfType<double>().ToList();
            var ours = Stats.Median(g.Select(r => r.Ours.ImagesPerSec));
            var torch = g.Where(r => r.Torch is not null).Select(r => r.Torch!.ImagesPerSec).ToList();
            sb.AppendLine(Inv, $"| **{g.Key}, median of {g.Count()}** | {Format(ours)} | {(torch.Count > 0 ? Format(Stats.Median(torch)) : "n/a")} | " +
                $"{(ratios.Count > 0 ? Stats.Median(ratios).ToString("F2", Inv) + "x" : "n/a")} | | |");
        }
        return sb.ToString();
    }

    /// <summary>Per configuration, the fastest single step of each engine over all runs and their ratio: on a
    /// shared, busy machine the medians swing with the load, the best steps much less.</summary>
    public static string BestSteps(IReadOnlyList<CompareRow> rows)
    {
        ArgumentNullException.ThrowIfNull(rows);
        var sb = new StringBuilder();
        foreach (var g in rows.GroupBy(r => r.Config))
        {
            double ours = g.Min(r => r.Ours.MsPerStep.Min);
            var torch = g.Where(r => r.Torch is not null).Select(r => r.Torch!.MsPerStep.Min).DefaultIfEmpty(double.NaN).Min();
            var theirs = double.IsNaN(torch) ? "n/a" : string.Create(Inv, $"{torch:F0} ms -> ratio {torch / ours:F2}x");
            sb.AppendLine(string.Create(Inv, $"best step, {g.Key}: ours {ours:F0} ms, PyTorch {theirs}"));
        }
        return sb.ToString();
    }

    private static string Rate(BenchResult r) =>
        string.Create(Inv, $"{Format(r.ImagesPerSec)} ({r.MsPerStep.Median:F0} ms, p10–p90 {r.MsPerStep.P10:F0}–{r.MsPerStep.P90:F0})");

    private static string Format(double imagesPerSec) => imagesPerSec.ToString(imagesPerSec >= 100 ? "F0" : "F1", Inv);

    public static string Mb(long bytes) => (bytes / (1024.0 * 1024.0)).ToString("F0", Inv);
}
