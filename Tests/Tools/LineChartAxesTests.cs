// LineChart's options for comparison figures: panels with fixed ranges share their axes (the same
// tick labels, whatever the data), a series can choose its palette colour (a train/test pair in
// one colour), dashed series leave gaps a solid one does not, and a band shades the area between
// its low and high curves.
using NUnit.Framework;
using ResidualEngine.Training.Plotting;
using SkiaSharp;

namespace ResidualEngine.Tests.Tools;

public class LineChartAxesTests
{
    private static Series Line(string name, double y0, double y1, bool dashed = false, int color = -1,
        IReadOnlyList<(double, double, double)>? band = null) =>
        new(name, [(0, y0), (100, y1)], dashed, color, band);

    private static SKBitmap Render(params Panel[] panels) => SKBitmap.Decode(LineChart.Render(panels, 400, 300));

    private static int Count(SKBitmap b, int x0, int x1, Func<SKColor, bool> f)
    {
        int n = 0;
        for (int y = 0; y < b.Height; y++)
            for (int x = x0; x < x1; x++)
                if (f(b.GetPixel(x, y))) n++;
        return n;
    }

    [Test]
    public void FixedRangesGiveTwoPanelsTheSameAxes()
    {
        // Very different data, the same fixed axes: the left margins (tick labels) and bottom margins are identical.
        using var b = Render(
            new Panel("a", "iteration", "error", [Line("x", 90, 10)], XMin: 0, XMax: 100, YMin: 0, YMax: 100),
            new Panel("b", "iteration", "error", [Line("y", 30, 25)], XMin: 0, XMax: 100, YMin: 0, YMax: 100));
        for (int y = 0; y < 300; y++)
            for (int x = 0; x < 64; x++)
                Assert.That(b.GetPixel(400 + x, y), Is.EqualTo(b.GetPixel(x, y)), $"left margin pixel ({x}, {y})");
        // Without fixed ranges the second panel's axis would follow its own data (25..30) and differ.
        using var free = Render(new Panel("a", "i", "e", [Line("x", 90, 10)]), new Panel("b", "i", "e", [Line("y", 30, 25)]));
        bool differs = false;
        for (int y = 0; y < 300 && !differs; y++)
            for (int x = 0; x < 64 && !differs; x++)
                differs = free.GetPixel(400 + x, y) != free.GetPixel(x, y);
        Assert.That(differs, Is.True);
    }

    [Test]
    public void ColoursDashesAndBands()
    {
        static bool Blue(SKColor c) => c.Blue > 150 && c.Red < 80 && c.Green > 90 && c.Green < 150;
        static bool Red(SKColor c) => c.Red > 180 && c.Green < 80 && c.Blue < 80;
        // Colour 1 (red) chosen for both series; colour 0 (blue) is then unused.
        using var pair = Render(new Panel("p", "i", "e", [Line("train", 80, 20, dashed: true, color: 1), Line("test", 70, 30, color: 1)], YMin: 0, YMax: 100));
        Assert.That(Count(pair, 0, 400, Red), Is.GreaterThan(100));
        Assert.That(Count(pair, 72, 380, Blue), Is.Zero);
        // A dashed line has fewer coloured pixels than the same solid line.
        using var solid = Render(new Panel("p", "i", "e", [Line("s", 80, 20)], YMin: 0, YMax: 100));
        using var dashed = Render(new Panel("p", "i", "e", [Line("s", 80, 20, dashed: true)], YMin: 0, YMax: 100));
        Assert.That(Count(dashed, 72, 380, Blue), Is.LessThan(Count(solid, 72, 380, Blue) * 0.9));
        // A band from 10 to 90 tints the plot area (a light version of the series colour).
        using var band = Render(new Panel("p", "i", "e", [Line("s", 50, 50, band: [(0, 10, 90), (100, 10, 90)])], YMin: 0, YMax: 100));
        static bool Tint(SKColor c) => c.Blue > c.Red + 20 && c.Red > 150;
        Assert.That(Count(band, 72, 380, Tint), Is.GreaterThan(Count(solid, 72, 380, Tint) + 10000));
    }
}
