// The `residual` command line on System.CommandLine: the command tree, and what every command
// shares. -h/--help on every command, --version, suggestions for mistyped options and commands,
// response files (@args.rsp), shell completion ([suggest] directive). Exit codes: 0 success,
// 1 runtime failure, 2 usage error (bad syntax, unknown option, value out of range: anything the
// user fixes by changing the command line), 130 interrupted. Errors go to stderr, results to
// stdout. Two rules hold for every option with a value: an empty value is an error (an unset
// shell variable must not silently change meaning), and a value that looks like an option is an
// error unless written --name=value (so `--out --nesterov` cannot swallow the next option).
using System.CommandLine;
using System.CommandLine.Invocation;
using System.CommandLine.Parsing;

namespace ResidualEngine.Tools.Cli;

/// <summary>A mistake in the command line found after parsing (e.g. two options that exclude each other): exit code 2.</summary>
public sealed class UsageException : ArgumentException
{
    public UsageException(string message) : base(message) { }
    public UsageException(string message, Exception inner) : base(message, inner) { }
    public UsageException() { }
}

public static class CliApp
{
    public const int Success = 0, Failure = 1, UsageError = 2, Interrupted = 130;

    /// <summary>The whole command tree (a new one per call: options carry per-run validators).</summary>
    public static RootCommand CreateRoot()
    {
        var root = new RootCommand("residual: train, evaluate and benchmark residual networks on the ResidualEngine tensor engine.");
        root.Subcommands.Add(Commands.TrainCommand.Create());
        root.Subcommands.Add(Commands.EvalCommand.Create());
        root.Subcommands.Add(Commands.ExportCommand.Create());
        root.Subcommands.Add(Commands.BenchCommand.Create());
        root.Subcommands.Add(Commands.DataCommand.Create());
        root.Subcommands.Add(Commands.ModelsCommand.Create());
        root.Subcommands.Add(Commands.KernelsCommand.Create());
        root.Subcommands.Add(Commands.InfoCommand.Create());
        root.Subcommands.Add(Commands.ExperimentCommand.Create());
        // --version answers on every command, not only at the top.
        foreach (var v in root.Options.OfType<VersionOption>()) v.Recursive = true;
        // A bare `residual` is a usage error: the overview goes to stderr, exit 2.
        root.SetAction(parse =>
        {
            parse.RootCommandResult.Command.Parse(["--help"]).Invoke(new InvocationConfiguration { Output = parse.InvocationConfiguration.Error });
            return UsageError;
        });
        return root;
    }

    /// <summary>Parses and runs; usage errors are reported here (exit 2), runtime exceptions are left to the caller.</summary>
    public static int Run(string[] args, TextWriter? stdout = null, TextWriter? stderr = null)
    {
        ArgumentNullException.ThrowIfNull(args);
        stdout ??= Console.Out;
        stderr ??= Console.Error;
        var root = CreateRoot();
        AddValueChecks(root, args);
        var parse = root.Parse(args);
        if (parse.Action is ParseErrorAction)
        {
            ReportParseErrors(parse, stderr);
            return UsageError;
        }
        try
        {
            return parse.Invoke(new InvocationConfiguration { Output = stdout, Error = stderr, EnableDefaultExceptionHandler = false });
        }
        catch (UsageException e)
        {
            stderr.WriteLine($"{CommandPath(parse.CommandResult.Command)}: error: {e.Message}");
            stderr.WriteLine($"see '{CommandPath(parse.CommandResult.Command)} --help'");
            return UsageError;
        }
    }

    /// <summary>"residual train", "residual bench compare", ...</summary>
    public static string CommandPath(Command c)
    {
        ArgumentNullException.ThrowIfNull(c);
        var names = new List<string>();
        for (Symbol? s = c; s is Command cmd; s = s.Parents.FirstOrDefault())
            names.Add(cmd is RootCommand ? "residual" : cmd.Name);
        names.Reverse();
        return string.Join(" ", names);
    }

    /// <summary>Every command in the tree, root first.</summary>
    public static IEnumerable<Command> AllCommands(Command root)
    {
        ArgumentNullException.ThrowIfNull(root);
        yield return root;
        foreach (var sub in root.Subcommands)
            foreach (var c in AllCommands(sub)) yield return c;
    }

    private static void ReportParseErrors(ParseResult parse, TextWriter err)
    {
        var cmd = parse.CommandResult.Command;
        var path = CommandPath(cmd);
        foreach (var e in parse.Errors) err.WriteLine($"{path}: error: {e.Message}");
        foreach (var token in parse.UnmatchedTokens)
            if (Suggest(cmd, token) is { } s) err.WriteLine($"  '{token}': did you mean {s}?");
        err.WriteLine($"see '{path} --help'");
    }

