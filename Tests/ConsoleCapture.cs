// Runs a command with Console.Out and Console.Error redirected, and gives back its exit code and
// everything it printed to each (the console is restored whatever happens). One helper for every
// test that runs a CLI entry point as a user would.
namespace ResidualEngine.Tests;

internal static class ConsoleCapture
{
    public static (int Code, string Out, string Err) Run(Func<int> command)
    {
        var (o, e) = (Console.Out, Console.Error);
        using var so = new StringWriter();
        using var se = new StringWriter();
        Console.SetOut(so);
        Console.SetError(se);
        try
        {
            int code = command();
            return (code, so.ToString(), se.ToString());
        }
        finally
        {
            Console.SetOut(o);
            Console.SetError(e);
        }
    }
}
