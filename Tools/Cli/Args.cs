// A small command-line parser shared by every `residual` command: `--name value`, `--name=value`,
// boolean `--flag`, repeated options, and positional words. Unknown options and malformed values
// raise ArgumentException naming the option, so the tool can print a clear error and exit 1.
using System.Globalization;

namespace ResidualEngine.Tools.Cli;

public sealed class Args
{
    private readonly Dictionary<string, List<string>> _values = new(StringComparer.Ordinal);
    private readonly HashSet<string> _flags = new(StringComparer.Ordinal);
    private readonly HashSet<string> _used = new(StringComparer.Ordinal);

    public List<string> Positional { get; } = new();

    /// <param name="args">The arguments after the command name.</param>
    /// <param name="flags">Options that take no value (e.g. "nesterov" for --nesterov).</param>
    public Args(IReadOnlyList<string> args, params string[] flags)
    {
        ArgumentNullException.ThrowIfNull(args);
        var flagSet = new HashSet<string>(flags, StringComparer.Ordinal) { "help" };
        for (int i = 0; i < args.Count; i++)
        {
            var a = args[i];
            if (!a.StartsWith("--", StringComparison.Ordinal) || a.Length == 2)
            {
                Positional.Add(a);
                continue;
            }
            var body = a[2..];
            string name;
            string? value = null;
            int eq = body.IndexOf('=', StringComparison.Ordinal);
            if (eq >= 0) { name = body[..eq]; value = body[(eq + 1)..]; }
            else name = body;
            if (flagSet.Contains(name))
            {
                if (value is not null && value is not ("true" or "false"))
                    throw new ArgumentException($"option --{name} takes no value (got '{value}')");
                if (value != "false") _flags.Add(name);
                continue;
            }
            if (value is null)
            {
                if (i + 1 >= args.Count) throw new ArgumentException($"option --{name} needs a value");
                value = args[++i];
            }
            if (!_values.TryGetValue(name, out var list)) _values[name] = list = new();
            list.Add(value);
        }
    }

    public bool Help => Flag("help");

    public bool Flag(string name)
    {
        _used.Add(name);
        return _flags.Contains(name);
    }

    public bool Has(string name) => _values.ContainsKey(name) || _flags.Contains(name);

    public string? String(string name)
    {
        _used.Add(name);
        return _values.TryGetValue(name, out var l) ? l[^1] : null;
    }

    public string String(string name, string fallback) => String(name) ?? fallback;

    public IReadOnlyList<string> Strings(string name)
    {
        _used.Add(name);
        return _values.TryGetValue(name, out var l) ? l : Array.Empty<string>();
    }

    public int Int(string name, int fallback, int min = int.MinValue, int max = int.MaxValue)
    {
        var s = String(name);
        if (s is null) return fallback;
        if (!int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v))
            throw new ArgumentException($"option --{name} expects an integer, got '{s}'");
        if (v < min || v > max)
            throw new ArgumentException($"option --{name} must be between {min} and {max}, got {v}");
        return v;
    }

    public double Double(string name, double fallback, double min = double.NegativeInfinity, double max = double.PositiveInfinity)
    {
        var s = String(name);
        if (s is null) return fallback;
        if (!double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) || double.IsNaN(v))
            throw new ArgumentException($"option --{name} expects a number, got '{s}'");
        if (v < min || v > max)
            throw new ArgumentException($"option --{name} must be between {min} and {max}, got {v}");
        return v;
    }

    /// <summary>A comma-separated list of integers, e.g. --lr-steps 30,60,90.</summary>
    public int[] Ints(string name, int[] fallback)
    {
        var s = String(name);
        if (s is null) return fallback;
        try
        {
            return s.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Select(x => int.Parse(x, NumberStyles.Integer, CultureInfo.InvariantCulture)).ToArray();
        }
        catch (FormatException)
        {
            throw new ArgumentException($"option --{name} expects comma-separated integers, got '{s}'");
        }
    }

    /// <summary>One of a fixed set of words.</summary>
    public string Choice(string name, string fallback, params string[] choices)
    {
        var s = String(name) ?? fallback;
        if (!choices.Contains(s, StringComparer.Ordinal))
            throw new ArgumentException($"option --{name} must be one of {string.Join(", ", choices)}, got '{s}'");
        return s;
    }

    /// <summary>Throws for any option that no accessor asked about (call after reading every option).</summary>
    public void RejectUnknown()
    {
        var unknown = _values.Keys.Concat(_flags).Where(k => !_used.Contains(k)).ToList();
        if (unknown.Count > 0)
            throw new ArgumentException($"unknown option{(unknown.Count > 1 ? "s" : "")}: {string.Join(", ", unknown.Select(u => "--" + u))}");
    }
}
