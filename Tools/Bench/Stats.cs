// Summary statistics of step times. Percentiles interpolate linearly between the two nearest
// ranks (numpy's default, and what Tools/bench/pytorch_baseline.py computes), so ours and
// PyTorch's columns in `residual bench compare` mean the same thing.
namespace ResidualEngine.Tools.Bench;

/// <summary>Median and spread of a set of samples (milliseconds per step in the benchmarks).</summary>
public sealed record Summary(double Median, double Min, double P10, double P90, double Max, double Mean)
{
    /// <summary>Summarises a non-empty set of finite samples.</summary>
    public static Summary Of(IReadOnlyCollection<double> samples)
    {
        ArgumentNullException.ThrowIfNull(samples);
        if (samples.Count == 0) throw new ArgumentException("cannot summarise an empty set of samples", nameof(samples));
        if (samples.Any(s => !double.IsFinite(s))) throw new ArgumentException("samples must be finite numbers", nameof(samples));
        var sorted = samples.Order().ToArray();
        return new Summary(
            Stats.Percentile(sorted, 50), sorted[0], Stats.Percentile(sorted, 10),
            Stats.Percentile(sorted, 90), sorted[^1], sorted.Average());
    }
}

public static class Stats
{
    /// <summary>The p-th percentile (0..100) of ascending-sorted values, interpolating linearly between ranks.</summary>
    public static double Percentile(IReadOnlyList<double> sorted, double p)
    {
        ArgumentNullException.ThrowIfNull(sorted);
        if (sorted.Count == 0) throw new ArgumentException("percentile of no values", nameof(sorted));
        if (!(p >= 0 && p <= 100)) throw new ArgumentOutOfRangeException(nameof(p), p, "percentile must be between 0 and 100");
        double rank = p / 100.0 * (sorted.Count - 1);
        int lo = (int)Math.Floor(rank);
        int hi = Math.Min(lo + 1, sorted.Count - 1);
        return sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo);
    }

    /// <summary>The median of unsorted values.</summary>
    public static double Median(IEnumerable<double> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        return Percentile(values.Order().ToArray(), 50);
    }
}
