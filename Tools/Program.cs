// Entry point of the `residual` tool: the command line is parsed and dispatched by Cli.CliApp
// (System.CommandLine). Usage errors end there with exit code 2; a runtime failure that escapes a
// command ends here as one line on stderr and exit code 1.
namespace ResidualEngine.Tools;

public static class Program
{
    public static int Main(string[] args)
    {
        ArgumentNullException.ThrowIfNull(args);
        try
        {
            return Cli.CliApp.Run(args);
        }
        catch (Exception e) when (e is ArgumentException or FormatException or InvalidOperationException or IOException or NotSupportedException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"residual{(args.Length > 0 ? " " + args[0] : "")}: error: {e.Message}");
            return Cli.CliApp.Failure;
        }
    }
}
