// `residual train`. STUB: to be implemented.
namespace ResidualEngine.Tools.Commands;

public static class TrainCommand
{
    public static int Run(string[] args)
    {
        Console.Error.WriteLine("residual train: not yet available");
        return 3;
    }
}
