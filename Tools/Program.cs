// Entry point of the `residual` tool: the command line is parsed and dispatched by Cli.CliApp
// (System.CommandLine). Usage errors end there with exit code 2. Whatever escapes a command ends
// here, in one place, as ONE line on stderr ("residual <command>: error: ...") and exit code 1
// (2 for a usage error found late, 130 for a stop); an exception of a kind no command expects is
// called an internal error with its type. The stack trace is shown only on request: --verbose
// anywhere on the command line, or RESIDUAL_VERBOSE=1 in the environment. An exception on a
// background thread is reported the same way instead of aborting the process.
namespace ResidualEngine.Tools;

public static class Program
{
    public const string VerboseVariable = "RESIDUAL_VERBOSE";

    public static int Main(string[] args)
    {
        ArgumentNullException.ThrowIfNull(args);
        bool verbose = args.Contains("--verbose", StringComparer.Ordinal) || IsSet(Environment.GetEnvironmentVariable(VerboseVariable));
        args = args.Where(a => a != "--verbose").ToArray();
        var verb = args.FirstOrDefault(a => !a.StartsWith('-')) ?? "";
        AppDomain.CurrentDomain.UnhandledException += (_, e) =>
        {
            Report(verb, e.ExceptionObject as Exception ?? new InvalidOperationException($"{e.ExceptionObject}"), Console.Error, verbose);
            Environment.Exit(Cli.CliApp.Failure);
        };
        return Guard(verb, () => Cli.CliApp.Run(args), Console.Error, verbose);
    }

    /// <summary>Runs a command; anything it throws becomes one line on <paramref name="error"/> and an exit code.</summary>
    public static int Guard(string verb, Func<int> command, TextWriter error, bool verbose)
    {
        ArgumentNullException.ThrowIfNull(command);
        ArgumentNullException.ThrowIfNull(error);
        try
        {
            return command();
        }
        catch (Exception e)
        {
            return Report(verb, e, error, verbose);
        }
    }

    private static int Report(string verb, Exception e, TextWriter error, bool verbose)
    {
        var inner = Unwrap(e);
        var who = verb.Length > 0 ? $"residual {verb}" : "residual";
        bool expected = inner is ArgumentException or FormatException or IOException or InvalidDataException or UnauthorizedAccessException
            or NotSupportedException or InvalidOperationException or OutOfMemoryException or TimeoutException;
        var line = inner is OperationCanceledException ? $"{who}: stopped"
            : expected ? $"{who}: error: {OneLine(inner.Message)}"
            : $"{who}: internal error: {inner.GetType().Name}: {OneLine(inner.Message)}";
        if (!verbose && !expected && inner is not OperationCanceledException) line += $" (--verbose or {VerboseVariable}=1 shows where)";
        error.WriteLine(line);
        if (verbose) error.WriteLine(e.ToString());
        error.Flush();
        return inner switch
        {
            OperationCanceledException => Cli.CliApp.Interrupted,
            Cli.UsageException => Cli.CliApp.UsageError,
            _ => Cli.CliApp.Failure,
        };
    }

    /// <summary>The exception that says what went wrong: the only inner one of an AggregateException or a reflection wrapper.</summary>
    internal static Exception Unwrap(Exception e)
    {
        while (true)
        {
            switch (e)
            {
                case AggregateException a when a.InnerExceptions.Count == 1:
                    e = a.InnerExceptions[0];
                    continue;
                case AggregateException a when a.InnerExceptions.Count > 1:
                    return new AggregateException(string.Join("; ", a.InnerExceptions.Select(x => Unwrap(x).Message).Distinct().Take(5)), a.InnerExceptions);
                case System.Reflection.TargetInvocationException { InnerException: { } i }:
                    e = i;
                    continue;
                case TypeInitializationException { InnerException: { } i }:
                    e = i;
                    continue;
                default:
                    return e;
            }
        }
    }

    private static string OneLine(string m) => string.Join(" ", m.Split(['\r', '\n'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));

    private static bool IsSet(string? v) => v is not null && v.Trim() is not ("" or "0" or "false" or "False" or "no");
}
