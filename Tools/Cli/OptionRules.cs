// Range checks for System.CommandLine options, run at parse time so that a value out of range
// is a usage error (exit 2) naming the option, like a malformed one.
using System.CommandLine;

namespace ResidualEngine.Tools.Cli;

public static class OptionRules
{
    /// <summary>Values must lie in [lo, hi].</summary>
    public static Option<int> Range(Option<int> o, int lo, int hi) => Add(o, v => v < lo || v > hi ? $"must be in [{lo}, {hi}], got {v}" : null);

    /// <summary>0 (meaning "automatic") or a value in [lo, hi].</summary>
    public static Option<int> ZeroOrRange(Option<int> o, int lo, int hi) =>
        Add(o, v => v != 0 && (v < lo || v > hi) ? $"must be 0 (automatic) or in [{lo}, {hi}], got {v}" : null);

    public static Option<double> Range(Option<double> o, double lo, double hi) =>
        Add(o, v => !(v >= lo && v <= hi) ? FormattableString.Invariant($"must be in [{lo}, {hi}], got {v}") : null);

    private static Option<T> Add<T>(Option<T> o, Func<T, string?> check)
    {
        ArgumentNullException.ThrowIfNull(o);
        o.Validators.Add(r =>
        {
            if (r.Tokens.Count == 0) return;
            T v;
            try { v = r.GetValueOrDefault<T>(); }
            catch (InvalidOperationException) { return; } // not a number at all: System.CommandLine reports that
            if (check(v) is { } why) r.AddError($"option {o.Name} {why}");
        });
        return o;
    }
}
