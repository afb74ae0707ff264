// `residual experiment`: the paper's experiments at a scale that fits the machine.
//   degradation  plain vs residual nets of two depths: training/validation error curves
//   gradients    per-block gradient norms and activation statistics, plain vs residual
// The options are declared here for System.CommandLine (help, typos, exit codes); their values
// are read and checked by DegradationOptions.Parse and GradientsOptions.Parse.
using System.CommandLine;
using ResidualEngine.Tools.Cli;
using ResidualEngine.Tools.Experiments;

namespace ResidualEngine.Tools.Commands;

public static class ExperimentCommand
{
    public static Command Create()
    {
        var degradation = new Command("degradation", "Plain-20 vs plain-56 and ResNet-20 vs ResNet-56 (--imagenet: 18 vs 34) on the same data, schedule and seed.")
        {
            BenchCommand.Flag("--imagenet", "plain/ResNet 18 vs 34 (ImageNet stem) instead of the CIFAR nets"),
            BenchCommand.Value("--shallow", "the shallower depth (CIFAR: 6n+2, default 20; --imagenet: 18)", "N"),
            BenchCommand.Value("--deep", "the deeper depth (default 56; --imagenet: 34)", "M"),
            BenchCommand.Value("--epochs", "training epochs (6); lr divided by 10 at 50% and 75% of the iterations", "E"),
            BenchCommand.Value("--eval-points", "points on the curves (12)", "P"),
        };
        var gradients = new Command("gradients", "Per-block gradient norms and activation standard deviations at initialisation and after K steps.")
        {
            new Option<string[]>("--model") { Description = "a zoo model; repeat for several (default: plain56 and resnet56)", HelpName = "NAME", Arity = ArgumentArity.OneOrMore },
            BenchCommand.Value("--steps", "training steps between the two measurements (50)", "K"),
        };
        foreach (var c in new[] { degradation, gradients })
        {
            c.Options.Add(BenchCommand.Value("--batch-size", "images per step (32)", "B"));
            c.Options.Add(BenchCommand.Value("--lr", "learning rate (0.1)", "LR"));
            c.Options.Add(BenchCommand.Value("--seed", "seed (0)", "N"));
            c.Options.Add(BenchCommand.Value("--data", "an ImageFolder with train/ and val/, or one ImageFolder (every 10th image per class is held out); default: synthetic images", "DIR"));
            c.Options.Add(BenchCommand.Value("--classes", "classes of the synthetic data (10)", "K"));
            c.Options.Add(BenchCommand.Value("--train-per-class", "synthetic training images per class (250)", "N"));
            c.Options.Add(BenchCommand.Value("--val-per-class", "synthetic validation images per class (50)", "M"));
            c.Options.Add(BenchCommand.Value("--image-size", "input size (32; --imagenet: 64)", "S"));
            c.Options.Add(BenchCommand.Value("--augment", "none, flip (default) or crop-flip", "A"));
            c.Options.Add(BenchCommand.Value("--workers", "data threads (1)", "W"));
            c.Options.Add(BenchCommand.Value("--data-cache", "where synthetic data is written (default: under the system temp folder)", "DIR"));
            c.Options.Add(BenchCommand.Value("--device", "cpu or cuda", "D"));
            c.Options.Add(BenchCommand.Value("--threads", "CPU threads, 0 = all", "T"));
            c.Options.Add(BenchCommand.Value("--out", $"where the figure and tables go (docs/experiments/{c.Name})", "DIR"));
        }
        degradation.SetAction(parse =>
        {
            var a = CliApp.ToArgs(parse);
            var o = BenchCommand.Usage(() => { var x = DegradationOptions.Parse(a); a.RejectUnknown(); return x; });
            var r = DegradationExperiment.Run(o, "residual " + string.Join(" ", parse.Tokens.Select(t => t.Value)), Console.WriteLine);
            Console.WriteLine(File.ReadAllText(r.Table));
            return 0;
        });
        gradients.SetAction(parse =>
        {
            var a = CliApp.ToArgs(parse);
            var o = BenchCommand.Usage(() => { var x = GradientsOptions.Parse(a); a.RejectUnknown(); return x; });
            GradientsExperiment.Run(o, "residual " + string.Join(" ", parse.Tokens.Select(t => t.Value)), Console.WriteLine);
            return 0;
        });
        return new Command("experiment", "The paper's experiments at a scale that fits the machine.") { degradation, gradients };
    }
}
