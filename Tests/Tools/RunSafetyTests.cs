// Run directories under faults (issue 10, items 7, 9, 13, 14): one writer at a time (a second is
// refused naming the holder's PID); a stop request during setup ends the run with nothing
// written, and a second signal quits at once with 130; a failed attempt with other options does
// not change what a later --resume starts from, and metrics rows past the checkpoint are dropped
// with a message; a run that stopped before its first checkpoint can be started again with --out.
using NUnit.Framework;
using ResidualEngine.Tools.Commands;
using ResidualEngine.Training;

namespace ResidualEngine.Tests.Tools;

[NonParallelizable]
public class RunSafetyTests
{
    private string _root = "";
    private string _data = "";

    [OneTimeSetUp]
    public void MakeData()
    {
        _root = Directory.CreateTempSubdirectory("runsafety-").FullName;
        _data = TinyData.Make(_root);
    }

    [OneTimeTearDown]
    public void RemoveData() => Directory.Delete(_root, recursive: true);

    private string Dir(string run) => Path.Combine(_root, run);

    private string[] Common(string run, params string[] more) =>
    [
        "--data", _data, "--model", "resnet20", "--image-size", "16", "--batch-size", "8", "--max-steps-per-epoch", "3",
        "--log-every", "1", "--workers", "0", "--device", "cpu", "--seed", "3", "--out", Dir(run), .. more,
    ];

    private static (TrainOutcome Outcome, Trainer Trainer, string Log) Train(IReadOnlyList<string> args, Action<Trainer, StopSignal>? hook = null)
    {
        using var stop = StopSignal.Manual();
        var sink = new StringWriter();
        var r = TrainCommand.Execute(args, sink, new ProgressDisplay(sink, interactive: false), stop, t => hook?.Invoke(t, stop));
        return (r.Outcome, r.Trainer, sink.ToString());
    }

    [Test]
    public void ASecondWriterIsRefusedNamingTheHolder()
    {
        Assert.That(Train(Common("locked", "--epochs", "1")).Outcome, Is.EqualTo(TrainOutcome.Completed));
        using (var held = RunLock.Acquire(Dir("locked")))
        {
            Assert.That(RunLock.Holder(Dir("locked")), Does.StartWith($"pid {Environment.ProcessId} on "));
            var again = Assert.Throws<RunLockedException>(() => RunLock.Acquire(Dir("locked")));
            Assert.That(again!.Message, Does.Contain($"pid {Environment.ProcessId}").And.Contain("in use by another residual process"));
            Assert.That(() => Train(["--resume", Dir("locked"), "--epochs", "2"]), Throws.TypeOf<RunLockedException>().With.Message.Contains($"pid {Environment.ProcessId}"));
            Assert.That(() => Train(Common("locked", "--epochs", "1")), Throws.TypeOf<RunLockedException>());
        }
        Assert.That(Train(["--resume", Dir("locked"), "--epochs", "2"]).Outcome, Is.EqualTo(TrainOutcome.Completed), "released on dispose");
        Assert.That(RunLock.Holder(Dir("locked")), Is.Null, "the lock file no longer names a holder");
    }

    [Test]
    public void AStopDuringSetupEndsTheRunWithNothingWritten()
    {
        // Item 9: a signal during setup used to wait for the first training step (and then save a checkpoint).
        var (outcome, t, log) = Train(Common("setup-stop", "--epochs", "1"), (tr, stop) => stop.Request("SIGTERM"));
        Assert.That(outcome, Is.EqualTo(TrainOutcome.Interrupted));
        Assert.That(log, Does.Contain("stopped (SIGTERM) during setup"));
        Assert.That(t.History, Is.Empty);
        Assert.That(Directory.Exists(Dir("setup-stop")) ? Directory.GetFiles(Dir("setup-stop")) : [], Is.Empty, "no checkpoint, no metrics, no config");

        // Listing itself watches the signal.
        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();
        Assert.Throws<OperationCanceledException>(() => ResidualEngine.Data.ImageFolder.Open(Path.Combine(_data, "train"), null, cancelled.Token));
    }

