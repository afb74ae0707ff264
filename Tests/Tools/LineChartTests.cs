// LineChart: renders decodable PNGs of the requested size, draws the series (pixels of the
// series colours appear), survives awkward data (NaN, single points, log axes with zeros) and
// rejects bad arguments with a message naming the argument.
using NUnit.Framework;
using ResidualEngine.Training.Plotting;
using SkiaSharp;

namespace ResidualEngine.Tests.Tools;

public class LineChartTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp() => _dir = Directory.CreateTempSubdirectory("linechart-").FullName;

    [TearDown]
    public void TearDown()
    {
        // KEEP_CHARTS=DIR keeps the rendered images for a look by eye.
        if (Environment.GetEnvironmentVariable("KEEP_CHARTS") is { Length: > 0 } keep)
            foreach (var f in Directory.GetFiles(_dir)) File.Copy(f, Path.Combine(keep, Path.GetFileName(f)), true);
        Directory.Delete(_dir, recursive: true);
    }

    private static Series Curve(string name, Func<double, double> f, int n = 30) =>
        new(name, Enumerable.Range(0, n).Select(i => ((double)i, f(i))).ToList());

    [Test]
    public void TwoPanelsGiveAPngOfTheExpectedSizeWithTheSeriesDrawn()
    {
        var path = Path.Combine(_dir, "chart.png");
        var panels = new[]
        {
            new Panel("Loss", "epoch", "loss", [Curve("train", i => 2.3 * Math.Exp(-i / 10.0)), Curve("val", i => 2.4 * Math.Exp(-i / 12.0))], LogY: true),
            new Panel("Error", "epoch", "error (%)", [Curve("top-1", i => 90 - 2 * i)]),
        };
        LineChart.Save(path, panels, panelWidth: 500, height: 300);

        Assert.That(new FileInfo(path).Length, Is.GreaterThan(1000));
        using var bmp = SKBitmap.Decode(path);
        Assert.That(bmp, Is.Not.Null, "the file decodes as an image");
        Assert.That((bmp.Width, bmp.Height), Is.EqualTo((1000, 300)));
        // The first palette colour (blue, used for each panel's first series) must appear in both halves.
        int blueLeft = 0, blueRight = 0, dark = 0;
        for (int y = 0; y < bmp.Height; y++)
            for (int x = 0; x < bmp.Width; x++)
            {
                var c = bmp.GetPixel(x, y);
                if (c.Blue > 150 && c.Red < 80 && c.Green > 90 && c.Green < 150) { if (x < 500) blueLeft++; else blueRight++; }
                if (c.Red < 80 && c.Green < 80 && c.Blue < 80) dark++;
            }
        Assert.That(blueLeft, Is.GreaterThan(50), "first series drawn in the left panel");
        Assert.That(blueRight, Is.GreaterThan(50), "first series drawn in the right panel");
        Assert.That(dark, Is.GreaterThan(500), "frame, ticks and text drawn");
        Assert.That(Directory.GetFiles(_dir), Has.Length.EqualTo(1), "no temp file left behind");
    }

    [Test]
    public void AwkwardDataStillRenders()
    {
        var path = Path.Combine(_dir, "odd.png");
        var panels = new[]
        {
            new Panel("one point", "x", "y", [new Series("p", [(1.0, 5.0)])]),
            new Panel("gaps", "x", "y", [new Series("nan", [(0, 1), (1, double.NaN), (2, 3), (3, double.PositiveInfinity)])], LogY: true),
            new Panel("empty", "x", "y", []),
            new Panel("flat log with zero", "x", "y", [new Series("z", [(0, 0), (1, 2), (2, 2)])], LogY: true),
            new Panel("narrow log", "x", "y", [Curve("l", i => 1.1 + i / 15.0)], LogY: true),
        };
        LineChart.Save(path, panels, 300, 200);
        using var bmp = SKBitmap.Decode(path);
        Assert.That((bmp.Width, bmp.Height), Is.EqualTo((1500, 200)));
    }

    [Test]
    public void BadArgumentsAreRejected()
    {
        var p = Path.Combine(_dir, "x.png");
        var ok = new Panel("t", "x", "y", [Curve("a", i => i)]);
        Assert.That(() => LineChart.Save(p, []), Throws.ArgumentException.With.Message.Contains("panel"));
        Assert.That(() => LineChart.Save(p, [ok], panelWidth: 10), Throws.ArgumentException.With.Message.Contains("panelWidth"));
        Assert.That(() => LineChart.Save(p, [ok], height: 0), Throws.ArgumentException.With.Message.Contains("height"));
        Assert.That(File.Exists(p), Is.False);
    }
}
