// `residual export` from the command line: a trained run directory to ONNX (run by ONNX Runtime,
// logits equal to the checkpoint's model, the run's input size and classes recorded) and to bare
// safetensors (strict load, no optimizer state, metadata kept); existing files are replaced only
// with --force and the checkpoint itself never. With Debian's torch: the exported safetensors
// load strictly into torchvision's resnet18 with the same logits, and a torchvision .pth written
// by torch.save exports to ONNX that ONNX Runtime runs to torchvision's logits.
using Microsoft.ML.OnnxRuntime;
using NUnit.Framework;
using ResidualEngine.Models;
using ResidualEngine.Serialization;
using ResidualEngine.Tools.Cli;
using ResidualEngine.Training;
using ModelMetadata = ResidualEngine.Models.ModelMetadata;

namespace ResidualEngine.Tests.Tools;

[NonParallelizable]
public class ExportCommandTests
{
    private string _root = "";
    private string _run = "";

    [OneTimeSetUp]
    public void TrainATinyRun()
    {
        _root = Directory.CreateTempSubdirectory("export-").FullName;
        var data = TinyData.Make(_root);
        _run = Path.Combine(_root, "run");
        var (outcome, _) = TrainerTests.Train(["--data", data, "--model", "resnet20", "--image-size", "16", "--batch-size", "8", "--max-steps-per-epoch", "2",
            "--epochs", "1", "--workers", "1", "--device", "cpu", "--out", _run]);
        Assert.That(outcome, Is.EqualTo(TrainOutcome.Completed));
    }

    [OneTimeTearDown]
    public void Remove() => Directory.Delete(_root, recursive: true);

    private static (int Code, string Out, string Err) Cli(params string[] args)
    {
        var (o, e) = (new StringWriter(), new StringWriter());
        int code = CliApp.Run(args, o, e);
        return (code, o.ToString(), e.ToString());
    }

    private static (int Code, string Out, string Err) Program(params string[] args) => ConsoleCapture.Run(() => ResidualEngine.Tools.Program.Main(args));

    [Test]
    public void ARunExportsToOnnxThatOnnxRuntimeRunsToOurLogits()
    {
        var onnx = Path.Combine(_root, "run.onnx");
        var r = Cli("export", "--checkpoint", _run, "--format", "onnx", "--out", onnx);
        Assert.That(r.Code, Is.Zero, r.Err);
        Assert.That(r.Out, Does.Contain("input (batch, 3, 16, 16)"));
        using var loaded = LoadedModel.Open(_run);
        using var session = new InferenceSession(onnx);
        Assert.That(session.InputMetadata[ResidualEngine.Training.Export.OnnxExporter.InputName].Dimensions, Is.EqualTo(new[] { -1, 3, 16, 16 }));
        Assert.That(session.ModelMetadata.CustomMetadataMap[ModelMetadata.ClassesKey], Does.StartWith("["));
        var rng = new Random(3);
        var x = Enumerable.Range(0, 2 * 3 * 16 * 16).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        float[] ours;
        using (TensorScope.Begin())
        using (ResidualEngine.Autograd.GradMode.NoGrad())
            ours = loaded.Model.Forward(Tensor.FromArray(x, new Shape(2, 3, 16, 16))).ToFloats();
        Assert.That(OnnxExportTests.RunOnnx(session, x, 2, 16), Is.EqualTo(ours).Within(1e-4));
    }

    [Test]
    public void ARunExportsToBareSafetensorsWithItsDescription()
    {
        var st = Path.Combine(_root, "weights.safetensors");
        Assert.That(Cli("export", "--checkpoint", _run, "--format", "safetensors", "--out", st).Code, Is.Zero);
        using var f = SafeTensors.Load(st);
        Assert.That(f.Tensors.Keys.Any(k => k.StartsWith(CheckpointStore.OptimizerPrefix, StringComparison.Ordinal)), Is.False);
        var meta = ModelMetadata.FromDictionary(f.Metadata)!;
        Assert.That((meta.Model, meta.NumClasses, meta.ImageSize, meta.Classes.Count), Is.EqualTo(("resnet20", 4, 16, 4)));
        using var m = ModelZoo.Create("resnet20", numClasses: 4);
        m.LoadStateDict(f.Tensors); // strict
        using var last = SafeTensors.Load(Path.Combine(_run, "best.safetensors"));
        Assert.That(f["layer3.0.conv2.weight"].ToDoubles(), Is.EqualTo(last["layer3.0.conv2.weight"].ToDoubles()));
    }

