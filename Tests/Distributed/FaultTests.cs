// Faults in a multi-process run: a rank that throws ends every rank with its message (no rank
// is left waiting in a collective); SIGTERM to `residual train --nproc 2` makes the ranks agree on
// a step, rank 0 write one checkpoint, and every rank exit with 130; that checkpoint resumes in a
// single process with the doubled batch, at the same place in the epoch's sample order.
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;
using NUnit.Framework;
using ResidualEngine.Training;

namespace ResidualEngine.Tests.Distributed;

[NonParallelizable]
public partial class FaultTests
{
    private string _dir = "";

    [SetUp]
    public void MakeDir()
    {
        _dir = Path.Combine(Path.GetTempPath(), $"residual-ddp-fault-{Environment.ProcessId}-{TestContext.CurrentContext.Test.Name}");
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
        Directory.CreateDirectory(_dir);
    }

    [TearDown]
    public void RemoveDir()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    [Test]
    public void ARankThatThrowsEndsEveryRankWithItsMessage()
    {
        var r = MpiJob.Run(MpiJob.Mpirun(2, [.. MpiJob.Program("residual-dist-worker"), "fault", _dir]), _dir);
        Assert.That(r.ExitCode, Is.Not.EqualTo(0), r.ToString());
        Assert.That(r.Output, Does.Contain("residual-dist-worker: rank 1 of 2: error: injected failure on rank 1 after step 2 of epoch 1"), r.ToString());
        // Open MPI also prints "MPI_ABORT was invoked on rank 1" unless its help text fails to render
        // ("ORTE_ERROR_LOG: Data unpack would read past end of buffer", seen under load): assert our own line.
        Assert.That(r.Output, Does.Contain("rank 1 of 2: ending every rank of the job (MPI_Abort, exit code 1)"), "the job was ended from the failing rank");
        Assert.That(r.Output, Does.Not.Contain("rank 0 of 2: error"), "rank 0 did not fail on its own");
    }

    [Test]
    public void SigtermToTheLauncherCheckpointsOnceAndResumesInOneProcess()
    {
        MpiJob.RequireMpirun();
        var run = Path.Combine(_dir, "run");
        string[] common = ["--synth-classes", "2", "--synth-train-per-class", "96", "--synth-val-per-class", "2", "--synth-size", "16",
            "--model", "resnet20", "--workers", "0", "--log-every", "1", "--seed", "3", "--tensorboard", "false", "--out", run];
        using var job = MpiJob.Start([.. MpiJob.Program("residual"), "train", "--nproc", "2", "--epochs", "3", "--batch-size", "4", .. common], _dir);
        // Rank 0 writes a metrics row after every step: once there is one, training is under way.
        var metrics = Path.Combine(run, "metrics.jsonl");
        var limit = System.Diagnostics.Stopwatch.StartNew();
        while (!File.Exists(metrics))
        {
            if (job.HasExited || limit.Elapsed > MpiJob.HangLimit) Assert.Fail($"training did not start:\n{job.OutputSoFar}");
            Thread.Sleep(100);
        }
        Assert.That(kill(job.Pid, 15), Is.EqualTo(0), "SIGTERM to the launcher");
        var r = job.Wait();
        Assert.That(r.ExitCode, Is.EqualTo(130), r.ToString());
        var stops = StoppedLine().Matches(r.Output);
        Assert.That(stops, Has.Count.EqualTo(1), $"one rank (0) checkpoints and says so\n{r}");
        int step = int.Parse(stops[0].Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture);
        Assert.That(r.Output, Does.Not.Contain("exited on signal"), "no rank was killed: each ended by itself");
        var info = CheckpointStore.LoadInfo(Path.Combine(run, "last.safetensors"))!;
        Assert.That((info.Reason, info.WorldSize, info.BatchSize, info.StepInEpoch), Is.EqualTo(("interrupt", 2, 4, step)));

        // One process, twice the batch: the same global batches; it continues where the two stopped.
        var resumed = MpiJob.Run([.. MpiJob.Program("residual"), "train", "--resume", run, "--batch-size", "8", "--epochs", "1"], _dir);
        Assert.That(resumed.ExitCode, Is.EqualTo(0), resumed.ToString());
        Assert.That(resumed.Output, Does.Contain($"at epoch 1 step {step} (global step {step})"), resumed.ToString());
        Assert.That(resumed.Output, Does.Not.Contain("resume: the checkpoint was written by"), "the same global batch needs no re-counting");
        var after = CheckpointStore.LoadInfo(Path.Combine(run, "last.safetensors"))!;
        Assert.That((after.Epoch, after.WorldSize, after.Reason), Is.EqualTo((2, 1, "epoch")));
    }

    [GeneratedRegex(@"stopped \((SIGUSR1|SIGTERM)\) at epoch 1 step (\d+)/24")]
    private static partial Regex StoppedLine();

    [LibraryImport("libc", SetLastError = true)]
    private static partial int kill(int pid, int sig);
}