    /// <summary>The closest option or subcommand name to a mistyped word, or null when nothing is close.</summary>
    public static string? Suggest(Command cmd, string word)
    {
        ArgumentNullException.ThrowIfNull(cmd);
        ArgumentNullException.ThrowIfNull(word);
        var names = cmd.Options.Where(o => !o.Hidden).SelectMany(o => o.Aliases.Prepend(o.Name))
            .Concat(cmd.Subcommands.Where(c => !c.Hidden).Select(c => c.Name));
        var key = word.Split('=', 2)[0];
        var best = names.Select(n => (Name: n, D: Distance(key, n))).Where(x => x.D <= Math.Max(2, x.Name.Length / 4))
            .OrderBy(x => x.D).ThenBy(x => x.Name, StringComparer.Ordinal).ToList();
        if (best.Count == 0) return null;
        var top = best.Where(b => b.D == best[0].D).Select(b => b.Name).Take(3).ToList();
        return string.Join(" or ", top);
    }

    private static int Distance(string a, string b)
    {
        var d = new int[a.Length + 1, b.Length + 1];
        for (int i = 0; i <= a.Length; i++) d[i, 0] = i;
        for (int j = 0; j <= b.Length; j++) d[0, j] = j;
        for (int i = 1; i <= a.Length; i++)
            for (int j = 1; j <= b.Length; j++)
                d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
        return d[a.Length, b.Length];
    }

    /// <summary>Adds the two value rules (no empty values; no option-looking values unless written --name=value) to every option that takes a value.</summary>
    internal static void AddValueChecks(Command root, IReadOnlyList<string> args)
    {
        foreach (var cmd in AllCommands(root))
        {
            // A positional word that looks like an option is a mistyped option, not a value.
            foreach (var arg in cmd.Arguments)
                arg.Validators.Add(r =>
                {
                    foreach (var t in r.Tokens.Where(t => LooksLikeOption(t.Value)))
                        r.AddError($"unrecognized option '{t.Value}'" + (Suggest(cmd, t.Value) is { } s ? $"; did you mean {s}?" : ""));
                });
            foreach (var opt in cmd.Options)
            {
                if (opt.Arity.MaximumNumberOfValues == 0 || opt.ValueType == typeof(bool)) continue;
                opt.Validators.Add(r =>
                {
                    foreach (var t in r.Tokens)
                    {
                        if (t.Value.Length == 0)
                            r.AddError($"option {r.IdentifierToken?.Value ?? opt.Name} was given an empty value (an unset shell variable?)");
                        else if (LooksLikeOption(t.Value) && !WrittenWithEquals(args, r.IdentifierToken?.Value ?? opt.Name, t.Value))
                            r.AddError($"option {r.IdentifierToken?.Value ?? opt.Name} needs a value, but the next word is the option-like '{t.Value}' " +
                                $"(write {r.IdentifierToken?.Value ?? opt.Name}={t.Value} if that is the value)");
                    }
                });
            }
        }
    }

    private static bool LooksLikeOption(string v) =>
        v.Length > 1 && v[0] == '-' && !char.IsDigit(v[1]) && v[1] != '.';

    private static bool WrittenWithEquals(IReadOnlyList<string> args, string name, string value) =>
        args.Contains($"{name}={value}", StringComparer.Ordinal) || args.Contains($"{name}:{value}", StringComparer.Ordinal);

    /// <summary>The old-style Args view of a parsed command (for option parsers shared with tests and experiments):
    /// each option given on the command line as "--name value" (switches as "--name"), then the positional words.</summary>
    public static Args ToArgs(ParseResult parse)
    {
        ArgumentNullException.ThrowIfNull(parse);
        var words = new List<string>();
        var flags = new List<string>();
        foreach (var child in parse.CommandResult.Children)
        {
            switch (child)
            {
                case OptionResult { Implicit: false } o:
                    var name = o.Option.Name.TrimStart('-');
                    if (o.Option.ValueType == typeof(bool))
                    {
                        flags.Add(name);
                        if (o.Tokens.Count == 0 || o.Tokens[^1].Value is "true" or "True") words.Add("--" + name);
                    }
                    else foreach (var t in o.Tokens) words.Add($"--{name}={t.Value}");
                    break;
                case ArgumentResult a:
                    foreach (var t in a.Tokens) words.Add(t.Value);
                    break;
            }
        }
        return new Args(words, flags.ToArray());
    }
}
