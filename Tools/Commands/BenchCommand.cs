// `residual bench`. STUB: to be implemented.
namespace ResidualEngine.Tools.Commands;

public static class BenchCommand
{
    public static int Run(string[] args)
    {
        Console.Error.WriteLine("residual bench: not yet available");
        return 3;
    }
}
