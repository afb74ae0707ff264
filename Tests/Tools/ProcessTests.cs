// The `residual` process itself under faults (issue 10, items 6, 7, 9): the built residual.dll is
// run with `dotnet` in a temporary folder, each run bounded in time (a hang fails the test rather
// than the suite). Failures end with one line on stderr and exit code 1, with the trace only on
// request; a second writer is refused naming the first one's PID, and a writer killed with -9
// leaves no lock behind; SIGTERM during setup stops the run at once with 130. Also the top-level
// handler in-process: which exceptions give which exit code and line.
using System.Diagnostics;
using System.Runtime.InteropServices;
using NUnit.Framework;
using ResidualEngine.Tools;
using ResidualEngine.Tools.Cli;
using ResidualEngine.Training;

namespace ResidualEngine.Tests.Tools;

[NonParallelizable]
public partial class ProcessTests
{
    private string _root = "";
    private string _data = "";

    [OneTimeSetUp]
    public void MakeData()
    {
        _root = Directory.CreateTempSubdirectory("process-").FullName;
        _data = TinyData.Make(_root);
    }

    [OneTimeTearDown]
    public void RemoveData() => Directory.Delete(_root, recursive: true);

    private static string Dll => Path.Combine(TestContext.CurrentContext.TestDirectory, "residual.dll");

    private Process Start(string[] args, Dictionary<string, string>? env = null)
    {
        var psi = new ProcessStartInfo("dotnet") { WorkingDirectory = _root, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(Dll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        psi.Environment.Remove(Program.VerboseVariable);
        foreach (var (k, v) in env ?? new()) psi.Environment[k] = v;
        return Process.Start(psi)!;
    }

    /// <summary>Runs to the end (at most two minutes, else the test fails); returns exit code, stdout, stderr.</summary>
    private (int Rc, string Out, string Err) Run(string[] args, Dictionary<string, string>? env = null)
    {
        using var p = Start(args, env);
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromMinutes(2)))
        {
            p.Kill(entireProcessTree: true);
            Assert.Fail($"residual {string.Join(" ", args)} did not end within two minutes");
        }
        return (p.ExitCode, stdout.Result, stderr.Result);
    }

    private string[] Train(string run, params string[] more) =>
    [
        "train", "--data", _data, "--model", "resnet20", "--image-size", "16", "--batch-size", "8", "--max-steps-per-epoch", "2",
        "--workers", "0", "--device", "cpu", "--out", Path.Combine(_root, run), .. more,
    ];

    private static string[] Lines(string s) => s.Split('\n', StringSplitOptions.RemoveEmptyEntries);

    [Test]
    public void AFailureEndsWithOneLineAndExitCodeOne()
    {
        // Item 6: an empty class folder escaped Main as InvalidDataException with a stack trace (rc 134).
        var bad = Path.Combine(_root, "empty-class");
        foreach (var split in new[] { "train", "val" })
        {
            Directory.CreateDirectory(Path.Combine(bad, split, "empty"));
            Directory.CreateDirectory(Path.Combine(bad, split, "full"));
            File.WriteAllBytes(Path.Combine(bad, split, "full", "a.jpg"), ResidualEngine.Data.SyntheticImageNet.RenderImage(new(2, 1, 1, 16), true, 0, 0));
        }
        string[] args = ["train", "--data", bad, "--device", "cpu", "--out", Path.Combine(_root, "never")];
        var (rc, _, err) = Run(args);
        Assert.That(rc, Is.EqualTo(1), err);
        Assert.That(Lines(err), Has.Length.EqualTo(1), err);
        Assert.That(err, Does.StartWith("residual train: error: class folder").And.Contain("holds no images"));

        var (rcV, _, errV) = Run(args, new() { [Program.VerboseVariable] = "1" });
        Assert.That(rcV, Is.EqualTo(1));
        Assert.That(errV, Does.Contain("   at ResidualEngine."), "RESIDUAL_VERBOSE=1 shows the trace");
        var (rcF, _, errF) = Run([.. args, "--verbose"]);
        Assert.That((rcF, errF.Contains("   at ResidualEngine.", StringComparison.Ordinal)), Is.EqualTo((1, true)), "so does --verbose");

        // data check on an unreadable image: listed, exit 1, no crash.
        File.WriteAllText(Path.Combine(bad, "train", "empty", "x.jpg"), "not an image");
        File.WriteAllText(Path.Combine(bad, "val", "empty", "y.jpg"), "not an image either");
        var (rcC, outC, errC) = Run(["data", "check", "--root", bad]);
        Assert.That(rcC, Is.EqualTo(1), errC);
        Assert.That(errC, Is.Empty);
        Assert.That(outC, Does.Contain("unreadable: " + Path.Combine(bad, "train", "empty", "x.jpg")).And.Contain("2 unreadable files"));
    }

