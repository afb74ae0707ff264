// Collects the time of every backend call during profiled steps, by phase of the step (forward,
// backward, optimizer) and op name, plus a per-shape breakdown of the convolutions (where the time
// goes in a ResNet). Installs a ProfilingBackend through BackendRegistry.Interceptor while alive;
// tensors created while it is installed (the model, the inputs, every intermediate) are timed.
using System.Diagnostics;
using System.Globalization;
using System.Text;
using ResidualEngine.Backends;

namespace ResidualEngine.Tools.Bench;

public sealed class OpProfiler : IDisposable
{
    public const string Forward = "forward", Backward = "backward", Optimizer = "optimizer", Setup = "setup";
    private static readonly string[] PhaseOrder = [Forward, Backward, Optimizer];

    private readonly object _lock = new();
    private readonly Dictionary<(string Phase, string Op), (long Calls, long Ticks)> _ops = new();
    private readonly Dictionary<string, (long Calls, long Ticks)> _details = new(StringComparer.Ordinal);
    private readonly Dictionary<IBackend, ProfilingBackend> _wrappers = new(ReferenceEqualityComparer.Instance);
    private readonly Func<IBackend, IBackend>? _previous;
    private bool _disposed;

    /// <summary>Installs the profiler; everything created from now on is timed.</summary>
    public OpProfiler()
    {
        _previous = BackendRegistry.Interceptor;
        BackendRegistry.Interceptor = Wrap;
    }

    /// <summary>The phase new calls are filed under; calls in <see cref="Setup"/> or null are not recorded.</summary>
    public string? Phase { get; set; } = Setup;

    /// <summary>Steps recorded (the caller counts them, for per-step averages).</summary>
    public int Steps { get; set; }

    private IBackend Wrap(IBackend b)
    {
        if (b is ProfilingBackend) return b;
        lock (_lock)
        {
            if (!_wrappers.TryGetValue(b, out var w)) _wrappers[b] = w = new ProfilingBackend(b, this);
            return w;
        }
    }

    internal void Record(string op, long ticks)
    {
        var phase = Phase;
        if (phase is null or Setup) return;
        lock (_lock)
        {
            _ops.TryGetValue((phase, op), out var v);
            _ops[(phase, op)] = (v.Calls + 1, v.Ticks + ticks);
        }
    }

    internal void Detail(string op, Tensor x, Tensor w, Conv2dParams p, long ticks)
    {
        if (Phase is null or Setup) return;
        var key = string.Create(CultureInfo.InvariantCulture, $"{op} x{x.Shape} w{w.Shape} stride {p.StrideH} pad {p.PadH}");
        lock (_lock)
        {
            _details.TryGetValue(key, out var v);
            _details[key] = (v.Calls + 1, v.Ticks + ticks);
        }
    }

    private static double Ms(long ticks) => ticks * 1000.0 / Stopwatch.Frequency;

    /// <summary>Rows ordered by phase, then by time; Percent is of the whole profiled time.</summary>
    public IReadOnlyList<ProfileRow> Rows()
    {
        lock (_lock)
        {
            double total = Ms(_ops.Values.Sum(v => v.Ticks));
            int steps = Math.Max(1, Steps);
            return _ops
                .OrderBy(kv => Array.IndexOf(PhaseOrder, kv.Key.Phase) is var i && i < 0 ? int.MaxValue : i)
                .ThenByDescending(kv => kv.Value.Ticks)
                .Select(kv => new ProfileRow(kv.Key.Phase, kv.Key.Op, kv.Value.Calls, kv.Value.Calls / (double)steps, Ms(kv.Value.Ticks),
                    Ms(kv.Value.Ticks) / steps, total > 0 ? 100 * Ms(kv.Value.Ticks) / total : 0))
                .ToList();
        }
    }

    /// <summary>The slowest convolution shapes, as rows with the shape in the op column.</summary>
    public IReadOnlyList<ProfileRow> ConvDetails(int top = 15)
    {
        lock (_lock)
        {
            double total = Ms(_ops.Values.Sum(v => v.Ticks));
            int steps = Math.Max(1, Steps);
            return _details.OrderByDescending(kv => kv.Value.Ticks).Take(top)
                .Select(kv => new ProfileRow("conv", kv.Key, kv.Value.Calls, kv.Value.Calls / (double)steps, Ms(kv.Value.Ticks), Ms(kv.Value.Ticks) / steps,
                    total > 0 ? 100 * Ms(kv.Value.Ticks) / total : 0))
                .ToList();
        }
    }

    /// <summary>A text table of the rows, with per-phase subtotals when <paramref name="subtotals"/> is set.</summary>
    public static string Format(IReadOnlyList<ProfileRow> rows, string title, bool subtotals = true)
    {
        ArgumentNullException.ThrowIfNull(rows);
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.AppendLine(title);
        int w = Math.Max(28, rows.Count == 0 ? 0 : rows.Max(r => r.Op.Length) + 2);
        sb.AppendLine(inv, $"  {"phase",-10}{"op".PadRight(w)}{"calls/step",11}{"ms/step",11}{"%",7}");
        foreach (var g in rows.GroupBy(r => r.Phase))
        {
            foreach (var r in g)
                sb.AppendLine(inv, $"  {r.Phase,-10}{r.Op.PadRight(w)}{r.CallsPerStep,11:0.##}{r.MsPerStep,11:F2}{r.Percent,7:F1}");
            if (subtotals && g.Count() > 1)
                sb.AppendLine(inv, $"  {g.Key,-10}{"(total)".PadRight(w)}{g.Sum(r => r.CallsPerStep),11:0.##}{g.Sum(r => r.MsPerStep),11:F2}{g.Sum(r => r.Percent),7:F1}");
        }
        return sb.ToString();
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        BackendRegistry.Interceptor = _previous;
    }
}
