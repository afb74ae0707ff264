// `residual models`. STUB: to be implemented.
namespace ResidualEngine.Tools.Commands;

public static class ModelsCommand
{
    public static int Run(string[] args)
    {
        Console.Error.WriteLine("residual models: not yet available");
        return 3;
    }
}
