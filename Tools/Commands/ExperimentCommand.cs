// `residual experiment`: the paper's experiments at a scale that fits the machine.
//   degradation  plain vs residual nets of several depths (He et al. 2015 Fig. 6), several seeds
//   preact       original vs pre-activation residual units at 110/164 layers (He et al. 2016)
//   gradients    per-block gradient norms and activation statistics, plain vs residual
using ResidualEngine.Tools.Cli;
using ResidualEngine.Tools.Experiments;

namespace ResidualEngine.Tools.Commands;

public static class ExperimentCommand
{
    private const string Usage = """
        usage: residual experiment degradation [options]   (--help for its options)
               residual experiment preact [options]
               residual experiment gradients [options]
        """;

    public static int Run(string[] args)
    {
        ArgumentNullException.ThrowIfNull(args);
        var a = new Args(args, "imagenet");
        var kind = a.Positional.Count > 0 ? a.Positional[0] : null;
        if (a.Positional.Count > 1) throw new ArgumentException($"unexpected argument '{a.Positional[1]}'");
        var command = "residual experiment " + string.Join(" ", args);
        void Log(string s) => Console.WriteLine(s);
        switch (kind)
        {
            case "degradation":
            {
                if (a.Help) { Console.WriteLine(DegradationOptions.Usage); return 0; }
                var o = DegradationOptions.Parse(a);
                a.RejectUnknown();
                var r = DegradationExperiment.Run(o, command, Log);
                Console.WriteLine(File.ReadAllText(r.Table));
                return 0;
            }
            case "preact":
            {
                if (a.Help) { Console.WriteLine(PreActivationOptions.Usage); return 0; }
                var o = PreActivationOptions.Parse(a);
                a.RejectUnknown();
                var r = PreActivationExperiment.Run(o, command, Log);
                Console.WriteLine(File.ReadAllText(r.Table));
                return 0;
            }
            case "gradients":
            {
                if (a.Help) { Console.WriteLine(GradientsOptions.Usage); return 0; }
                var o = GradientsOptions.Parse(a);
                a.RejectUnknown();
                GradientsExperiment.Run(o, command, Log);
                return 0;
            }
            case null when a.Help:
                Console.WriteLine(Usage);
                return 0;
            default:
                throw new ArgumentException(kind is null ? $"which experiment?\n{Usage}" : $"unknown experiment '{kind}': expected degradation, preact or gradients");
        }
    }
}