    [Test]
    public void ExistingFilesAreReplacedOnlyWithForceAndNeverTheCheckpoint()
    {
        var target = Path.Combine(_root, "keep.onnx");
        File.WriteAllText(target, "precious");
        var r = Program("export", "--checkpoint", _run, "--format", "onnx", "--out", target);
        Assert.That((r.Code, r.Err), Is.EqualTo((1, $"residual export: error: option --out: '{target}' exists; pass --force to replace it{Environment.NewLine}")));
        Assert.That(File.ReadAllText(target), Is.EqualTo("precious"));
        Assert.That(Cli("export", "--checkpoint", _run, "--format", "onnx", "--out", target, "--force").Code, Is.Zero);
        Assert.That(new FileInfo(target).Length, Is.GreaterThan(1000));

        var best = Path.Combine(_run, "best.safetensors");
        var before = File.ReadAllBytes(best);
        r = Program("export", "--checkpoint", best, "--format", "safetensors", "--out", best, "--force");
        Assert.That(r.Err, Does.Contain("is the checkpoint being exported"));
        Assert.That(File.ReadAllBytes(best), Is.EqualTo(before));
        Assert.That(Cli("export", "--checkpoint", _run, "--format", "tflite", "--out", target).Code, Is.EqualTo(CliApp.UsageError));
        Assert.That(Cli("export", "--checkpoint", _run, "--format", "onnx", "--out", target, "--opset", "9").Code, Is.EqualTo(CliApp.UsageError));
    }

    private const string TorchvisionScript = """
        import json, struct, sys
        try:
            import numpy as np, torch, torchvision
        except Exception as e:
            print(e); sys.exit(3)
        mode, d = sys.argv[1], sys.argv[2]
        if mode == "load":   # our safetensors export -> torchvision resnet18, strict
            with open(d + "/export.safetensors", "rb") as f:
                n = struct.unpack("<Q", f.read(8))[0]; header = json.loads(f.read(n)); buf = f.read()
            dt = {"F32": np.float32, "I64": np.int64}
            sd = {k: torch.from_numpy(np.frombuffer(buf[v["data_offsets"][0]:v["data_offsets"][1]], dtype=dt[v["dtype"]]).reshape(v["shape"]).copy())
                  for k, v in header.items() if k != "__metadata__"}
            m = torchvision.models.resnet18(num_classes=5)
            m.load_state_dict(sd, strict=True)
        else:                # a torchvision .pth written by torch.save
            torch.manual_seed(1)
            m = torchvision.models.resnet18(num_classes=5)
            with torch.no_grad():
                for mod in m.modules():
                    if isinstance(mod, torch.nn.BatchNorm2d):
                        mod.running_mean.uniform_(-0.1, 0.1); mod.running_var.uniform_(0.5, 1.5)
            torch.save(m.state_dict(), d + "/tv.pth")
        m.eval()
        x = torch.from_numpy(np.fromfile(d + "/x.f32", dtype=np.float32).reshape(2, 3, 64, 64))
        with torch.no_grad():
            m(x).numpy().astype(np.float32).tofile(d + "/torch_logits.f32")
        """;

    [Test]
    public void TorchvisionReadsOurSafetensorsAndOurOnnxMatchesTorchvisionWherePresent()
    {
        var dir = Directory.CreateTempSubdirectory("export-tv-").FullName;
        try
        {
            var rng = new Random(5);
            var x = Enumerable.Range(0, 2 * 3 * 64 * 64).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
            File.WriteAllBytes(Path.Combine(dir, "x.f32"), x.SelectMany(BitConverter.GetBytes).ToArray());
            float[] ours;
            using (var m = ModelZoo.Create("resnet18", numClasses: 5, seed: 8))
            {
                OnnxExportTests.Perturb(m, 3);
                var src = Path.Combine(dir, "ours.safetensors");
                Weights.SaveWeights(m, src, new ModelMetadata { Model = "resnet18", NumClasses = 5, ImageSize = 64 });
                Assert.That(Cli("export", "--checkpoint", src, "--format", "safetensors", "--out", Path.Combine(dir, "export.safetensors")).Code, Is.Zero);
                m.Eval();
                using (TensorScope.Begin())
                using (ResidualEngine.Autograd.GradMode.NoGrad())
                    ours = m.Forward(Tensor.FromArray(x, new Shape(2, 3, 64, 64))).ToFloats();
            }
            if (PythonTorch.Run(TorchvisionScript, "load", dir) is null)
            {
                TestContext.Out.WriteLine("torch/torchvision not present: the python half was not run (the ONNX and safetensors checks above and in the other tests stand)");
                return;
            }
            Assert.That(Floats(Path.Combine(dir, "torch_logits.f32")), Is.EqualTo(ours).Within(1e-4), "torchvision runs our exported weights");

            Assert.That(PythonTorch.Run(TorchvisionScript, "save", dir), Is.Not.Null);
            var onnx = Path.Combine(dir, "tv.onnx");
            var r = Cli("export", "--checkpoint", Path.Combine(dir, "tv.pth"), "--model", "resnet18", "--format", "onnx", "--out", onnx, "--image-size", "64");
            Assert.That(r.Code, Is.Zero, r.Err);
            using var session = new InferenceSession(onnx);
            Assert.That(OnnxExportTests.RunOnnx(session, x, 2, 64), Is.EqualTo(Floats(Path.Combine(dir, "torch_logits.f32"))).Within(1e-4),
                "torchvision .pth -> our ONNX -> ONNX Runtime gives torchvision's logits");
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    private static float[] Floats(string path)
    {
        var b = File.ReadAllBytes(path);
        var f = new float[b.Length / 4];
        Buffer.BlockCopy(b, 0, f, 0, b.Length);
        return f;
    }
}
