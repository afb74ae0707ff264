// Run-directory files and the progress display: metrics rows round-trip and are cut back to a
// checkpoint's step on resume, epochs.csv has one row per epoch, plots are written, and the
// progress output is one rewritten line on a terminal but plain lines when redirected.
using NUnit.Framework;
using ResidualEngine.Training;

namespace ResidualEngine.Tests.Tools;

public class RunFilesTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp() => _dir = Directory.CreateTempSubdirectory("runfiles-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    [Test]
    public void MetricsRoundTripAndTruncateToACheckpoint()
    {
        var f = new RunFiles(_dir);
        for (int s = 1; s <= 6; s++) f.AppendStep(new StepRow(1 + (s - 1) / 3, s * 10, 2.0 / s, 0.1 * s, 0.1, 100 + s, 1.5));
        f.AppendStep(new StepRow(3, 70, double.NaN, 0, 0.1, 0, 0));
        File.AppendAllText(f.MetricsPath, "{\"epoch\": 3, \"st"); // a line torn by a crash
        var rows = f.ReadSteps();
        Assert.That(rows, Has.Count.EqualTo(7));
        Assert.That(rows[2].Loss, Is.EqualTo(2.0 / 3), "exact");
        Assert.That(double.IsNaN(rows[6].Loss), Is.True, "NaN survives as a string");
        f.TruncateSteps(30);
        Assert.That(f.ReadSteps().Select(r => r.Step), Is.EqualTo(new long[] { 10, 20, 30 }));
    }

    [Test]
    public void EpochsCsvAndPlotsAreWritten()
    {
        var f = new RunFiles(_dir);
        var hist = new List<EpochRow>
        {
            new(1, 2.1, 0.2, 2.0, 0.25, 0.7, 0.1, 12.5),
            new(2, 1.5, 0.45, 1.6, 0.4, 0.85, 0.05, 12.0),
        };
        f.WriteEpochs(hist);
        var lines = File.ReadAllLines(f.EpochsPath);
        Assert.That(lines[0], Is.EqualTo(RunFiles.EpochsHeader));
        Assert.That(lines, Has.Length.EqualTo(3));
        Assert.That(lines[2], Does.StartWith("2,1.5,0.45,1.6,0.4,0.85,0.05,"));
        f.WritePlots(hist, [new StepRow(1, 5, 2.2, 0.1, 0.1, 10, 1), new StepRow(2, 15, 1.4, 0.5, 0.1, 10, 1)], 10);
        Assert.That(new FileInfo(f.LossPlotPath).Length, Is.GreaterThan(1000));
        Assert.That(new FileInfo(f.ErrorPlotPath).Length, Is.GreaterThan(1000));
    }

    [Test]
    public void ProgressIsOneLineOnATerminalAndPlainLinesWhenRedirected()
    {
        var p = new ProgressInfo(1, 3, 5, 50, 1.2345, 0.5, 0.1, 321.0, 2.5, TimeSpan.FromSeconds(75));
        var term = new StringWriter();
        var live = new ProgressDisplay(term, interactive: true, width: () => 200);
        live.Report(p);
        live.Report(p with { StepInEpoch = 6 });
        Assert.That(term.ToString(), Does.Not.Contain("\n"), "no new lines while the step line updates");
        Assert.That(term.ToString().Split('\r'), Has.Length.EqualTo(3));
        Assert.That(term.ToString(), Does.Contain("step  6/50").And.Contain("ETA 01:15").And.Contain("img/s"));

        double now = 0;
        var log = new StringWriter();
        var plain = new ProgressDisplay(log, interactive: false, plainEverySeconds: 30, plainEveryReports: 3, clock: () => now);
        for (int i = 1; i <= 7; i++) { now += 1; plain.Report(p with { StepInEpoch = i }); }
        var lines = log.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(lines, Has.Length.EqualTo(3), "the first report, then every third");
        Assert.That(log.ToString(), Does.Not.Contain("\r"));
        now += 60;
        plain.Report(p with { StepInEpoch = 8 });
        Assert.That(log.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries), Has.Length.EqualTo(4), "after a quiet minute");

        plain.EpochRow(new EpochRow(1, 1.5, 0.4, 1.4, 0.45, 0.9, 0.1, 61), best: true);
        Assert.That(log.ToString(), Does.Contain(ProgressDisplay.TableHeader).And.Contain("*best").And.Contain("45.00%"));
    }
}
