// `residual eval`. STUB: to be implemented.
namespace ResidualEngine.Tools.Commands;

public static class EvalCommand
{
    public static int Run(string[] args)
    {
        Console.Error.WriteLine("residual eval: not yet available");
        return 3;
    }
}
