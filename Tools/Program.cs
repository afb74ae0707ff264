// Entry point of the `residual` tool: dispatches the first argument to a command.
namespace ResidualEngine.Tools;

public static class Program
{
    public static int Main(string[] args)
    {
        ArgumentNullException.ThrowIfNull(args);
        if (args.Length == 0 || args[0] is "-h" or "--help" or "help")
        {
            Console.WriteLine(Usage);
            return args.Length == 0 ? 2 : 0;
        }
        var rest = args[1..];
        try
        {
            return args[0] switch
            {
                "train" => Commands.TrainCommand.Run(rest),
                "eval" => Commands.EvalCommand.Run(rest),
                "bench" => Commands.BenchCommand.Run(rest),
                "data" => Commands.DataCommand.Run(rest),
                "models" => Commands.ModelsCommand.Run(rest),
                "kernels" => Commands.KernelsCommand.Run(rest),
                "info" => Commands.InfoCommand.Run(rest),
                "experiment" => Commands.ExperimentCommand.Run(rest),
                _ => Unknown(args[0]),
            };
        }
        catch (Exception e) when (e is ArgumentException or FormatException or InvalidOperationException or IOException or NotSupportedException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"residual {args[0]}: error: {e.Message}");
            return 1;
        }
    }

    private static int Unknown(string verb)
    {
        Console.Error.WriteLine($"residual: unknown command '{verb}'\n\n{Usage}");
        return 2;
    }

    private const string Usage = """
        usage: residual <command> [options]

        commands:
          train       train a model (synthetic data by default)
          eval        evaluate a checkpoint
          bench       time training or inference steps
          data        make synthetic ImageNet-style data
          models      list the model zoo
          kernels     compile-check the CUDA kernels
          info        GPU, driver and library versions
          experiment  degradation and gradient experiments
        """;
}