    [Test]
    public void TheTopLevelHandlerMapsExceptionsToOneLineAndAnExitCode()
    {
        (int, string) G(Exception e, bool verbose = false)
        {
            var w = new StringWriter();
            int rc = Program.Guard("train", () => throw e, w, verbose);
            return (rc, w.ToString());
        }
        var (rc, text) = G(new NullReferenceException("Object reference not set to an instance of an object."));
        Assert.That(rc, Is.EqualTo(1));
        Assert.That(Lines(text), Has.Length.EqualTo(1));
        Assert.That(text, Does.StartWith("residual train: internal error: NullReferenceException:").And.Contain("RESIDUAL_VERBOSE=1"));
        (rc, text) = G(new AggregateException(new InvalidDataException("too many unreadable images in a row (51)\nlast: x.jpg")));
        Assert.That((rc, text.TrimEnd()), Is.EqualTo((1, "residual train: error: too many unreadable images in a row (51) last: x.jpg")));
        Assert.That(G(new UsageException("--a and --b exclude each other")).Item1, Is.EqualTo(2));
        Assert.That(G(new OperationCanceledException()).Item1, Is.EqualTo(130));
        (rc, text) = G(new InvalidCastException("boom"), verbose: true);
        Assert.That(rc, Is.EqualTo(1));
        Assert.That(text, Does.Contain("System.InvalidCastException: boom"));
    }

    [Test]
    public void ASecondWriterIsRefusedAndAKilledWriterLeavesNoLock()
    {
        // Item 7: two processes in one run directory interleaved or crashed each other.
        var dir = Path.Combine(_root, "shared");
        using var first = Start(Train("shared", "--epochs", "1000"));
        var firstOut = first.StandardOutput.ReadToEndAsync(); // drained, so its pipe never fills
        var firstErr = first.StandardError.ReadToEndAsync();
        var ckpt = Path.Combine(dir, "last.safetensors");
        WaitFor(() => File.Exists(ckpt) && RunLock.Holder(dir) is not null, first, "the first run's checkpoint", () => firstErr.IsCompleted ? firstErr.Result : "");
        var (rc, _, err) = Run(Train("shared", "--epochs", "1000"));
        Assert.That(rc, Is.EqualTo(1), err);
        Assert.That(err, Does.Contain($"pid {first.Id}").And.Contain("in use by another residual process"));
        var (rcR, _, errR) = Run(["train", "--resume", dir, "--epochs", "1000"]);
        Assert.That((rcR, errR.Contains($"pid {first.Id}", StringComparison.Ordinal)), Is.EqualTo((1, true)), errR);

        first.Kill(); // SIGKILL: no chance to clean up
        first.WaitForExit();
        int done = CheckpointStore.FindForResume(dir).Info.Epoch;
        var (rc2, out2, err2) = Run(["train", "--resume", dir, "--epochs", done.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        Assert.That(rc2, Is.EqualTo(0), err2);
        Assert.That(out2, Does.Contain("resuming resnet20"));
    }

    [Test]
    public void SigtermDuringSetupStopsAtOnceWith130()
    {
        // Item 9: SIGTERM was ignored until the first training step; a run stuck in setup could only be killed with -9.
        // Setup here: generating a synthetic set far too large to finish.
        using var p = Start(["train", "--synthetic", "--synth-classes", "2", "--synth-train-per-class", "200000", "--synth-val-per-class", "1",
            "--synth-size", "8", "--device", "cpu", "--out", Path.Combine(_root, "sigterm")]);
        var stderr = p.StandardError.ReadToEndAsync();
        string? line;
        while ((line = p.StandardOutput.ReadLine()) is not null && !line.Contains("generating a synthetic", StringComparison.Ordinal)) { }
        Assert.That(line, Is.Not.Null, "the run announced the generation");
        Assert.That(kill(p.Id, 15), Is.Zero);
        var rest = p.StandardOutput.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromMinutes(2)))
        {
            p.Kill();
            Assert.Fail("SIGTERM did not stop the setup");
        }
        Assert.That(p.ExitCode, Is.EqualTo(130), stderr.Result);
        Assert.That(rest.Result + stderr.Result, Does.Contain("stopped (SIGTERM) during setup"));
        Assert.That(Directory.Exists(Path.Combine(_root, "sigterm")), Is.False, "nothing was written to the run directory");
        var synth = Directory.GetDirectories(Path.Combine(_root, "data"), "synthetic-c2-t200000*").Single();
        Assert.That(ResidualEngine.Data.OwnedFolder.ReadManifest(synth)!.Complete, Is.False, "the interrupted set is marked incomplete (and is replaced next time)");
    }

    private static void WaitFor(Func<bool> condition, Process p, string what, Func<string> stderr)
    {
        var deadline = DateTime.UtcNow.AddMinutes(2);
        while (!condition())
        {
            if (p.HasExited)
            {
                p.WaitForExit();
                Assert.Fail($"the process ended (rc {p.ExitCode}) before {what} appeared: {stderr()}");
            }
            if (DateTime.UtcNow > deadline)
            {
                p.Kill();
                Assert.Fail($"{what} did not appear within two minutes");
            }
            Thread.Sleep(50);
        }
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int kill(int pid, int signal);
}
