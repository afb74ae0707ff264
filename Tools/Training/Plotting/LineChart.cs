// PNG line charts for training curves and experiments (SkiaSharp). Each panel gets a frame,
// "nice" ticks (1-2-5 steps; decades on a log axis), grid lines, axis labels, a title and a
// legend; panels are drawn side by side into one image (optionally on fixed, shared axis ranges,
// so that two panels compare at a glance). A series may be dashed, pick its palette colour (a
// train/test pair in one colour), and carry a band (e.g. the min..max over seeds) drawn as a
// translucent area under it; which is written atomically so a
// viewer refreshing the file never sees half a PNG. Text is drawn with SKFont from a system
// TrueType font when one is found (the NoDependencies Skia build has no fontconfig).
using System.Globalization;
using ResidualEngine.Training;
using SkiaSharp;

namespace ResidualEngine.Training.Plotting;

/// <summary>A line: its points; dashed or solid; a palette colour index (-1: the next one); an optional band of (x, low, high).</summary>
public sealed record Series(string Name, IReadOnlyList<(double X, double Y)> Points, bool Dashed = false, int Color = -1,
    IReadOnlyList<(double X, double Lo, double Hi)>? Band = null);

/// <summary>One panel of a figure: a title, axis labels, series, an optional log-scale y axis, and optional fixed axis ranges.</summary>
public sealed record Panel(string Title, string XLabel, string YLabel, IReadOnlyList<Series> Series, bool LogY = false,
    double? XMin = null, double? XMax = null, double? YMin = null, double? YMax = null, bool LegendBottomLeft = false);

public static class LineChart
{
    private static readonly SKColor[] s_palette =
    [
        new(0x1f, 0x77, 0xb4), new(0xd6, 0x27, 0x28), new(0x2c, 0xa0, 0x2c), new(0xff, 0x7f, 0x0e),
        new(0x94, 0x67, 0xbd), new(0x8c, 0x56, 0x4b), new(0xe3, 0x77, 0xc2), new(0x7f, 0x7f, 0x7f),
        new(0xbc, 0xbd, 0x22), new(0x17, 0xbe, 0xcf),
    ];

    private static readonly Lazy<SKTypeface> s_typeface = new(LoadTypeface);

    /// <summary>Draws the panels side by side into one PNG (written atomically).</summary>
    public static void Save(string path, IReadOnlyList<Panel> panels, int panelWidth = 640, int height = 440)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(panels);
        if (panels.Count == 0) throw new ArgumentException("LineChart.Save: at least one panel is needed", nameof(panels));
        if (panelWidth < 200 || panelWidth > 8192) throw new ArgumentException($"LineChart.Save: panelWidth must be in [200, 8192], got {panelWidth}", nameof(panelWidth));
        if (height < 150 || height > 8192) throw new ArgumentException($"LineChart.Save: height must be in [150, 8192], got {height}", nameof(height));
        for (int i = 0; i < panels.Count; i++)
            if (panels[i] is null || panels[i].Series is null) throw new ArgumentException($"LineChart.Save: panel {i} (or its series list) is null", nameof(panels));

