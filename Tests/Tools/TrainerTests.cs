// `residual train` end to end on tiny synthetic data (4 classes, 16 px, ResNet-20, 3 steps per
// epoch): exact resume on the CPU (a 2-epoch run equals a 1-epoch run resumed for a 2nd, and a
// run interrupted mid-epoch and resumed), bitwise on the weights, optimizer state and metrics
// rows; a diverging run stops with a clear message and leaves the last good checkpoint as it
// was; the LR schedule reaches the optimizer; `residual eval` reproduces the run's val numbers.
using NUnit.Framework;
using ResidualEngine.Tools.Commands;
using ResidualEngine.Training;

namespace ResidualEngine.Tests.Tools;

[NonParallelizable]
public class TrainerTests
{
    private string _root = "";
    private string _data = "";

    [OneTimeSetUp]
    public void MakeData()
    {
        _root = Directory.CreateTempSubdirectory("trainer-").FullName;
        _data = TinyData.Make(_root);
    }

    [OneTimeTearDown]
    public void RemoveData() => Directory.Delete(_root, recursive: true);

    private string[] Common(string run, params string[] more) =>
    [
        "--data", _data, "--model", "resnet20", "--image-size", "16", "--batch-size", "8", "--max-steps-per-epoch", "3",
        "--log-every", "2", "--workers", "1", "--device", "cpu", "--seed", "3", "--out", Path.Combine(_root, run), .. more,
    ];

    internal static (TrainOutcome Outcome, Trainer Trainer) Train(IReadOnlyList<string> args, Action<Trainer, StopSignal>? hook = null)
    {
        using var stop = StopSignal.Manual();
        var sink = new StringWriter();
        long live = TensorStats.LiveTensors;
        var r = TrainCommand.Execute(args, sink, new ProgressDisplay(sink, interactive: false), stop, t => hook?.Invoke(t, stop));
        // Every way out of a run (finished, interrupted, diverged) frees what it made.
        Assert.That(TensorStats.LiveTensors, Is.EqualTo(live), $"tensors left alive by a run ending {r.Outcome}");
        return r;
    }

    private string RunDir(string run) => Path.Combine(_root, run);

    private static string[] EpochRows(string dir) =>
        File.ReadAllLines(Path.Combine(dir, "epochs.csv")).Select(l => string.Join(",", l.Split(',')[..7])).ToArray();

    // The checkpoint's tensors, name and bytes (its header also holds the run's timings, which differ).
    private static string[] TensorBytes(string dir)
    {
        using var f = ResidualEngine.Serialization.SafeTensors.Load(Path.Combine(dir, "last.safetensors"));
        return f.Tensors.Select(kv => kv.Key + ":" + string.Join(",", kv.Value.ToDoubles().Select(BitConverter.DoubleToInt64Bits))).ToArray();
    }

    private static string[] StepRows(string dir) =>
        new RunFiles(dir).ReadSteps().Select(r => FormattableString.Invariant($"{r.Epoch} {r.Step} {r.Loss:R} {r.Top1:R} {r.Lr:R}")).ToArray();

