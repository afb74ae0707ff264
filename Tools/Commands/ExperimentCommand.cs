// `residual experiment`: the paper's experiments at a scale that fits the machine.
//   degradation  plain vs residual nets of several depths (He et al. 2015 Fig. 6), several seeds
//   preact       original vs full pre-activation residual units at 110/164 layers (He et al. 2016)
//   gradients    per-block gradient norms and activation statistics, plain vs residual
// The options are declared here for System.CommandLine (help, typos, exit codes); their values
// are read and checked by DegradationOptions.Parse, PreActivationOptions.Parse and GradientsOptions.Parse.
using System.CommandLine;
using ResidualEngine.Tools.Cli;
using ResidualEngine.Tools.Experiments;

namespace ResidualEngine.Tools.Commands;

public static class ExperimentCommand
{
    public static Command Create()
    {
        var degradation = new Command("degradation", "He et al. 2015 Fig. 6: plain vs residual nets of depth 20/32/44/56 (--imagenet: 18/34), " +
            "same data, schedule and seeds; training and test error curves, mean and spread over seeds.")
        {
            BenchCommand.Flag("--imagenet", "plain/ResNet 18 vs 34 (ImageNet stem) instead of the CIFAR nets"),
            BenchCommand.Value("--depths", "depths to compare (CIFAR: 6n+2, default 20,32,44,56; --imagenet: 18,34)", "D1,D2,..."),
            BenchCommand.Value("--shallow", "shorthand for --depths N,M: the shallower depth", "N"),
            BenchCommand.Value("--deep", "shorthand for --depths N,M: the deeper depth", "M"),
        };
        var preact = new Command("preact", "He et al. 2016: original (post-activation) vs full pre-activation residual units at 110 and 164 layers, " +
            "same data, schedule and seeds.")
        {
            BenchCommand.Value("--depths", "depths (110,164): 6n+2 below 164 are basic-block nets (option-A shortcuts), 9n+2 from 164 bottleneck nets (projections)", "D1,D2,..."),
        };
        var gradients = new Command("gradients", "Per-block gradient norms and activation standard deviations at initialisation and after K steps.")
        {
            new Option<string[]>("--model") { Description = "a zoo model; repeat for several (default: plain56 and resnet56)", HelpName = "NAME", Arity = ArgumentArity.OneOrMore },
            BenchCommand.Value("--steps", "training steps between the two measurements (50)", "K"),
        };
        foreach (var c in new[] { degradation, preact })
        {
            c.Options.Add(BenchCommand.Value("--seeds", "seeds, each fixing the weights and the data order (a list, or a count N for 0..N-1; default 0)", "S1,S2,..."));
            c.Options.Add(BenchCommand.Value("--iterations", "training length in mini-batches (the paper: 64000); default: --epochs", "N"));
            c.Options.Add(BenchCommand.Value("--epochs", "training epochs when --iterations is not given (6); lr divided by 10 at 50% and 75% of the iterations", "E"));
            c.Options.Add(BenchCommand.Value("--warmup-iterations", "iterations at lr 0.01 first (degradation: 0; preact: 400 per 64k iterations)", "W"));
            c.Options.Add(BenchCommand.Value("--eval-points", "points on each curve (16)", "P"));
            c.Options.Add(BenchCommand.Value("--eval-images", "test images per point (0 = all; the last point always uses the whole test split)", "M"));
        }
        foreach (var c in new[] { degradation, preact, gradients })
        {
            bool comparison = c != gradients;
            c.Options.Add(BenchCommand.Value("--batch-size", comparison ? "images per step (128)" : "images per step (32)", "B"));
            c.Options.Add(BenchCommand.Value("--lr", "learning rate (0.1)", "LR"));
            c.Options.Add(BenchCommand.Value("--seed", "seed (0)", "N"));
            c.Options.Add(BenchCommand.Value("--data", "an ImageFolder with train/ and val/, or one ImageFolder (every 10th image per class is held out); default: synthetic images", "DIR"));
            c.Options.Add(BenchCommand.Value("--classes", "classes of the synthetic data (10)", "K"));
            c.Options.Add(BenchCommand.Value("--train-per-class", "synthetic training images per class (250)", "N"));
            c.Options.Add(BenchCommand.Value("--val-per-class", "synthetic validation images per class (50)", "M"));
            c.Options.Add(BenchCommand.Value("--image-size", "input size (32; smaller images are zero-padded to it; --imagenet: 64)", "S"));
            c.Options.Add(BenchCommand.Value("--augment", "cifar (4-pixel padding + random crop + flip, the default), flip or none", "A"));
            c.Options.Add(BenchCommand.Value("--workers", "data threads (1)", "W"));
            c.Options.Add(BenchCommand.Value("--data-cache", "where synthetic data is written (default: under the system temp folder)", "DIR"));
            c.Options.Add(BenchCommand.Value("--device", "cpu or cuda", "D"));
            c.Options.Add(BenchCommand.Value("--threads", "CPU threads, 0 = all", "T"));
            c.Options.Add(BenchCommand.Value("--out", $"where the figure, tables{(c == gradients ? "" : " and finished runs (reused by a repeat with the same options)")} go (docs/experiments/{c.Name})", "DIR"));
        }
        degradation.SetAction(parse =>
        {
            var a = CliApp.ToArgs(parse);
            var o = BenchCommand.Usage(() => { var x = DegradationOptions.Parse(a); a.RejectUnknown(); return x; });
            var r = DegradationExperiment.Run(o, "residual " + string.Join(" ", parse.Tokens.Select(t => t.Value)), Console.WriteLine);
            Console.WriteLine(File.ReadAllText(r.Table));
            return 0;
        });
        preact.SetAction(parse =>
        {
            var a = CliApp.ToArgs(parse);
            var o = BenchCommand.Usage(() => { var x = PreActivationOptions.Parse(a); a.RejectUnknown(); return x; });
            var r = PreActivationExperiment.Run(o, "residual " + string.Join(" ", parse.Tokens.Select(t => t.Value)), Console.WriteLine);
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
        return new Command("experiment", "The paper's experiments at a scale that fits the machine.") { degradation, preact, gradients };
    }
}
