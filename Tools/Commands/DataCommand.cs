// `residual data`. STUB: to be implemented.
namespace ResidualEngine.Tools.Commands;

public static class DataCommand
{
    public static int Run(string[] args)
    {
        Console.Error.WriteLine("residual data: not yet available");
        return 3;
    }
}
