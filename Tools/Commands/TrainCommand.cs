// `residual train`: parses the options (resumed run's config < --config file < command line),
// runs the Trainer with Ctrl-C/SIGTERM handling and live progress, then says where the outputs
// are. With no options at all it is the main job: synthetic data (generated on first use), a
// CIFAR-style ResNet-20 on 32 px crops, a few minutes on a laptop CPU.
using ResidualEngine.Tools.Cli;
using ResidualEngine.Training;

namespace ResidualEngine.Tools.Commands;

public static class TrainCommand
{
    public static int Run(string[] args)
    {
        ArgumentNullException.ThrowIfNull(args);
        if (args.Contains("--help") || args.Contains("-h"))
        {
            Console.WriteLine(Help);
            return 0;
        }
        using var stop = StopSignal.ForProcess();
        var (outcome, trainer) = Execute(args, Console.Out, ProgressDisplay.ForConsole(), stop);
        if (!trainer.Options.EvalOnly && trainer.RunDir.Length > 0 && outcome != TrainOutcome.Diverged)
            PrintOutputs(trainer);
        return (int)outcome;
    }

    /// <summary>Parses, locates the run to resume, and trains; <paramref name="configure"/> may set test hooks on the trainer.</summary>
    public static (TrainOutcome Outcome, Trainer Trainer) Execute(IReadOnlyList<string> args, TextWriter log, ProgressDisplay progress, StopSignal stop, Action<Trainer>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(args);
        // --resume decides which run's config.json is the bottom layer, so find it first.
        var (resumeArg, outArg) = PreScan(args);
        ResumeTarget? target = resumeArg is null ? null : ResumeTarget.Locate(resumeArg, outArg);
        var options = TrainOptionsParser.Parse(args, target?.ConfigPath);
        if (target is not null && options.Out is null) options.Out = target.RunDir;
        var trainer = new Trainer(options, log, progress, stop) { ResumeFrom = target?.CheckpointPath };
        configure?.Invoke(trainer);
        return (trainer.Run(), trainer);
    }

    private static void PrintOutputs(Trainer t)
    {
        var dir = t.RunDir;
        Console.WriteLine();
        Console.WriteLine($"outputs in {Path.GetFullPath(dir)}:");
        foreach (var (file, what) in new[]
        {
            ("config.json", "resolved options"),
            ("epochs.csv", "one row per epoch"),
            ("metrics.jsonl", "logged steps"),
            ("loss.png", "loss curves"),
            ("error.png", "error curves"),
            ("last.safetensors", "last checkpoint (+ last.json)"),
            ("best.safetensors", "best checkpoint by val top-1 (+ best.json)"),
        })
        {
            if (File.Exists(Path.Combine(dir, file))) Console.WriteLine($"  {file,-18} {what}");
        }
        Console.WriteLine($"evaluate: residual eval --checkpoint {dir}    resume: residual train --resume {dir} --epochs N");
    }

    /// <summary>The values of --resume (empty for a bare --resume) and --out, without full parsing.</summary>
    internal static (string? Resume, string? Out) PreScan(IReadOnlyList<string> args)
    {
        string? resume = null, output = null;
        for (int i = 0; i < args.Count; i++)
        {
            var a = args[i];
            if (a == "--resume") resume = i + 1 < args.Count && !args[i + 1].StartsWith("--", StringComparison.Ordinal) ? args[++i] : "";
            else if (a.StartsWith("--resume=", StringComparison.Ordinal)) resume = a["--resume=".Length..];
            else if (a == "--out" && i + 1 < args.Count) output = args[++i];
            else if (a.StartsWith("--out=", StringComparison.Ordinal)) output = a["--out=".Length..];
        }
        return (resume, output);
    }

    private const string Help = """
        usage: residual train [options]

        data
          --data DIR              ImageFolder root with train/<class>/* and val/<class>/*
          --synthetic             synthetic ImageNet-style data (the default without --data), kept in
                                  ./data/synthetic-...; --synth-classes 10 --synth-train-per-class 260
                                  --synth-val-per-class 50 --synth-size 64 --synth-seed 1
          --image-size N          crop size fed to the network (default: the model's native size, 224 for
                                  ImageNet nets and 32 for CIFAR nets, at most the synthetic image size)
          --augment A             imagenet (default): RandomResizedCrop + flip, eval resize + centre crop;
                                  cifar: He et al.'s small-image recipe for 28-32 px images (pad 4, random
                                  crop, flip; eval the centre view; smaller images zero-padded to the size)
          --min-crop-scale F      RandomResizedCrop's smallest area (default 0.08 with --data, 0.35 synthetic)
          --workers N             decoding threads (default 2)
        model and optimisation
          --model NAME            any zoo name, see `residual models` (default resnet20)
          --epochs N              (default 6)      --batch-size N (default 64)
          --lr F                  base learning rate (default 0.1)
          --momentum F            (default 0.9)    --weight-decay F (default 1e-4)
          --nesterov              Nesterov momentum
          --no-bn-weight-decay    no weight decay on BN parameters and biases
          --schedule KIND         step | plateau | cosine (default cosine)
          --lr-steps E1,E2,...    epochs where the step schedule divides the LR by 10
          --warmup-epochs N       linear warmup (default 0)
          --plateau-patience N    epochs without val improvement before plateau divides by 10 (default 10)
          --label-smoothing F     (default 0)
        running
          --seed N                weights, data order and augmentation (default 1)
          --device D              auto | cpu | cuda | cuda:N (default auto: CUDA when present)
          --out DIR               run directory (default runs/<model>-<timestamp>)
          --resume [RUN|CKPT]     continue a run exactly (bare: --out, else the latest run under runs/)
          --eval-only             evaluate (the resumed checkpoint) on val and stop
          --config FILE.json      options as JSON, keys as above ("batch-size": 256); the command line wins
          --max-steps-per-epoch N cap the steps of each epoch (smoke tests)
          --log-every N           read loss/accuracy and write metrics every N steps (default 20)

        Ctrl-C or SIGTERM finishes the current step, saves a checkpoint and exits with 130.
        """;
}
