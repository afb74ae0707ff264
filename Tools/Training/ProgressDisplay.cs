// Live training progress. On a terminal: one line rewritten in place (epoch, step/steps, loss,
// top-1, lr, img/s, data wait, ETA). When stdout is redirected (a log file, CI): a plain line
// every `plainEverySteps` logged steps or `plainEverySeconds`, whichever comes first, so logs
// stay readable. After each epoch a table row, with the best epoch marked.
using System.Globalization;

namespace ResidualEngine.Training;

/// <summary>What the progress line shows; averages are over the steps since the previous report.</summary>
public sealed record ProgressInfo(int Epoch, int Epochs, int StepInEpoch, int StepsPerEpoch, double Loss, double Top1, double Lr,
    double ImagesPerSecond, double DataWaitMs, TimeSpan? Eta);

public sealed class ProgressDisplay
{
    private readonly TextWriter _out;
    private readonly bool _interactive;
    private readonly double _plainEverySeconds;
    private readonly int _plainEveryReports;
    private readonly Func<double> _clock;
    private readonly Func<int> _width;
    private double _lastPlain = double.NegativeInfinity;
    private int _reportsSincePlain;
    private int _lineLength;
    private bool _headerShown;

    public ProgressDisplay(TextWriter output, bool interactive, double plainEverySeconds = 30, int plainEveryReports = 10, Func<double>? clock = null, Func<int>? width = null)
    {
        ArgumentNullException.ThrowIfNull(output);
        _out = output;
        _interactive = interactive;
        _plainEverySeconds = plainEverySeconds;
        _plainEveryReports = Math.Max(1, plainEveryReports);
        var sw = System.Diagnostics.Stopwatch.StartNew();
        _clock = clock ?? (() => sw.Elapsed.TotalSeconds);
        _width = width ?? TerminalWidth;
    }

    /// <summary>A display for the process's stdout: interactive when it is a terminal.</summary>
    public static ProgressDisplay ForConsole() => new(Console.Out, !Console.IsOutputRedirected);

    /// <summary>
    /// Shows progress. <paramref name="fresh"/> says the loss and top-1 were just read; the live
    /// line shows every report, the plain log only fresh ones (subject to its interval).
    /// </summary>
    public void Report(ProgressInfo p, bool fresh = true)
    {
        ArgumentNullException.ThrowIfNull(p);
        var line = FormatLine(p);
        if (_interactive)
        {
            int width = _width();
            if (line.Length > width - 1) line = line[..(width - 1)];
            _out.Write("\r" + line + new string(' ', Math.Max(0, _lineLength - line.Length)));
            _lineLength = line.Length;
            _out.Flush();
            return;
        }
        if (!fresh) return;
        _reportsSincePlain++;
        double now = _clock();
        bool last = p.StepInEpoch == p.StepsPerEpoch;
        if (_reportsSincePlain >= _plainEveryReports || now - _lastPlain >= _plainEverySeconds || last)
        {
            _out.WriteLine(line);
            _out.Flush();
            _lastPlain = now;
            _reportsSincePlain = 0;
        }
    }

    public static string FormatLine(ProgressInfo p)
    {
        ArgumentNullException.ThrowIfNull(p);
        var c = CultureInfo.InvariantCulture;
        int w = p.StepsPerEpoch.ToString(c).Length;
        return string.Create(c,
            $"epoch {p.Epoch}/{p.Epochs}  step {p.StepInEpoch.ToString(c).PadLeft(w)}/{p.StepsPerEpoch}  loss {Maybe(p.Loss, "F4", 1, "")}  top-1 {Maybe(p.Top1, "F1", 100, "%")}  " +
            $"lr {p.Lr:G4}  {p.ImagesPerSecond:F1} img/s  data {p.DataWaitMs:F1} ms  ETA {FormatSpan(p.Eta)}");
    }

    private static string Maybe(double v, string format, double scale, string unit) =>
        double.IsNaN(v) ? "--" : (scale * v).ToString(format, CultureInfo.InvariantCulture) + unit;

    public static string FormatSpan(TimeSpan? t)
    {
        if (t is null || t.Value < TimeSpan.Zero || t.Value.TotalDays > 99) return "--:--";
        var v = t.Value;
        return v.TotalHours >= 1
            ? string.Create(CultureInfo.InvariantCulture, $"{(int)v.TotalHours}:{v.Minutes:D2}:{v.Seconds:D2}")
            : string.Create(CultureInfo.InvariantCulture, $"{v.Minutes:D2}:{v.Seconds:D2}");
    }

    /// <summary>Ends the live line (if any) so the next output starts on a fresh line.</summary>
    public void Break()
    {
        if (_interactive && _lineLength > 0)
        {
            _out.Write("\r" + new string(' ', _lineLength) + "\r");
            _out.Flush();
            _lineLength = 0;
        }
    }

    public const string TableHeader = "epoch  train loss  train top-1  val loss  val top-1  val top-5        lr     time";

    /// <summary>Prints the end-of-epoch row (and the header before the first one); the best epoch so far gets a star.</summary>
    public void EpochRow(EpochRow r, bool best)
    {
        ArgumentNullException.ThrowIfNull(r);
        Break();
        if (!_headerShown)
        {
            _out.WriteLine(TableHeader);
            _headerShown = true;
        }
        _out.WriteLine(FormatRow(r, best));
        _out.Flush();
    }

    public static string FormatRow(EpochRow r, bool best)
    {
        ArgumentNullException.ThrowIfNull(r);
        var c = CultureInfo.InvariantCulture;
        return string.Create(c,
            $"{r.Epoch,5}  {r.TrainLoss,10:F4}  {100 * r.TrainTop1,10:F2}%  {r.ValLoss,8:F4}  {100 * r.ValTop1,8:F2}%  {100 * r.ValTop5,8:F2}%  {r.Lr,8:G4}  {FormatSpan(TimeSpan.FromSeconds(r.Seconds)),7}") + (best ? "  *best" : "");
    }

    public void Line(string text)
    {
        Break();
        _out.WriteLine(text);
        _out.Flush();
    }

    private static int TerminalWidth()
    {
        try
        {
            int w = Console.WindowWidth;
            return w > 20 ? w : 120;
        }
        catch (IOException)
        {
            return 120;
        }
    }
}
