// One training option, declared once: its name (and older spellings), value type, default (read
// from a fresh TrainOptions, so the property initialiser is the only place a default is written),
// help, how a word is parsed, the check on its value, and how it is read from and written to
// TrainOptions. The `residual train` command line, the JSON layers (--config, a resumed run's
// config.json) and TrainOptions.Validate all go through these, so they cannot disagree.
using System.Globalization;
using System.Text.Json.Nodes;

namespace ResidualEngine.Training;

public abstract class TrainOption
{
    protected TrainOption(string name, string group, string help, string? helpName, IReadOnlyList<string> aliases, bool commandOnly)
    {
        Name = name;
        Group = group;
        Help = help;
        HelpName = helpName;
        Aliases = aliases;
        CommandOnly = commandOnly;
    }

    /// <summary>The option name without dashes ("batch-size"); also its key in JSON.</summary>
    public string Name { get; }
    /// <summary>Older or alternative spellings, accepted on the command line and as JSON keys.</summary>
    public IReadOnlyList<string> Aliases { get; }
    /// <summary>Section of the help ("data", "model", "optimiser", "recipe", "running").</summary>
    public string Group { get; }
    public string Help { get; }
    /// <summary>Placeholder of the value in help ("N", "F", "DIR"); null for switches.</summary>
    public string? HelpName { get; }
    /// <summary>Says what this invocation does (resume, config, out, eval-only), not how to train: not written to config.json.</summary>
    public bool CommandOnly { get; }

    public abstract Type ValueType { get; }
    public bool IsSwitch => ValueType == typeof(bool);

    /// <summary>The default, as a fresh TrainOptions has it (null when unset).</summary>
    public object? Default => Get(new TrainOptions());

    /// <summary>The default as the help shows it, or null when there is none to show.</summary>
    public string? DefaultText => Default is { } d ? Format(d) : null;

    public abstract object? Get(TrainOptions o);
    public abstract void Set(TrainOptions o, object? value);

    /// <summary>Parses one command-line or JSON word; throws ArgumentException naming the option.</summary>
    public abstract object Parse(string word);

    /// <summary>Null when the value is acceptable, else what is wrong (without the option's name).</summary>
    public abstract string? Check(object? value);

    /// <summary>Parses and checks a word, then stores it.</summary>
    public void Apply(TrainOptions o, string word)
    {
        ArgumentNullException.ThrowIfNull(o);
        var v = Parse(word);
        if (Check(v) is { } why) throw new ArgumentException($"option --{Name} {why}");
        Set(o, v);
    }

    /// <summary>The value as config.json holds it.</summary>
    public virtual JsonNode? ToJson(TrainOptions o) => Get(o) switch
    {
        null => null,
        int[] a => new JsonArray(a.Select(x => (JsonNode?)JsonValue.Create(x)).ToArray()),
        double[] a => new JsonArray(a.Select(x => (JsonNode?)JsonValue.Create(x)).ToArray()),
        int i => JsonValue.Create(i),
        long l => JsonValue.Create(l),
        double d => JsonValue.Create(d),
        bool b => JsonValue.Create(b),
        string s => JsonValue.Create(s),
        var x => throw new InvalidOperationException($"option --{Name}: no JSON form for {x.GetType().Name}"),
    };

    public static string Format(object v) => v switch
    {
        double d => d.ToString("R", CultureInfo.InvariantCulture),
        bool b => b ? "true" : "false",
        int[] a => string.Join(",", a),
        double[] a => string.Join(",", a.Select(x => x.ToString("R", CultureInfo.InvariantCulture))),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => v.ToString() ?? "",
    };

    public bool Answers(string name) => Name == name || Aliases.Contains(name);
}

public sealed class TrainOption<T> : TrainOption
{
    private readonly Func<TrainOptions, T> _get;
    private readonly Action<TrainOptions, T> _set;
    private readonly Func<string, T> _parse;
    private readonly Func<T, string?> _check;

    public TrainOption(string name, string group, string help, string? helpName, Func<TrainOptions, T> get, Action<TrainOptions, T> set,
        Func<string, T> parse, Func<T, string?>? check = null, IReadOnlyList<string>? aliases = null, bool commandOnly = false,
        IReadOnlyList<string>? choices = null)
        : base(name, group, help, helpName, aliases ?? [], commandOnly)
    {
        _get = get;
        _set = set;
        _parse = parse;
        _check = check ?? (_ => null);
        Choices = choices;
    }

    /// <summary>The accepted words of a choice option (completions and help), else null.</summary>
    public IReadOnlyList<string>? Choices { get; }

    public override Type ValueType => typeof(T);
    public override object? Get(TrainOptions o) => _get(o);
    public override void Set(TrainOptions o, object? value) => _set(o, (T)value!);

    public override object Parse(string word)
    {
        ArgumentNullException.ThrowIfNull(word);
        try
        {
            return _parse(word)!;
        }
        catch (FormatException)
        {
            throw new ArgumentException($"option --{Name} expects {Expected()}, got '{word}'");
        }
        catch (OverflowException)
        {
            throw new ArgumentException($"option --{Name} expects {Expected()}, got '{word}' (out of range)");
        }
    }

    public override string? Check(object? value) => value is T t ? _check(t) : value is null && default(T) is null ? null : $"has a value of the wrong type";

    private string Expected() => typeof(T) == typeof(int) ? "an integer" : typeof(T) == typeof(double) ? "a number"
        : typeof(T) == typeof(int[]) ? "comma-separated integers" : typeof(T) == typeof(double[]) ? "comma-separated numbers" : typeof(T) == typeof(bool) ? "true or false" : "a value";
}