        var png = Render(panels, panelWidth, height);
        AtomicFile.WriteAllBytes(path, png);
    }

    /// <summary>Renders the figure and returns the PNG bytes.</summary>
    public static byte[] Render(IReadOnlyList<Panel> panels, int panelWidth = 640, int height = 440)
    {
        ArgumentNullException.ThrowIfNull(panels);
        var info = new SKImageInfo(panelWidth * panels.Count, height, SKColorType.Rgba8888, SKAlphaType.Premul);
        using var surface = SKSurface.Create(info) ?? throw new InvalidOperationException($"LineChart: cannot create a {info.Width}x{info.Height} surface");
        var canvas = surface.Canvas;
        canvas.Clear(SKColors.White);
        for (int i = 0; i < panels.Count; i++)
        {
            canvas.Save();
            canvas.Translate(i * panelWidth, 0);
            DrawPanel(canvas, panels[i], panelWidth, height);
            canvas.Restore();
        }
        using var image = surface.Snapshot();
        using var data = image.Encode(SKEncodedImageFormat.Png, 100);
        return data.ToArray();
    }

    private static void DrawPanel(SKCanvas canvas, Panel panel, int width, int height)
    {
        using var font = new SKFont(s_typeface.Value, 12);
        using var titleFont = new SKFont(s_typeface.Value, 15) { Embolden = true };
        using var text = new SKPaint { Color = new SKColor(0x20, 0x20, 0x20), IsAntialias = true };
        using var frame = new SKPaint { Color = new SKColor(0x40, 0x40, 0x40), Style = SKPaintStyle.Stroke, StrokeWidth = 1, IsAntialias = false };
        using var grid = new SKPaint { Color = new SKColor(0xe4, 0xe4, 0xe4), Style = SKPaintStyle.Stroke, StrokeWidth = 1 };

        const float left = 72, right = 18, top = 34, bottom = 48;
        var plot = new SKRect(left, top, width - right, height - bottom);
        canvas.DrawText(panel.Title ?? "", width / 2f, 22, SKTextAlign.Center, titleFont, text);
        canvas.DrawText(panel.XLabel ?? "", plot.MidX, height - 10, SKTextAlign.Center, font, text);
        canvas.Save();
        canvas.RotateDegrees(-90, 16, plot.MidY);
        canvas.DrawText(panel.YLabel ?? "", 16, plot.MidY + 4, SKTextAlign.Center, font, text);
        canvas.Restore();

        var pts = panel.Series.Where(s => s is not null).SelectMany(s => s.Points ?? [])
            .Where(p => double.IsFinite(p.X) && double.IsFinite(p.Y) && (!panel.LogY || p.Y > 0)).ToList();
        if (pts.Count == 0)
        {
            canvas.DrawRect(plot, frame);
            canvas.DrawText("no data", plot.MidX, plot.MidY, SKTextAlign.Center, font, text);
            return;
        }

        var xAxis = Axis.Linear(panel.XMin ?? pts.Min(p => p.X), panel.XMax ?? pts.Max(p => p.X), pad: false);
        bool fixedY = panel.YMin is not null && panel.YMax is not null;
        double yLo = panel.YMin ?? pts.Min(p => p.Y), yHi = panel.YMax ?? pts.Max(p => p.Y);
        var yAxis = panel.LogY ? Axis.Log(yLo, yHi) : Axis.Linear(yLo, yHi, pad: !fixedY);
        float Px(double x) => (float)(plot.Left + (xAxis.Map(x) - xAxis.Lo) / (xAxis.Hi - xAxis.Lo) * plot.Width);
        float Py(double y) => (float)(plot.Bottom - (yAxis.Map(y) - yAxis.Lo) / (yAxis.Hi - yAxis.Lo) * plot.Height);

        foreach (var t in xAxis.Ticks)
        {
            float x = Px(t);
            canvas.DrawLine(x, plot.Top, x, plot.Bottom, grid);
            canvas.DrawLine(x, plot.Bottom, x, plot.Bottom + 5, frame);
            canvas.DrawText(Format(t, xAxis.Step), x, plot.Bottom + 19, SKTextAlign.Center, font, text);
        }
        foreach (var t in yAxis.Ticks)
        {
            float y = Py(t);
            canvas.DrawLine(plot.Left, y, plot.Right, y, grid);
            canvas.DrawLine(plot.Left - 5, y, plot.Left, y, frame);
            canvas.DrawText(Format(t, panel.LogY && yAxis.Step == 1 ? t : yAxis.Step), plot.Left - 8, y + 4, SKTextAlign.Right, font, text);
        }
        canvas.DrawRect(plot, frame);

        canvas.Save();
        canvas.ClipRect(new SKRect(plot.Left - 4, plot.Top - 4, plot.Right + 4, plot.Bottom + 4));
        int colour = 0;
        var legend = new List<(string Name, SKColor Color, bool Dashed)>();
        foreach (var s in panel.Series)
        {
            if (s is null) continue;
            var c = s_palette[(s.Color >= 0 ? s.Color : colour++) % s_palette.Length];
            legend.Add((s.Name ?? "", c, s.Dashed));
            if (s.Band is { Count: > 1 } band) DrawBand(canvas, band, c, panel.LogY, Px, Py);
            DrawSeries(canvas, s, c, panel.LogY, Px, Py);
        }
        canvas.Restore();
        DrawLegend(canvas, legend, plot, font, text, panel.LegendBottomLeft);
    }

    private static void DrawSeries(SKCanvas canvas, Series s, SKColor c, bool logY, Func<double, float> px, Func<double, float> py)
    {
        using var dashes = s.Dashed ? SKPathEffect.CreateDash([7, 5], 0) : null;
        using var line = new SKPaint { Color = c, Style = SKPaintStyle.Stroke, StrokeWidth = s.Dashed ? 1.5f : 2, IsAntialias = true, StrokeJoin = SKStrokeJoin.Round, PathEffect = dashes };
        using var dot = new SKPaint { Color = c, Style = SKPaintStyle.Fill, IsAntialias = true };
        var points = s.Points ?? [];
        using var builder = new SKPathBuilder();
        bool open = false;
        int drawn = 0;
        foreach (var (x, y) in points)
        {
            // A non-finite value (or a non-positive one on a log axis) breaks the line.
            if (!double.IsFinite(x) || !double.IsFinite(y) || (logY && y <= 0)) { open = false; continue; }
            if (open) builder.LineTo(px(x), py(y)); else builder.MoveTo(px(x), py(y));
            open = true;
            drawn++;
        }
        using (var path = builder.Detach()) canvas.DrawPath(path, line);
        if (drawn <= 40)
            foreach (var (x, y) in points)
                if (double.IsFinite(x) && double.IsFinite(y) && (!logY || y > 0))
                    canvas.DrawCircle(px(x), py(y), 3, dot);
    }

    private static void DrawBand(SKCanvas canvas, IReadOnlyList<(double X, double Lo, double Hi)> band, SKColor c, bool logY,
        Func<double, float> px, Func<double, float> py)
    {
        var ok = band.Where(b => double.IsFinite(b.X) && double.IsFinite(b.Lo) && double.IsFinite(b.Hi) && (!logY || b.Lo > 0)).ToList();
        if (ok.Count < 2) return;
        using var builder = new SKPathBuilder();
        builder.MoveTo(px(ok[0].X), py(ok[0].Hi));
        foreach (var b in ok.Skip(1)) builder.LineTo(px(b.X), py(b.Hi));
        for (int i = ok.Count - 1; i >= 0; i--) builder.LineTo(px(ok[i].X), py(ok[i].Lo));
        builder.Close();
        using var fill = new SKPaint { Color = c.WithAlpha(0x30), Style = SKPaintStyle.Fill, IsAntialias = true };
        using var path = builder.Detach();
        canvas.DrawPath(path, fill);
    }

    private static void DrawLegend(SKCanvas canvas, List<(string Name, SKColor Color, bool Dashed)> items, SKRect plot, SKFont font, SKPaint text,
        bool bottomLeft)
    {
        if (items.Count == 0) return;
        float w = items.Max(i => font.MeasureText(i.Name)) + 36, h = items.Count * 18 + 8;
        var box = bottomLeft
            ? new SKRect(plot.Left + 8, plot.Bottom - 8 - h, plot.Left + 8 + w, plot.Bottom - 8)
            : new SKRect(plot.Right - w - 8, plot.Top + 8, plot.Right - 8, plot.Top + 8 + h);
        using var bg = new SKPaint { Color = new SKColor(0xff, 0xff, 0xff, 0xe0), Style = SKPaintStyle.Fill };
        using var border = new SKPaint { Color = new SKColor(0xb0, 0xb0, 0xb0), Style = SKPaintStyle.Stroke, StrokeWidth = 1 };
        canvas.DrawRect(box, bg);
        canvas.DrawRect(box, border);
        for (int i = 0; i < items.Count; i++)
        {
            float y = box.Top + 4 + 18 * i + 9;
            using var dashes = items[i].Dashed ? SKPathEffect.CreateDash([5, 3], 0) : null;
            using var swatch = new SKPaint { Color = items[i].Color, StrokeWidth = items[i].Dashed ? 2 : 3, Style = SKPaintStyle.Stroke, IsAntialias = true, PathEffect = dashes };
            canvas.DrawLine(box.Left + 6, y, box.Left + 26, y, swatch);
            canvas.DrawText(items[i].Name, box.Left + 30, y + 4, SKTextAlign.Left, font, text);
        }
    }

    private static string Format(double v, double step)
    {
        if (v == 0) return "0";
        double a = Math.Abs(v);
        if (a >= 1e5 || a < 1e-3) return v.ToString("0.##E+0", CultureInfo.InvariantCulture);
        int decimals = step >= 1 ? 0 : Math.Clamp((int)Math.Ceiling(-Math.Log10(step) - 1e-9), 0, 6);
        return v.ToString("F" + decimals, CultureInfo.InvariantCulture);
    }

    private static SKTypeface LoadTypeface()
    {
        string[] candidates =
        [
            "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
            "/usr/share/fonts/TTF/DejaVuSans.ttf",
            "/usr/share/fonts/dejavu/DejaVuSans.ttf",
            "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
            "/usr/share/fonts/truetype/freefont/FreeSans.ttf",
            "/System/Library/Fonts/Supplemental/Arial.ttf",
            Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.Windows), "Fonts", "arial.ttf"),
        ];
        foreach (var f in candidates)
        {
            if (!File.Exists(f)) continue;
            var tf = SKTypeface.FromFile(f);
            if (tf is not null) return tf;
        }
        return SKTypeface.FromFamilyName("DejaVu Sans") ?? SKTypeface.Default;
    }

    /// <summary>An axis range in plot coordinates (log10 for log axes) with its tick values.</summary>
    private sealed record Axis(double Lo, double Hi, double Step, IReadOnlyList<double> Ticks, bool IsLog)
    {
        public double Map(double v) => IsLog ? Math.Log10(v) : v;

        public static Axis Linear(double min, double max, bool pad)
        {
            if (max - min < 1e-12 * Math.Max(1, Math.Abs(max)))
            {
                double d = Math.Abs(min) > 0 ? Math.Abs(min) * 0.1 : 1;
                min -= d; max += d;
            }
            else if (pad)
            {
                double d = (max - min) * 0.05;
                min -= d; max += d;
            }
            double step = NiceStep((max - min) / 5);
            var ticks = new List<double>();
            for (double t = Math.Ceiling(min / step - 1e-9) * step; t <= max + step * 1e-9; t += step)
                ticks.Add(Math.Abs(t) < step * 1e-9 ? 0 : t);
            return new Axis(min, max, step, ticks, false);
        }

        public static Axis Log(double min, double max)
        {
            double lo = Math.Log10(min), hi = Math.Log10(max);
            if (hi - lo < 1e-9) { lo -= 0.5; hi += 0.5; }
            else { double d = (hi - lo) * 0.05; lo -= d; hi += d; }
            int first = (int)Math.Floor(lo), last = (int)Math.Ceiling(hi);
            // Many decades: only the decades; a few: 1, 2 and 5 of each; under one: every digit.
            var ticks = LogTicks(lo, hi, first, last, last - first > 2 ? [1] : [1, 2, 5]);
            if (ticks.Count < 3) ticks = LogTicks(lo, hi, first, last, [1, 2, 3, 4, 5, 6, 7, 8, 9]);
            if (ticks.Count < 3)
            {
                // Well under a decade: evenly spaced values read better than sparse digits.
                var lin = Linear(Math.Pow(10, lo), Math.Pow(10, hi), pad: false);
                ticks = lin.Ticks.Where(t => t > 0 && Math.Log10(t) >= lo - 1e-9 && Math.Log10(t) <= hi + 1e-9).ToList();
                return new Axis(lo, hi, lin.Step, ticks, true);
            }
            return new Axis(lo, hi, 1, ticks, true);
        }

        private static List<double> LogTicks(double lo, double hi, int first, int last, double[] mult)
        {
            var ticks = new List<double>();
            for (int e = first; e <= last; e++)
                foreach (var m in mult)
                {
                    double v = m * Math.Pow(10, e), l = Math.Log10(v);
                    if (l >= lo - 1e-9 && l <= hi + 1e-9) ticks.Add(v);
                }
            return ticks;
        }

        private static double NiceStep(double raw)
        {
            double e = Math.Pow(10, Math.Floor(Math.Log10(raw)));
            double f = raw / e;
            // Nearest of 1, 2, 5, 10 (geometrically), giving 3 to 8 ticks across the range.
            return (f < 1.5 ? 1 : f < 3.2 ? 2 : f < 7 ? 5 : 10) * e;
        }
    }
}
