// `residual experiment`. STUB: to be implemented.
namespace ResidualEngine.Tools.Commands;

public static class ExperimentCommand
{
    public static int Run(string[] args)
    {
        Console.Error.WriteLine("residual experiment: not yet available");
        return 3;
    }
}
