// `residual train`'s System.CommandLine options, made from TrainOptionTable: one CLI option per
// table entry (name, aliases, help, default shown in help, check run at parse time), so the
// parser cannot drift from the library's declaration. Values are kept as the words written, and
// TrainOptionSources turns them into TrainOptions together with the JSON layers.
using System.CommandLine;
using System.CommandLine.Parsing;
using ResidualEngine.Training;

namespace ResidualEngine.Tools.Cli;

public static class TrainCli
{
    /// <summary>Adds one option per TrainOptionTable entry to <paramref name="cmd"/>; returns the pairs.</summary>
    public static IReadOnlyList<(TrainOption Spec, Option Cli)> AddOptions(Command cmd)
    {
        ArgumentNullException.ThrowIfNull(cmd);
        var map = new List<(TrainOption, Option)>();
        foreach (var spec in TrainOptionTable.All)
        {
            var aliases = spec.Aliases.Select(a => "--" + a).ToArray();
            Option opt;
            if (spec.IsSwitch)
            {
                opt = new Option<bool>("--" + spec.Name, aliases) { Description = spec.Help };
            }
            else
            {
                var o = new Option<string>("--" + spec.Name, aliases) { Description = spec.Help, HelpName = spec.HelpName };
                if (spec.DefaultText is { } d && spec.Default is not int[] { Length: 0 }) o.DefaultValueFactory = _ => d;
                // An option may be repeated, the last value winning (as the JSON layers below it); bare --resume: the latest run.
                o.Arity = spec.Name == "resume" ? ArgumentArity.ZeroOrOne : ArgumentArity.OneOrMore;
                o.CustomParser = r => r.Tokens.Count > 0 ? r.Tokens[^1].Value : spec.DefaultText;
                if (spec is TrainOption<string> { Choices: { } choices }) o.CompletionSources.Add(choices.ToArray());
                o.Validators.Add(r => CheckWords(spec, r));
                opt = o;
            }
            cmd.Options.Add(opt);
            map.Add((spec, opt));
        }
        return map;
    }

    private static void CheckWords(TrainOption spec, OptionResult r)
    {
        if (r.Tokens.Count > Math.Max(1, r.IdentifierTokenCount))
            r.AddError($"option --{spec.Name} takes one value, got {string.Join(" ", r.Tokens.Select(t => $"'{t.Value}'"))}");
        foreach (var t in r.Tokens)
        {
            if (t.Value.Length == 0) continue; // reported by the empty-value rule
            try
            {
                if (spec.Check(spec.Parse(t.Value)) is { } why) r.AddError($"option --{spec.Name} {why}");
            }
            catch (ArgumentException e)
            {
                r.AddError(e.Message);
            }
        }
    }

    /// <summary>The options written on the command line, with their words (switches "true"/"false", a bare --resume "").</summary>
    public static IReadOnlyList<(TrainOption Option, string Word)> Given(ParseResult parse, IReadOnlyList<(TrainOption Spec, Option Cli)> map)
    {
        ArgumentNullException.ThrowIfNull(parse);
        ArgumentNullException.ThrowIfNull(map);
        var given = new List<(TrainOption, string)>();
        foreach (var (spec, cli) in map)
        {
            if (parse.GetResult(cli) is not { Implicit: false } r) continue;
            if (spec.IsSwitch) given.Add((spec, parse.GetValue((Option<bool>)cli) ? "true" : "false"));
            else given.Add((spec, r.Tokens.Count == 0 ? "" : r.Tokens[^1].Value));
        }
        return given;
    }

    /// <summary>Parses a `residual train` command line (the words after "train"); syntax errors throw UsageException.</summary>
    public static IReadOnlyList<(TrainOption Option, string Word)> ParseGiven(IReadOnlyList<string> args)
    {
        ArgumentNullException.ThrowIfNull(args);
        var cmd = new Command("train");
        var map = AddOptions(cmd);
        var root = new RootCommand { cmd };
        var words = args.Prepend("train").ToArray();
        CliApp.AddValueChecks(root, words);
        var parse = root.Parse(words);
        if (parse.Errors.Count > 0)
            throw new UsageException(string.Join("; ", parse.Errors.Select(e => e.Message)));
        return Given(parse, map);
    }

    /// <summary>The resolved options of a `residual train` command line; <paramref name="runConfig"/> is a resumed run's config.json, if any.</summary>
    public static TrainOptions Parse(IReadOnlyList<string> args, string? runConfig = null) =>
        TrainOptionSources.Resolve(ParseGiven(args), runConfig);
}
