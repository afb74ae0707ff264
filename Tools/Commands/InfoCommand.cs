// `residual info`. STUB: to be implemented.
namespace ResidualEngine.Tools.Commands;

public static class InfoCommand
{
    public static int Run(string[] args)
    {
        Console.Error.WriteLine("residual info: not yet available");
        return 3;
    }
}
