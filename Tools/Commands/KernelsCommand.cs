// `residual kernels`. STUB: to be implemented.
namespace ResidualEngine.Tools.Commands;

public static class KernelsCommand
{
    public static int Run(string[] args)
    {
        Console.Error.WriteLine("residual kernels: not yet available");
        return 3;
    }
}