    // Each recipe piece that draws random numbers or keeps state must resume exactly too.
    [TestCase("plain")]
    [TestCase("droppath", "--drop-path", "0.2")]
    [TestCase("adamw", "--opt", "adamw", "--weight-decay", "0.05")]
    [TestCase("lars", "--opt", "lars", "--nesterov")]
    [TestCase("clip", "--clip-grad-norm", "0.5")]
    [TestCase("mix", "--mixup-alpha", "0.2", "--cutmix-alpha", "1.0", "--label-smoothing", "0.1")]
    [TestCase("autoaug", "--auto-augment", "ta_wide", "--random-erase", "0.5")]
    [TestCase("ema", "--model-ema", "--model-ema-steps", "2", "--model-ema-decay", "0.99")]
    public void ResumingGivesBitwiseTheSameRun(string id, params string[] recipe)
    {
        string[] schedule = ["--schedule", "step", "--lr-steps", "1", .. recipe];
        var full = Train(Common($"full-{id}", [.. schedule, "--epochs", "2"]));
        Assert.That(full.Outcome, Is.EqualTo(TrainOutcome.Completed));

        // One epoch, then resumed for a second (options come back from the run's config.json). The
        // moving average's decay depends on --epochs (torchvision's adjustment), so with --model-ema
        // the first part runs with --epochs 2 and stops at the end of epoch 1 instead.
        if (!recipe.Contains("--model-ema"))
            Assert.That(Train(Common($"split-{id}", [.. schedule, "--epochs", "1"])).Outcome, Is.EqualTo(TrainOutcome.Completed));
        else
            Assert.That(Train(Common($"split-{id}", [.. schedule, "--epochs", "2"]), (t, stop) => t.AfterStep = (e, s) => { if (e == 1 && s == 3) stop.Request("test"); }).Outcome,
                Is.EqualTo(TrainOutcome.Interrupted));
        Assert.That(Train(["--resume", RunDir($"split-{id}"), "--epochs", "2"]).Outcome, Is.EqualTo(TrainOutcome.Completed));

        // Interrupted after the first step of epoch 1 (inside a logging window), then resumed.
        var cut = Train(Common($"cut-{id}", [.. schedule, "--epochs", "2"]), (t, stop) => t.AfterStep = (e, s) => { if (e == 1 && s == 1) stop.Request("test"); });
        Assert.That(cut.Outcome, Is.EqualTo(TrainOutcome.Interrupted));
        var info = CheckpointStore.LoadInfo(Path.Combine(RunDir($"cut-{id}"), "last.safetensors"))!;
        Assert.That((info.Reason, info.Epoch, info.StepInEpoch, info.GlobalStep), Is.EqualTo(("interrupt", 1, 1, 1L)));
        Assert.That(Train(["--resume", RunDir($"cut-{id}")]).Outcome, Is.EqualTo(TrainOutcome.Completed));

        var expected = TensorBytes(RunDir($"full-{id}"));
        foreach (var run in new[] { $"split-{id}", $"cut-{id}" })
        {
            Assert.That(TensorBytes(RunDir(run)), Is.EqualTo(expected), $"{run}: weights, BN statistics and momentum");
            Assert.That(EpochRows(RunDir(run)), Is.EqualTo(EpochRows(RunDir($"full-{id}"))), $"{run}: epochs.csv");
            Assert.That(StepRows(RunDir(run)), Is.EqualTo(StepRows(RunDir($"full-{id}"))), $"{run}: metrics.jsonl");
        }
        Assert.That(StepRows(RunDir($"full-{id}")), Has.Length.EqualTo(4), "steps 2, 3 (end of epoch), 4, 6");

        // The step schedule reached the optimizer: epoch 2 ran at a tenth of the base LR.
        var lrs = new RunFiles(RunDir($"full-{id}")).ReadSteps().Select(r => r.Lr).ToArray();
        Assert.That(lrs[0], Is.EqualTo(0.1).Within(1e-12));
        Assert.That(lrs[^1], Is.EqualTo(0.01).Within(1e-12));
    }

    [Test]
    public void ThePlateauScheduleHearsTheValidationError()
    {
        var (outcome, t) = Train(Common("plateau", "--epochs", "2", "--schedule", "plateau", "--plateau-patience", "0"));
        Assert.That(outcome, Is.EqualTo(TrainOutcome.Completed));
        var state = CheckpointStore.LoadInfo(Path.Combine(RunDir("plateau"), "last.safetensors"))!.Schedule!;
        double e1 = 1 - t.History[0].ValTop1, e2 = 1 - t.History[1].ValTop1;
        bool improved = e2 < e1 * (1 - 1e-4);
        Assert.That(state["has_best"], Is.EqualTo(1));
        Assert.That(state["best"], Is.EqualTo(improved ? e2 : e1), "the best val error the schedule saw");
        Assert.That(state["lr"], Is.EqualTo(improved ? 0.1 : 0.01).Within(1e-12), "patience 0: a non-improving epoch divides the LR");
    }

    [Test]
    public void ANonFiniteLossStopsAndKeepsTheLastGoodCheckpoint()
    {
        Assert.That(Train(Common("nan", "--epochs", "1")).Outcome, Is.EqualTo(TrainOutcome.Completed));
        var last = Path.Combine(RunDir("nan"), "last.safetensors");
        var before = File.ReadAllBytes(last);

        var (outcome, t) = Train(["--resume", RunDir("nan"), "--epochs", "2", "--lr", "1e30"]);
        Assert.That(outcome, Is.EqualTo(TrainOutcome.Diverged));
        Assert.That(t.DivergenceMessage, Does.Match(@"loss became (NaN|\+Inf|-Inf) at epoch 2 step [1-3]; last good checkpoint: .*last\.safetensors"));
        Assert.That(File.ReadAllBytes(last), Is.EqualTo(before));
        Assert.That(CheckpointStore.LoadInfo(last)!.Epoch, Is.EqualTo(2), "still the checkpoint written after epoch 1");
    }

