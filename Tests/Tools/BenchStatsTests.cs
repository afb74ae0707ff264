// Statistics of the benchmarks on inputs whose answers are known by hand (numpy's linear
// interpolation between ranks), and the Markdown compare table.
using NUnit.Framework;
using ResidualEngine.Tools.Bench;

namespace ResidualEngine.Tests.Tools;

public class BenchStatsTests
{
    [Test]
    public void PercentilesInterpolateBetweenRanks()
    {
        double[] sorted = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
        Assert.That(Stats.Percentile(sorted, 50), Is.EqualTo(5.5).Within(1e-12));
        // rank 0.1 * 9 = 0.9 -> 1 + 0.9 * (2 - 1)
        Assert.That(Stats.Percentile(sorted, 10), Is.EqualTo(1.9).Within(1e-12));
        // rank 0.9 * 9 = 8.1 -> 9 + 0.1 * (10 - 9)
        Assert.That(Stats.Percentile(sorted, 90), Is.EqualTo(9.1).Within(1e-12));
        Assert.That(Stats.Percentile(sorted, 0), Is.EqualTo(1));
        Assert.That(Stats.Percentile(sorted, 100), Is.EqualTo(10));
    }

    [Test]
    public void SummaryOfUnsortedSamples()
    {
        var s = Summary.Of([30.0, 10.0, 20.0, 50.0, 40.0]);
        Assert.That(s.Median, Is.EqualTo(30));
        Assert.That(s.Min, Is.EqualTo(10));
        Assert.That(s.Max, Is.EqualTo(50));
        Assert.That(s.Mean, Is.EqualTo(30));
        Assert.That(s.P10, Is.EqualTo(14).Within(1e-12));  // rank 0.4 between 10 and 20
        Assert.That(s.P90, Is.EqualTo(46).Within(1e-12));  // rank 3.6 between 40 and 50
    }

    [Test]
    public void MedianOfEvenAndSingleSets()
    {
        Assert.That(Stats.Median([4.0, 1.0, 3.0, 2.0]), Is.EqualTo(2.5));
        var one = Summary.Of([7.0]);
        Assert.That((one.Median, one.Min, one.P10, one.P90, one.Max), Is.EqualTo((7.0, 7.0, 7.0, 7.0, 7.0)));
    }

    [Test]
    public void BadSamplesAreRejected()
    {
        Assert.Throws<ArgumentException>(() => Summary.Of(Array.Empty<double>()));
        Assert.Throws<ArgumentException>(() => Summary.Of([1.0, double.NaN]));
        Assert.Throws<ArgumentOutOfRangeException>(() => Stats.Percentile([1.0], 101));
    }

    private static BenchResult Result(double imagesPerSec, long peak) => new()
    {
        Model = "resnet18", BatchSize = 16, ImagesPerSec = imagesPerSec, PeakMemoryBytes = peak,
        MsPerStep = new StepTimes(16000 / imagesPerSec, 1, 2, 3, 4, 5),
    };

    [Test]
    public void CompareTableShowsRatioAndMissingBaseline()
    {
        var rows = new List<CompareRow>
        {
            new("cfg A", Result(5, 100L << 20), Result(10, 200L << 20)),
            new("cfg B", Result(5, 100L << 20), null),
        };
        Assert.That(rows[0].Ratio, Is.EqualTo(0.5).Within(1e-12));
        Assert.That(rows[1].Ratio, Is.Null);
        var md = CompareTable.Markdown(rows);
        var lines = md.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(lines, Has.Length.EqualTo(4));
        Assert.That(lines[2], Does.StartWith("| cfg A |").And.Contain("| 0.50x |").And.Contain("| 100 | 200 |"));
        Assert.That(lines[3], Does.Contain("n/a"));
    }

    [Test]
    public void RepeatedConfigsGetAMedianRow()
    {
        var rows = new List<CompareRow>
        {
            new("cfg", Result(4, 1), Result(10, 1)),
            new("cfg", Result(6, 1), Result(10, 1)),
            new("cfg", Result(9, 1), Result(10, 1)),
        };
        var md = CompareTable.Markdown(rows);
        Assert.That(md, Does.Contain("median of 3").And.Contain("| 0.60x |"));
        // Result() makes step times 1..5 ms whatever the rate, so the best steps tie.
        Assert.That(CompareTable.BestSteps(rows), Does.Contain("ours 1 ms, PyTorch 1 ms -> ratio 1.00x"));
    }
}
