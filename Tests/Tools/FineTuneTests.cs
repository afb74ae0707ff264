// Fine-tuning (`residual train --weights FILE [--freeze]`): weights written by torch.save load by
// name, a head of another class count is replaced and re-initialised (and the log says so),
// --freeze keeps the whole backbone (BN statistics included) bitwise as loaded while the head
// trains, files that do not fit or are hostile are clear errors. With Debian's torch present,
// a real torchvision ResNet-18 written by torch.save(model.state_dict()) gives torchvision's
// logits and fine-tunes to a 4-class data set.
using NUnit.Framework;
using ResidualEngine.Models;
using ResidualEngine.Serialization;
using ResidualEngine.Tests.Serialization;
using ResidualEngine.Training;

namespace ResidualEngine.Tests.Tools;

[NonParallelizable]
public class FineTuneTests
{
    private string _root = "";
    private string _data = "";

    [OneTimeSetUp]
    public void MakeData()
    {
        _root = Directory.CreateTempSubdirectory("finetune-").FullName;
        _data = TinyData.Make(_root);
    }

    [OneTimeTearDown]
    public void RemoveData() => Directory.Delete(_root, recursive: true);

    private static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "Fixtures", "pth", name);

    private static ResNet Tiny(int classes, int seed = 1) =>
        new(ModelZoo.Config("resnet20") with { Name = "tiny_cifar", Layers = [1, 1, 1], Widths = [4, 8, 16], NumClasses = classes }, seed);

    [Test]
    public void ATorchSavedFileInitialisesTheBackboneAndAHeadOfAnotherClassCountIsReplaced()
    {
        using var file = TorchZipReader.Load(Fixture("tiny_cifar_f32.pth"));
        using var fresh = Tiny(4, seed: 5);
        using var model = Tiny(4, seed: 5);
        var r = Pretrained.Load(model, Fixture("tiny_cifar_f32.pth"));
        Assert.That((r.HeadReplaced, r.FileClasses), Is.EqualTo((true, 10)));
        Assert.That(r.Description, Does.Contain("head has 10 classes and this data set 4").And.Contain("replaced and re-initialised"));
        foreach (var (k, t) in model.StateDict())
        {
            var expected = k.StartsWith("fc.", StringComparison.Ordinal) ? fresh.StateDict()[k] : file[k];
            Assert.That(t.ToDoubles(), Is.EqualTo(expected.ToDoubles()), k);
        }

        using var same = Tiny(10);
        Assert.That(Pretrained.Load(same, Fixture("tiny_cifar_ckpt.pth")).HeadReplaced, Is.False, "a training checkpoint's nested state dict, same head");
        Assert.That(same.StateDict()["fc.weight"].ToDoubles(), Is.EqualTo(file["fc.weight"].ToDoubles()));
    }

    [Test]
    public void FilesThatDoNotFitOrAreHostileAreClearErrors()
    {
        using var resnet20 = ModelZoo.Create("resnet20", numClasses: 4);
        Assert.That(() => Pretrained.Load(resnet20, Fixture("tiny_cifar_f32.pth")),
            Throws.ArgumentException.With.Message.Contains("does not fit resnet20").And.Message.Contains("missing keys"));
        var evil = Path.Combine(_root, "evil.pth");
        File.WriteAllBytes(evil, TorchPickleWriter.Zip(new TorchPickleWriter().Global("os", "system").Mark().Str("rm -rf /").Tuple().Op('R').Stop().Bytes));
        Assert.That(() => Pretrained.Load(resnet20, evil), Throws.ArgumentException.With.Message.StartsWith("option --weights: evil.pth").And.Message.Contains("'os.system' is not allowed"));
        Assert.That(() => Pretrained.Load(resnet20, Path.Combine(_root, "absent.pth")), Throws.ArgumentException.With.Message.Contains("does not exist"));
        var o = new TrainOptions { Data = _data, Freeze = true };
        Assert.That(o.Validate, Throws.ArgumentException.With.Message.Contains("--freeze needs --weights"));
    }

    private string Args(string run, string weights, params string[] more) =>
        string.Join('\u0001', new[]
        {
            "--data", _data, "--model", "resnet20", "--image-size", "16", "--batch-size", "8", "--max-steps-per-epoch", "3", "--epochs", "1",
            "--workers", "1", "--device", "cpu", "--seed", "3", "--out", Path.Combine(_root, run), "--weights", weights,
        }.Concat(more));

    private (TrainOutcome, string) Train(string args)
    {
        var log = new StringWriter();
        var (outcome, _) = ResidualEngine.Tools.Commands.TrainCommand.Execute(args.Split('\u0001'), log, new ProgressDisplay(log, false), StopSignal.Manual());
        return (outcome, log.ToString());
    }

    [Test]
    public void FreezeKeepsTheBackboneAsLoadedAndTrainsTheHead()
    {
        var src = Path.Combine(_root, "resnet20-10.safetensors");
        using (var m = ModelZoo.Create("resnet20", numClasses: 10, seed: 11)) Weights.SaveWeights(m, src);
        using var source = SafeTensors.Load(src);

        var (outcome, log) = Train(Args("frozen", src, "--freeze"));
        Assert.That(outcome, Is.EqualTo(TrainOutcome.Completed), log);
        Assert.That(log, Does.Contain("head has 10 classes and this data set 4"));
        using var frozen = SafeTensors.Load(Path.Combine(_root, "frozen", "last.safetensors"));
        int compared = 0;
        foreach (var (k, t) in source.Tensors)
        {
            if (k.StartsWith("fc.", StringComparison.Ordinal)) continue;
            Assert.That(frozen[k].ToDoubles(), Is.EqualTo(t.ToDoubles()), $"{k} stays as loaded");
            compared++;
        }
        Assert.That(compared, Is.GreaterThan(100));
        using var fresh = ModelZoo.Create("resnet20", numClasses: 4, seed: 3);
        Assert.That(frozen["fc.weight"].ToDoubles(), Is.Not.EqualTo(fresh.StateDict()["fc.weight"].ToDoubles()), "the head trained");
        Assert.That(frozen.Tensors.Keys.Count(k => k.StartsWith(CheckpointStore.OptimizerPrefix, StringComparison.Ordinal)), Is.EqualTo(2),
            "momentum for fc.weight and fc.bias only");

        var (free, _) = Train(Args("free", src));
        Assert.That(free, Is.EqualTo(TrainOutcome.Completed));
        using var trained = SafeTensors.Load(Path.Combine(_root, "free", "last.safetensors"));
        Assert.That(trained["conv1.weight"].ToDoubles(), Is.Not.EqualTo(source["conv1.weight"].ToDoubles()), "without --freeze the backbone trains");
        Assert.That(trained["bn1.running_mean"].ToDoubles(), Is.Not.EqualTo(source["bn1.running_mean"].ToDoubles()));
    }

    private const string TorchvisionScript = """
        import sys
        try:
            import torch, torchvision
        except Exception as e:
            print(e); sys.exit(3)
        torch.manual_seed(0)
        m = torchvision.models.resnet18()
        with torch.no_grad():
            for mod in m.modules():
                if isinstance(mod, torch.nn.BatchNorm2d):
                    mod.running_mean.uniform_(-0.1, 0.1); mod.running_var.uniform_(0.5, 1.5); mod.num_batches_tracked.fill_(7)
        m.eval()
        x = torch.randn(2, 3, 64, 64)
        with torch.no_grad():
            y = m(x)
        torch.save(m.state_dict(), sys.argv[1] + "/resnet18.pth")
        torch.save({"x": x, "logits": y}, sys.argv[1] + "/io.pt")
        """;

    [Test]
    public void TorchvisionResNet18FromTorchSaveGivesTorchvisionsLogitsAndFineTunes()
    {
        // Always: the committed torch.save fixture gives torch's logits (the same reader as below).
        using (var f = TorchZipReader.Load(Fixture("tiny_cifar_io.pt")))
        using (var m = Tiny(10))
        {
            Pretrained.Load(m, Fixture("tiny_cifar_f32.pth"));
            m.Eval();
            using var ng = ResidualEngine.Autograd.GradMode.NoGrad();
            using var scope = TensorScope.Begin();
            Assert.That(m.Forward(f["x"]).ToDoubles(), Is.EqualTo(f["logits_f32"].ToDoubles()).Within(1e-5));
        }
        // With Debian's torch and torchvision: a real torchvision ResNet-18 (1000 classes).
        var dir = Directory.CreateTempSubdirectory("tv-pth-").FullName;
        try
        {
            if (PythonTorch.Run(TorchvisionScript, dir) is null)
            {
                TestContext.Out.WriteLine($"{PythonTorch.Python} with torch and torchvision is not present: checked the committed fixture only");
                return;
            }
            var pth = Path.Combine(dir, "resnet18.pth");
            using (var io = TorchZipReader.Load(Path.Combine(dir, "io.pt")))
            using (var m = ModelZoo.Create("resnet18"))
            {
                Assert.That(Pretrained.Load(m, pth).HeadReplaced, Is.False);
                m.Eval();
                using var ng = ResidualEngine.Autograd.GradMode.NoGrad();
                using var scope = TensorScope.Begin();
                Assert.That(m.Forward(io["x"]).ToDoubles(), Is.EqualTo(io["logits"].ToDoubles()).Within(1e-4));
            }
            var (outcome, log) = Train(string.Join('\u0001', new[]
            {
                "--data", _data, "--model", "resnet18", "--image-size", "32", "--batch-size", "4", "--max-steps-per-epoch", "1", "--epochs", "1",
                "--workers", "1", "--device", "cpu", "--out", Path.Combine(_root, "tv"), "--weights", pth,
            }));
            Assert.That(outcome, Is.EqualTo(TrainOutcome.Completed), log);
            Assert.That(log, Does.Contain("head has 1000 classes and this data set 4"));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