    [Test]
    public void EvalReproducesTheRunsValidationAndTenCropWorks()
    {
        var (outcome, t) = Train(Common("eval", "--epochs", "1"));
        Assert.That(outcome, Is.EqualTo(TrainOutcome.Completed));
        var row = t.History.Single();
        var sink = new StringWriter();
        long live = TensorStats.LiveTensors;
        var r = EvalCommand.Evaluate(new EvalCommand.EvalRequest(Path.Combine(RunDir("eval"), "last.safetensors"), null, null, false, 8, 1, "cpu"), sink);
        Assert.That(r.Top1, Is.EqualTo(row.ValTop1));
        Assert.That(r.Top5, Is.EqualTo(row.ValTop5));
        Assert.That(r.Loss, Is.EqualTo(row.ValLoss).Within(1e-9));
        Assert.That(sink.ToString(), Does.Contain("top-1").And.Contain("top-5"));

        var ten = EvalCommand.Evaluate(new EvalCommand.EvalRequest(RunDir("eval"), _data, "resnet20", true, 8, 1, "cpu"), sink);
        Assert.That(ten.Samples, Is.EqualTo(r.Samples));
        Assert.That(double.IsFinite(ten.Loss) && ten.Loss > 0, Is.True);
        Assert.That(ten.Top1, Is.InRange(0.0, 1.0));
        Assert.That(ten.Top5, Is.GreaterThanOrEqualTo(ten.Top1));
        Assert.That(TensorStats.LiveTensors, Is.EqualTo(live), "evaluation frees its model and checkpoint tensors");
    }

    [Test]
    public void TrainingOnSyntheticDataLearns()
    {
        // The default data path (synthetic set generated on first use), scaled down: 4 classes, 100
        // training images each at 32 px, 24 px crops, 6 epochs of 12 steps. Chance is 25%.
        var (outcome, t) = Train([
            "--synthetic", "--synth-classes", "4", "--synth-train-per-class", "100", "--synth-val-per-class", "25", "--synth-size", "32",
            "--image-size", "24", "--batch-size", "32", "--epochs", "6", "--lr", "0.05", "--workers", "1", "--device", "cpu",
            "--out", RunDir("learn")], (tr, _) => tr.SyntheticRoot = Path.Combine(_root, "synth"));
        Assert.That(outcome, Is.EqualTo(TrainOutcome.Completed));
        Assert.That(Directory.Exists(Path.Combine(_root, "synth")), Is.True, "the synthetic set was generated under the given root");
        Assert.That(t.History, Has.Count.EqualTo(6));
        Assert.That(t.History.Max(r => r.ValTop1), Is.GreaterThan(0.45), "well above chance (0.25)");
        Assert.That(t.History[^1].TrainLoss, Is.LessThan(t.History[0].TrainLoss));
        foreach (var f in new[] { "config.json", "metrics.jsonl", "epochs.csv", "loss.png", "error.png", "last.safetensors", "previous.safetensors", "best.safetensors", "run.lock" })
            Assert.That(File.Exists(Path.Combine(RunDir("learn"), f)), Is.True, f);
        Assert.That(CheckpointStore.LoadInfo(Path.Combine(RunDir("learn"), "best.safetensors"))!.Epoch - 1, Is.EqualTo(t.BestEpoch));
    }

    [Test]
    [Category("Gpu")]
    public void TrainingOnCudaFollowsTheCpu()
    {
        if (!ResidualEngine.Backends.Cuda.CudaBackend.IsAvailable(out var why)) Assert.Ignore($"no CUDA device: {why}");
        string[] Args(string device, string run) => Common(run, "--device", device, "--epochs", "1", "--max-steps-per-epoch", "2", "--batch-size", "4");
        var cpu = Train(Args("cpu", "gpu-ref"));
        var gpu = Train(Args("cuda", "gpu"));
        Assert.That(gpu.Outcome, Is.EqualTo(TrainOutcome.Completed));
        Assert.That(CheckpointStore.LoadInfo(Path.Combine(RunDir("gpu"), "last.safetensors"))!.GlobalStep, Is.EqualTo(2));
        var (c, g) = (cpu.Trainer.History.Single(), gpu.Trainer.History.Single());
        Assert.That(g.TrainLoss, Is.EqualTo(c.TrainLoss).Within(1e-3 + 1e-3 * Math.Abs(c.TrainLoss)), "two steps of training agree with the CPU");
        Assert.That(g.ValLoss, Is.EqualTo(c.ValLoss).Within(1e-2 * Math.Abs(c.ValLoss) + 1e-2), "validation after those steps");
    }

    [Test]
    public void RunDirectoriesAreNotClobberedAndResumeChecksTheModel()
    {
        Assert.That(Train(Common("guard", "--epochs", "1")).Outcome, Is.EqualTo(TrainOutcome.Completed));
        Assert.That(() => Train(Common("guard", "--epochs", "1")), Throws.InstanceOf<ArgumentException>().With.Message.Contains("already holds a run"));
        Assert.That(() => Train(["--resume", RunDir("guard"), "--model", "resnet32", "--epochs", "2"]),
            Throws.InstanceOf<ArgumentException>().With.Message.Contains("checkpoint is for resnet20"));
        Assert.That(() => Train(Common("badmodel", "--model", "resnet21")), Throws.InstanceOf<ArgumentException>().With.Message.Contains("resnet20").And.Message.Contains("--model"));
        Assert.That(() => Train(["--resume", Path.Combine(_root, "nowhere")]), Throws.InstanceOf<ArgumentException>().With.Message.Contains("--resume"));
    }
}
