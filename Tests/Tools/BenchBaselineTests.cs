// Finding and running the PyTorch baseline: a missing Python, a Python without torch and a
// script that fails all come back as messages (the compare table then shows "n/a"), never as a
// crash; the JSON the script prints parses into the same record ours uses.
using NUnit.Framework;
using ResidualEngine.Tools.Bench;

namespace ResidualEngine.Tests.Tools;

public class BenchBaselineTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp()
    {
        _dir = Path.Combine(Path.GetTempPath(), "residual-bench-tests-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dir);
    }

    [TearDown]
    public void TearDown()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    private string Script(string name, string body)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllText(path, "#!/bin/sh\n" + body + "\n");
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return path;
    }

    [Test]
    public void NoPythonGivesAClearMessage()
    {
        var probe = PythonBaseline.Find([Path.Combine(_dir, "no-such-python"), "no-such-python-on-path-xyz"]);
        Assert.That(probe.Found, Is.False);
        Assert.That(probe.Tried, Has.Count.EqualTo(2));
        Assert.That(probe.Explain(), Does.Contain("no Python with torch").And.Contain("RESIDUAL_PYTHON").And.Contain("no-such-python"));
    }

    [Test]
    public void PythonWithoutTorchIsSkippedAndTheNextOneIsUsed()
    {
        var noTorch = Script("python-no-torch", "echo \"ModuleNotFoundError: No module named 'torch'\" >&2; exit 1");
        var fake = Script("python-fake-torch", "echo 9.9.9");
        var probe = PythonBaseline.Find([noTorch, fake]);
        Assert.That(probe.Python, Is.EqualTo(fake));
        Assert.That(probe.TorchVersion, Is.EqualTo("9.9.9"));
        Assert.That(probe.Tried[0], Does.Contain("no torch"));
    }

    [Test]
    public void EnvironmentOverrideComesFirst()
    {
        var c = PythonBaseline.DefaultCandidates(n => n == PythonBaseline.EnvVar ? "/custom/python" : null);
        Assert.That(c, Is.EqualTo(new[] { "/custom/python", "/opt/torch/.venv/bin/python", "/usr/bin/python3", "python3" }));
        Assert.That(PythonBaseline.DefaultCandidates(_ => null), Has.Count.EqualTo(3));
    }

    [Test]
    public void FailingScriptIsReportedNotThrown()
    {
        var py = Script("python-crash", "echo 'Traceback: boom' >&2; exit 3");
        var (result, error, command) = PythonBaseline.Run(py, "baseline.py", ["--model", "resnet18"], 30_000);
        Assert.That(result, Is.Null);
        Assert.That(error, Does.Contain("exited with 3").And.Contain("boom"));
        Assert.That(command, Does.Contain("--model resnet18"));
    }

    [Test]
    public void ScriptOutputWithoutJsonIsReported()
    {
        var py = Script("python-nojson", "echo hello");
        var (result, error, _) = PythonBaseline.Run(py, "baseline.py", [], 30_000);
        Assert.That(result, Is.Null);
        Assert.That(error, Does.Contain("no JSON"));
    }

    [Test]
    public void BaselineJsonParsesIntoTheSharedRecord()
    {
        // The field names pytorch_baseline.py prints (snake_case), after a warning line.
        var py = Script("python-json", """
            echo 'UserWarning: something'
            cat <<'JSON'
            {"engine": "pytorch", "engine_version": "torch 1.13", "model": "resnet20", "mode": "train", "device": "cpu",
             "batch_size": 2, "image_size": 32, "num_classes": 10, "threads": 2, "warmup": 1, "steps": 2,
             "ms_per_step": {"median": 10.0, "min": 9.0, "p10": 9.2, "p90": 10.8, "max": 11.0, "mean": 10.0},
             "images_per_sec": 200.0, "peak_memory_bytes": 1048576, "peak_memory_kind": "rss", "process_peak_rss_bytes": 5,
             "parameters": 269722, "gmacs_per_image": 0.0406, "gflop_per_image": 0.2436, "gflop_note": "x", "samples_ms": [9.0, 11.0]}
            JSON
            """);
        var (result, error, _) = PythonBaseline.Run(py, "baseline.py", [], 30_000);
        Assert.That(error, Is.Null);
        Assert.That(result!.Engine, Is.EqualTo("pytorch"));
        Assert.That(result.MsPerStep.P90, Is.EqualTo(10.8));
        Assert.That(result.ImagesPerSec, Is.EqualTo(200.0));
        Assert.That(result.Parameters, Is.EqualTo(269722));
        Assert.That(result.SamplesMs, Is.EqualTo(new[] { 9.0, 11.0 }));
    }

    [Test]
    public void MalformedJsonIsAFormatException()
    {
        Assert.Throws<FormatException>(() => BenchResult.FromJson("{\"images_per_sec\": "));
        Assert.Throws<FormatException>(() => BenchResult.FromJson("{}"));
    }
}
