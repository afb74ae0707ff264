// `residual train`: the options come from TrainOptionTable (declared once, shared with library
// users); layers are resolved by TrainOptionSources (resumed run's config.json < --config file <
// command line). Runs the Trainer with Ctrl-C/SIGTERM handling and live progress, then says where
// the outputs are. With no options at all it is the main job: synthetic data (generated on first
// use), a CIFAR-style ResNet-20 on 32 px crops, a few minutes on a laptop CPU.
using System.CommandLine;
using ResidualEngine.Tools.Cli;
using ResidualEngine.Training;

namespace ResidualEngine.Tools.Commands;

public static class TrainCommand
{
    private const string Description = """
        Train a model (synthetic data by default). Options may also come from a JSON file (--config) or,
        with --resume, from the run's config.json; the command line wins. Ctrl-C or SIGTERM finishes the
        current step, saves a checkpoint and exits with 130 (during setup: stops at once, nothing saved);
        a second Ctrl-C or SIGTERM quits at once.
        """;

    public static Command Create()
    {
        var cmd = new Command("train", Description);
        var map = TrainCli.AddOptions(cmd);
        var json = new Option<bool>("--json") { Description = "end with a JSON summary on stdout (schema residual.train/1, docs/cli-json.md); progress goes to stderr" };
        cmd.Options.Add(json);
        cmd.SetAction(parse =>
        {
            var given = TrainCli.Given(parse, map);
            bool asJson = parse.GetValue(json);
            var text = asJson ? Console.Error : Console.Out;
            using var stop = StopSignal.ForProcess();
            var progress = asJson ? new ProgressDisplay(Console.Error, !Console.IsErrorRedirected) : ProgressDisplay.ForConsole();
            var (outcome, trainer) = Start(given, text, progress, stop, null);
            if (!trainer.Options.EvalOnly && trainer.RunDir.Length > 0 && outcome != TrainOutcome.Diverged)
                PrintOutputs(trainer, text);
            if (asJson) Console.Out.WriteLine(CliJson.Text(Summary(trainer, outcome)));
            return (int)outcome;
        });
        return cmd;
    }

    /// <summary>The final summary of a run (what --json prints).</summary>
    public static System.Text.Json.Nodes.JsonObject Summary(Trainer t, TrainOutcome outcome)
    {
        ArgumentNullException.ThrowIfNull(t);
        var j = CliJson.Document("train");
        j["outcome"] = outcome.ToString().ToLowerInvariant();
        j["exit_code"] = (int)outcome;
        j["run_dir"] = t.RunDir.Length > 0 ? Path.GetFullPath(t.RunDir) : null;
        j["model"] = TrainingSetup.CanonicalModel(t.Options.Model);
        j["epochs"] = t.Options.Epochs;
        j["epochs_completed"] = t.History.Count > 0 ? t.History[^1].Epoch : 0;
        j["best_epoch"] = t.BestEpoch > 0 ? t.BestEpoch : null;
        j["best_val_top1"] = t.History.FirstOrDefault(r => r.Epoch == t.BestEpoch) is { } b ? CliJson.Number(b.ValTop1) : null;
        j["last_epoch"] = t.History.Count > 0 ? CliJson.Epoch(t.History[^1]) : null;
        j["eval"] = t.LastEval is { } e ? CliJson.Metrics(e) : null;
        j["eval_ema"] = t.LastEmaEval is { } ee ? CliJson.Metrics(ee) : null;
        j["divergence"] = t.DivergenceMessage;
        string? Ckpt(string name) => t.RunDir.Length > 0 && File.Exists(Path.Combine(t.RunDir, name + ".safetensors")) ? Path.GetFullPath(Path.Combine(t.RunDir, name + ".safetensors")) : null;
        j["checkpoints"] = new System.Text.Json.Nodes.JsonObject { ["last"] = Ckpt(CheckpointStore.Last), ["best"] = Ckpt(CheckpointStore.Best) };
        j["history"] = new System.Text.Json.Nodes.JsonArray(t.History.Select(r => (System.Text.Json.Nodes.JsonNode?)CliJson.Epoch(r)).ToArray());
        return j;
    }

    /// <summary>Parses a `residual train` command line (without the word "train"), locates the run to resume, and
    /// trains; <paramref name="configure"/> may set test hooks on the trainer. Usage errors throw UsageException.</summary>
    public static (TrainOutcome Outcome, Trainer Trainer) Execute(IReadOnlyList<string> args, TextWriter log, ProgressDisplay progress, StopSignal stop, Action<Trainer>? configure = null) =>
        Start(TrainCli.ParseGiven(args), log, progress, stop, configure);

    private static (TrainOutcome Outcome, Trainer Trainer) Start(IReadOnlyList<(TrainOption Option, string Word)> given, TextWriter log, ProgressDisplay progress, StopSignal stop, Action<Trainer>? configure)
    {
        TrainOptions options;
        ResumeTarget? target = null;
        RunLock? held = null;
        try
        {
            // --resume decides which run's config.json is the bottom layer, so find it first: the run
            // directory, then (holding its lock, so no other process writes it meanwhile) its checkpoint.
            var resume = given.LastOrDefault(g => g.Option.Name == "resume").Word;
            var output = given.LastOrDefault(g => g.Option.Name == "out").Word;
            bool evalOnly = given.Any(g => g.Option.Name == "eval-only" && g.Word == "true");
            if (resume is not null)
            {
                (string runDir, string? file) run;
                try { run = ResumeTarget.FindRun(resume, output); }
                catch (ArgumentException e) when (e is not UsageException) { throw new UsageException(e.Message, e); }
                if (!evalOnly) held = RunLock.Acquire(run.runDir);
                target = ResumeTarget.Choose(run.runDir, run.file);
                if (target.Note is { } note) log.WriteLine($"resume: {note}");
                if (!evalOnly && target.RestoreConfig() is { } restored) log.WriteLine($"resume: {restored}");
            }
            try { options = TrainOptionSources.Resolve(given, target?.ConfigPath); }
            catch (ArgumentException e) when (e is not UsageException) { throw new UsageException(e.Message, e); }
            if (target is not null && options.Out is null) options.Out = target.RunDir;
            var trainer = new Trainer(options, log, progress, stop) { ResumeFrom = target?.CheckpointPath, Lock = held };
            configure?.Invoke(trainer);
            return (trainer.Run(), trainer);
        }
        finally
        {
            held?.Dispose();
        }
    }

    private static void PrintOutputs(Trainer t, TextWriter w)
    {
        var dir = t.RunDir;
        w.WriteLine();
        w.WriteLine($"outputs in {Path.GetFullPath(dir)}:");
        foreach (var (file, what) in new[]
        {
            ("config.json", "resolved options"),
            ("epochs.csv", "one row per epoch"),
            ("metrics.jsonl", "logged steps"),
            ("loss.png", "loss curves"),
            ("error.png", "error curves"),
            ("last.safetensors", "last checkpoint (weights, optimizer and training state in one file)"),
            ("previous.safetensors", "the checkpoint before it"),
            ("best.safetensors", "best checkpoint by val top-1"),
        })
        {
            if (File.Exists(Path.Combine(dir, file))) w.WriteLine($"  {file,-18} {what}");
        }
        if (Training.TensorBoard.EventFileWriter.Files(dir).Count > 0)
            w.WriteLine($"  {"events.out.tfevents.*",-18} TensorBoard logs: tensorboard --logdir {Path.GetDirectoryName(Path.GetFullPath(dir))}");
        w.WriteLine($"evaluate: residual eval --checkpoint {dir}    resume: residual train --resume {dir} --epochs N");
    }
}