    [Test]
    public void TheSecondSignalQuitsAtOnceWith130()
    {
        var codes = new List<int>();
        var messages = new StringWriter();
        using var stop = StopSignal.ForTest(codes.Add, messages);
        stop.OnSignal("SIGTERM");
        Assert.That((stop.IsRequested, stop.Reason, stop.Token.IsCancellationRequested), Is.EqualTo((true, "SIGTERM", true)));
        Assert.That(codes, Is.Empty, "the first signal only asks for a graceful stop");
        stop.OnSignal("Ctrl-C");
        Assert.That(codes, Is.EqualTo(new[] { 130 }));
        Assert.That(messages.ToString(), Does.Contain("again to quit at once").And.Contain("Ctrl-C again: quitting now"));
    }

    [Test]
    public void AFailedResumeDoesNotChangeWhatTheNextResumeStartsFrom()
    {
        // Item 13: `--resume R --lr 1e30` diverged and rewrote config.json, so a plain --resume diverged again.
        Assert.That(Train(Common("cfg", "--epochs", "1")).Outcome, Is.EqualTo(TrainOutcome.Completed));
        var config = File.ReadAllText(Path.Combine(Dir("cfg"), "config.json"));
        var (outcome, _, _) = Train(["--resume", Dir("cfg"), "--epochs", "2", "--lr", "1e30"]);
        Assert.That(outcome, Is.EqualTo(TrainOutcome.Diverged));
        Assert.That(File.ReadAllText(Path.Combine(Dir("cfg"), "config.json")), Is.EqualTo(config), "no checkpoint was made with lr 1e30");
        // The diverged attempt logged rows past the checkpoint; they belong to no checkpoint.
        var (again, t, log) = Train(["--resume", Dir("cfg"), "--epochs", "2"]);
        Assert.That(again, Is.EqualTo(TrainOutcome.Completed));
        Assert.That(t.Options.Lr, Is.EqualTo(0.1));
        Assert.That(log, Does.Match(@"dropped \d+ rows? of metrics\.jsonl logged after the checkpoint \(global step 3\)"));
        Assert.That(new RunFiles(Dir("cfg")).ReadSteps().Select(r => r.Step), Is.EqualTo(new long[] { 1, 2, 3, 4, 5, 6 }));

        // A crash between the checkpoint and config.json: the checkpoint carries the options, and they come back.
        var cfgPath = Path.Combine(Dir("cfg"), "config.json");
        var edited = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(cfgPath))!.AsObject();
        edited["lr"] = 7;
        File.WriteAllText(cfgPath, edited.ToJsonString());
        File.SetLastWriteTimeUtc(cfgPath, DateTime.UtcNow.AddDays(-1));
        var (third, t3, log3) = Train(["--resume", Dir("cfg"), "--epochs", "3"]);
        Assert.That(third, Is.EqualTo(TrainOutcome.Completed));
        Assert.That(log3, Does.Contain("rewritten from the checkpoint"));
        Assert.That(t3.Options.Lr, Is.EqualTo(0.1));
    }

    [Test]
    public void ARunThatStoppedBeforeItsFirstCheckpointCanBeStartedAgain()
    {
        // Item 14: it could be neither resumed ("no checkpoint") nor reused ("already holds a run, use --resume").
        var (outcome, t, _) = Train(Common("early", "--epochs", "1", "--lr", "1e30"));
        Assert.That(outcome, Is.EqualTo(TrainOutcome.Diverged));
        Assert.That(t.DivergenceMessage, Does.Contain($"--out {Dir("early")}"));
        Assert.That(File.Exists(Path.Combine(Dir("early"), "metrics.jsonl")), Is.True, "the step before the divergence was logged");
        Assert.That(File.Exists(Path.Combine(Dir("early"), "config.json")), Is.False, "no checkpoint was made with these options");

        var e = Assert.Throws<CheckpointException>(() => Train(["--resume", Dir("early")]));
        Assert.That(e!.Message, Does.Contain("nothing to resume").And.Contain($"--out {Dir("early")}").And.Not.Contain("--resume"));

        var (again, _, log) = Train(Common("early", "--epochs", "1"));
        Assert.That(again, Is.EqualTo(TrainOutcome.Completed));
        Assert.That(log, Does.Contain("stopped before its first checkpoint; starting afresh there"));
        Assert.That(new RunFiles(Dir("early")).ReadSteps().Select(r => r.Step), Is.EqualTo(new long[] { 1, 2, 3 }));

        // Once it has a checkpoint, --out refuses and points at --resume (which works).
        var refuse = Assert.Throws<ArgumentException>(() => Train(Common("early", "--epochs", "1")));
        Assert.That(refuse!.Message, Does.Contain($"--resume {Dir("early")}"));
        // A folder whose config.json is not a run's is not overwritten.
        Directory.CreateDirectory(Dir("foreign"));
        File.WriteAllText(Path.Combine(Dir("foreign"), "config.json"), "{\"mine\": true}");
        Assert.That(() => Train(Common("foreign", "--epochs", "1")), Throws.ArgumentException.With.Message.Contains("was not written by `residual train`"));
        Assert.That(File.ReadAllText(Path.Combine(Dir("foreign"), "config.json")), Is.EqualTo("{\"mine\": true}"));
    }

    [Test]
    public void EvalWarnsAboutNonFiniteWeightsAndRejectsTinyCrops()
    {
        Assert.That(Train(Common("nan-eval", "--epochs", "1")).Outcome, Is.EqualTo(TrainOutcome.Completed));
        var weights = Path.Combine(_root, "nan.safetensors");
        using (var scope = TensorScope.Begin())
        {
            var (_, file) = CheckpointStore.Load(Path.Combine(Dir("nan-eval"), "last.safetensors"));
            using (file)
            {
                var fc = file["fc.weight"].ToFloats();
                fc[3] = float.NaN;
                fc[5] = float.PositiveInfinity;
                var tensors = file.Tensors.Where(kv => !kv.Key.StartsWith(CheckpointStore.OptimizerPrefix, StringComparison.Ordinal))
                    .Select(kv => kv.Key == "fc.weight" ? new KeyValuePair<string, Tensor>(kv.Key, Tensor.FromArray(fc, kv.Value.Shape)) : kv).ToList();
                var meta = file.Metadata.Where(kv => kv.Key is not (CheckpointStore.InfoKey or CheckpointStore.DigestKey)).ToDictionary();
                ResidualEngine.Serialization.SafeTensors.Save(weights, tensors, meta);
            }
        }
        var log = new StringWriter();
        var request = new EvalCommand.EvalRequest(weights, _data, null, false, 8, 0, "cpu", 16);
        EvalCommand.Evaluate(request, log);
        Assert.That(log.ToString(), Does.Contain("warning: weights tensor 'fc.weight' holds 1 NaN and 1 infinite values"));
        Assert.That(log.ToString(), Does.Not.Contain("warning: weights tensor 'conv1.weight'"));
        // Nit: eval took --image-size 1 while train needs at least 8.
        Assert.That(() => EvalCommand.Evaluate(request with { ImageSize = 1 }, TextWriter.Null),
            Throws.ArgumentException.With.Message.Contains("--image-size must be 0").And.Message.Contains("[8, 1024], got 1"));
        Assert.That(ResidualEngine.Tools.Cli.CliApp.Run(["eval", "--checkpoint", weights, "--image-size", "1"], TextWriter.Null, TextWriter.Null), Is.EqualTo(2), "a usage error at the command line");
    }
}
