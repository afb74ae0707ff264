// --json on train, eval, info and kernels check: stdout holds exactly one JSON document with the
// documented schema (docs/cli-json.md) and numbers that agree with the run's own files; the
// human-readable lines go to stderr.
using System.Text.Json;
using NUnit.Framework;
using ResidualEngine.Tools.Cli;

namespace ResidualEngine.Tests.Tools;

[NonParallelizable]
public class CliJsonTests
{
    private string _root = "";
    private string _data = "";

    [OneTimeSetUp]
    public void MakeData()
    {
        _root = Directory.CreateTempSubdirectory("clijson-").FullName;
        _data = TinyData.Make(_root, classes: 2, trainPerClass: 8, valPerClass: 3);
    }

    [OneTimeTearDown]
    public void RemoveData() => Directory.Delete(_root, recursive: true);

    internal static (int Rc, string Out, string Err) Capture(params string[] args) => ConsoleCapture.Run(() => CliApp.Run(args));

    private static JsonElement Parse(string text, string schema)
    {
        using var doc = JsonDocument.Parse(text); // the whole of stdout is one document
        var root = doc.RootElement.Clone();
        Assert.That(root.GetProperty("schema").GetString(), Is.EqualTo(schema));
        return root;
    }

    [Test]
    public void TrainAndEvalPrintTheirResultsAsJson()
    {
        var run = Path.Combine(_root, "run");
        var (rc, output, err) = Capture("train", "--data", _data, "--image-size", "16", "--batch-size", "8", "--epochs", "2",
            "--max-steps-per-epoch", "2", "--workers", "1", "--device", "cpu", "--out", run, "--json");
        Assert.That(rc, Is.Zero, err);
        Assert.That(err, Does.Contain("outputs in"), "the human lines went to stderr");
        var t = Parse(output, "residual.train/1");
        Assert.That(t.GetProperty("outcome").GetString(), Is.EqualTo("completed"));
        Assert.That(t.GetProperty("epochs_completed").GetInt32(), Is.EqualTo(2));
        Assert.That(t.GetProperty("history").GetArrayLength(), Is.EqualTo(2));
        Assert.That(t.GetProperty("run_dir").GetString(), Is.EqualTo(run));
        var csv = File.ReadAllLines(Path.Combine(run, "epochs.csv"));
        Assert.That(csv, Has.Length.EqualTo(3), "header + 2 epochs");
        double valTop1 = t.GetProperty("last_epoch").GetProperty("val_top1").GetDouble();
        Assert.That(t.GetProperty("eval").GetProperty("top1").GetDouble(), Is.EqualTo(valTop1));
        Assert.That(t.GetProperty("checkpoints").GetProperty("last").GetString(), Is.EqualTo(Path.Combine(run, "last.safetensors")));

        (rc, output, err) = Capture("eval", "--checkpoint", Path.Combine(run, "last.safetensors"), "--device", "cpu", "--workers", "1", "--json");
        Assert.That(rc, Is.Zero, err);
        Assert.That(err, Does.Contain("evaluating"));
        var e = Parse(output, "residual.eval/1");
        Assert.That(e.GetProperty("model").GetString(), Is.EqualTo("resnet20"));
        Assert.That(e.GetProperty("epoch").GetInt32(), Is.EqualTo(2));
        Assert.That(e.GetProperty("images").GetInt64(), Is.EqualTo(6));
        Assert.That(e.GetProperty("top1").GetDouble(), Is.EqualTo(valTop1), "eval of the last checkpoint reproduces the run's last validation");
        Assert.That(e.GetProperty("top1_error").GetDouble(), Is.EqualTo(1 - valTop1));
    }

    [Test]
    public void InfoPrintsTheMachineAsJson()
    {
        var (rc, output, _) = Capture("info", "--json");
        Assert.That(rc, Is.Zero);
        var j = Parse(output, "residual.info/1");
        Assert.That(j.GetProperty("cpu_cores").GetInt32(), Is.EqualTo(Environment.ProcessorCount));
        Assert.That(j.GetProperty("libraries").EnumerateArray().Select(l => l.GetProperty("name").GetString()), Does.Contain("NVRTC"));
        bool gpu = j.GetProperty("gpu").GetProperty("available").GetBoolean();
        Assert.That(j.GetProperty("gpu").GetProperty("devices").GetArrayLength() > 0, Is.EqualTo(gpu));
    }

    [Test]
    public void KernelsCheckPrintsResultsAsJson()
    {
        var (rc, output, err) = Capture("kernels", "check", "--arch", "sm_80", "--json");
        var j = Parse(output, "residual.kernels-check/1");
        if (rc == 3)
        {
            Assert.That(j.GetProperty("nvrtc").ValueKind, Is.EqualTo(JsonValueKind.Null));
            Assert.That(j.GetProperty("error").GetString(), Is.Not.Empty);
            return;
        }
        Assert.That(rc, Is.Zero, err);
        var results = j.GetProperty("results").EnumerateArray().ToList();
        Assert.That(results, Has.Count.EqualTo(ResidualEngine.Backends.Cuda.KernelLibrary.Sources.Count));
        Assert.That(results.All(r => r.GetProperty("ok").GetBoolean() && r.GetProperty("arch").GetString() == "sm_80"), Is.True);
        Assert.That(j.GetProperty("ok").GetBoolean(), Is.True);
    }
}
