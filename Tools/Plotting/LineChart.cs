// PNG line charts for training curves and experiments (SkiaSharp). STUB: API fixed.
namespace ResidualEngine.Tools.Plotting;

public sealed record Series(string Name, IReadOnlyList<(double X, double Y)> Points);

/// <summary>One panel of a figure: a title, axis labels, series, and an optional log-scale y axis.</summary>
public sealed record Panel(string Title, string XLabel, string YLabel, IReadOnlyList<Series> Series, bool LogY = false);

public static class LineChart
{
    /// <summary>Draws the panels side by side into one PNG (written atomically).</summary>
    public static void Save(string path, IReadOnlyList<Panel> panels, int panelWidth = 640, int height = 440) => throw new NotImplementedException();
}
