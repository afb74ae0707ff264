// `residual train` options: defaults, the three layers (resumed run config < --config file <
// command line), flags, bare --resume, and validation errors that name the offending option.
using NUnit.Framework;
using ResidualEngine.Tools.Cli;
using ResidualEngine.Training;

namespace ResidualEngine.Tests.Tools;

public class TrainOptionsTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp() => _dir = Directory.CreateTempSubdirectory("trainopts-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    private string Json(string name, string text)
    {
        var p = Path.Combine(_dir, name);
        File.WriteAllText(p, text);
        return p;
    }

    [Test]
    public void DefaultsAreSyntheticAndValid()
    {
        var o = TrainCli.Parse([]);
        Assert.That(o.Synthetic, Is.True);
        Assert.That(o.Momentum, Is.EqualTo(0.9));
        Assert.That(o.WeightDecay, Is.EqualTo(1e-4));
        Assert.That(o.Device, Is.EqualTo("auto"));
        Assert.That(o.Resume, Is.Null);
        Assert.That(o.SyntheticDir(), Does.Contain("synthetic-c10-").And.Contain("-s64-"));
    }

    [Test]
    public void CommandLineValuesAndFlagsAreRead()
    {
        var o = TrainCli.Parse(["--model", "resnet18", "--epochs=9", "--batch-size", "16", "--lr", "0.05", "--nesterov",
            "--no-bn-weight-decay", "--schedule", "step", "--lr-steps", "3,6", "--label-smoothing", "0.1", "--device", "cpu", "--seed", "7"]);
        Assert.That(o.Model, Is.EqualTo("resnet18"));
        Assert.That(o.Epochs, Is.EqualTo(9));
        Assert.That(o.BatchSize, Is.EqualTo(16));
        Assert.That(o.Lr, Is.EqualTo(0.05));
        Assert.That(o.Nesterov && o.NoBnWeightDecay, Is.True);
        Assert.That(o.LrSteps, Is.EqualTo(new[] { 3, 6 }));
        Assert.That(o.LabelSmoothing, Is.EqualTo(0.1));
        Assert.That(o.Seed, Is.EqualTo(7));
    }

    [Test]
    public void ConfigFileIsOverriddenByTheCommandLine()
    {
        var cfg = Json("c.json", """{ "epochs": 12, "batch-size": 8, "lr-steps": [4, 8], "schedule": "step", "nesterov": true, "lr": 0.2 }""");
        var o = TrainCli.Parse(["--config", cfg, "--batch-size", "32", "--nesterov=false"]);
        Assert.That(o.Epochs, Is.EqualTo(12), "from the file");
        Assert.That(o.LrSteps, Is.EqualTo(new[] { 4, 8 }), "array form");
        Assert.That(o.BatchSize, Is.EqualTo(32), "command line wins");
        Assert.That(o.Nesterov, Is.False, "a switch can be turned off on the command line");
        Assert.That(o.Lr, Is.EqualTo(0.2));
    }

    [Test]
    public void WrittenConfigReadsBackToTheSameOptions()
    {
        var o = TrainCli.Parse(["--epochs", "5", "--lr", "0.0375", "--schedule", "plateau", "--nesterov", "--image-size", "48", "--max-image-pixels", "5000000000"]);
        Assert.That(o.MaxImagePixels, Is.EqualTo(5_000_000_000L), "the pixel cap is an option (64-bit)");
        var p = Json("config.json", o.ToJsonText());
        var back = TrainCli.Parse(["--config", p]);
        Assert.That(back.ToJsonText(), Is.EqualTo(o.ToJsonText()));
        Assert.That(TrainCli.Parse([]).MaxImagePixels, Is.EqualTo(178_956_970L), "PIL's limit by default");
    }

    [Test]
    public void ResumedRunConfigIsTheBottomLayer()
    {
        var run = Json("run.json", TrainCli.Parse(["--epochs", "3", "--batch-size", "12", "--model", "resnet32"]).ToJsonText());
        var o = TrainCli.Parse(["--resume", "--epochs", "6"], runConfig: run);
        Assert.That(o.Resume, Is.EqualTo(""), "bare --resume");
        Assert.That(o.Epochs, Is.EqualTo(6));
        Assert.That(o.BatchSize, Is.EqualTo(12));
        Assert.That(o.Model, Is.EqualTo("resnet32"));
        Assert.That(TrainCli.Parse(["--epochs", "4", "--resume"]).Resume, Is.EqualTo(""), "bare --resume as the last word");
        Assert.That(TrainCli.Parse(["--resume", "runs/x"]).Resume, Is.EqualTo("runs/x"));
    }

    [TestCase(new[] { "--batch-size", "0" }, "--batch-size")]
    [TestCase(new[] { "--batch-size", "many" }, "--batch-size")]
    [TestCase(new[] { "--epochs", "0" }, "--epochs")]
    [TestCase(new[] { "--lr", "-1" }, "--lr")]
    [TestCase(new[] { "--momentum", "1.5" }, "--momentum")]
    [TestCase(new[] { "--schedule", "linear" }, "--lr-scheduler")]
    [TestCase(new[] { "--lr-scheduler", "onecycle" }, "--lr-scheduler")]
    [TestCase(new[] { "--lr-warmup-method", "cubic" }, "--lr-warmup-method")]
    [TestCase(new[] { "--lr-warmup-decay", "2" }, "--lr-warmup-decay")]
    [TestCase(new[] { "--lr-step-size", "0" }, "--lr-step-size")]
    [TestCase(new[] { "--lr-gamma", "0" }, "--lr-gamma")]
    [TestCase(new[] { "--drop-path", "1" }, "--drop-path")]
    [TestCase(new[] { "--opt", "adam" }, "--opt")]
    [TestCase(new[] { "--opt", "adamw", "--nesterov" }, "--nesterov")]
    [TestCase(new[] { "--opt", "lars", "--no-bn-weight-decay" }, "--no-bn-weight-decay")]
    [TestCase(new[] { "--opt-betas", "0.9" }, "--opt-betas")]
    [TestCase(new[] { "--clip-grad-norm", "-1" }, "--clip-grad-norm")]
    [TestCase(new[] { "--schedule", "step", "--lr-steps", "6,3" }, "--lr-steps")]
    [TestCase(new[] { "--schedule", "cosine", "--lr-steps", "3" }, "--lr-steps")]
    [TestCase(new[] { "--warmup-epochs", "8", "--epochs", "5" }, "--lr-warmup-epochs")]
    [TestCase(new[] { "--label-smoothing", "1" }, "--label-smoothing")]
    [TestCase(new[] { "--device", "tpu" }, "--device")]
    [TestCase(new[] { "--data", "/no/such/dir/anywhere" }, "does not exist")]
    [TestCase(new[] { "--colour", "blue" }, "--colour")]
    [TestCase(new[] { "--epochs" }, "--epochs")]
    [TestCase(new[] { "stray" }, "stray")]
    [TestCase(new[] { "--nesterov", "--momentum", "0" }, "--nesterov")]
    [TestCase(new[] { "--config", "/no/such/config.json" }, "--config")]
    [TestCase(new[] { "--mixup-alpha", "-0.2" }, "--mixup-alpha")]
    [TestCase(new[] { "--cutmix-alpha", "x" }, "--cutmix-alpha")]
    [TestCase(new[] { "--cutmix-alpha", "1", "--batch-size", "1" }, "--batch-size 2")]
    [TestCase(new[] { "--auto-augment", "augmix" }, "--auto-augment")]
    [TestCase(new[] { "--ra-magnitude", "31" }, "--ra-magnitude")]
    [TestCase(new[] { "--ra-magnitude", "12" }, "apply to --auto-augment ra")]
    [TestCase(new[] { "--auto-augment", "ta_wide", "--ra-num-ops", "3" }, "apply to --auto-augment ra")]
    [TestCase(new[] { "--random-erase", "1.5" }, "--random-erase")]
    [TestCase(new[] { "--model-ema-decay", "1" }, "--model-ema-decay")]
    [TestCase(new[] { "--model-ema-steps", "0" }, "--model-ema-steps")]
    [TestCase(new[] { "--model-ema-decay", "0.999" }, "need --model-ema")]
    [TestCase(new[] { "--model-ema-steps", "8" }, "need --model-ema")]
    public void BadOptionsGiveErrorsNamingTheOption(string[] args, string expected)
    {
        Assert.That(() => TrainCli.Parse(args), Throws.InstanceOf<ArgumentException>().With.Message.Contains(expected));
    }

    [Test]
    public void RecipeOptionsAreReadWithTorchvisionsDefaults()
    {
        var d = TrainCli.Parse([]);
        Assert.That((d.MixupAlpha, d.CutmixAlpha, d.AutoAugment, d.RandomErase, d.ModelEma), Is.EqualTo((0.0, 0.0, "none", 0.0, false)));
        Assert.That((d.RaNumOps, d.RaMagnitude, d.ModelEmaSteps, d.ModelEmaDecay), Is.EqualTo((2, 9, 32, 0.99998)), "torchvision's defaults");
        var o = TrainCli.Parse(["--mixup-alpha", "0.2", "--cutmix-alpha", "1.0", "--auto-augment", "TA_WIDE", "--random-erase", "0.1",
            "--model-ema", "--model-ema-steps", "16", "--model-ema-decay", "0.9999"]);
        Assert.That((o.MixupAlpha, o.CutmixAlpha, o.AutoAugment, o.RandomErase), Is.EqualTo((0.2, 1.0, "ta_wide", 0.1)));
        Assert.That((o.ModelEma, o.ModelEmaSteps, o.ModelEmaDecay), Is.EqualTo((true, 16, 0.9999)));
        var ra = TrainCli.Parse(["--auto-augment", "ra", "--ra-magnitude", "15", "--ra-num-ops", "3"]);
        Assert.That((ra.AutoAugment, ra.RaMagnitude, ra.RaNumOps), Is.EqualTo(("ra", 15, 3)));
        Assert.That(TrainingSetup.SampleAugmentation(ra)!.Policy, Is.TypeOf<ResidualEngine.Data.RandAugment>().With.Property("Magnitude").EqualTo(15));
        Assert.That(TrainingSetup.SampleAugmentation(o)!.Erasing!.Probability, Is.EqualTo(0.1));
        Assert.That(TrainingSetup.BatchAugmentation(o), Is.TypeOf<ResidualEngine.Data.MixupCutmix>().With.Property("SwitchProbability").EqualTo(0.5));
        Assert.That(TrainingSetup.BatchAugmentation(d), Is.Null);
        Assert.That(TrainingSetup.SampleAugmentation(d), Is.Null);
        // The written config reads back to the same recipe.
        var back = TrainCli.Parse(["--config", Json("recipe.json", o.ToJsonText())]);
        Assert.That((back.MixupAlpha, back.CutmixAlpha, back.AutoAugment, back.RandomErase, back.ModelEma, back.ModelEmaSteps, back.ModelEmaDecay),
            Is.EqualTo((0.2, 1.0, "ta_wide", 0.1, true, 16, 0.9999)));
    }

    [Test]
    public void ImageSizeDefaultsToTheModelsNativeSize()
    {
        Assert.That(TrainCli.Parse([]).ImageSize, Is.Zero, "resolved when the model is known");
        Assert.That(TrainingSetup.ResolveImageSize(0, "resnet20", 64), Is.EqualTo(32), "CIFAR net on synthetic data");
        Assert.That(TrainingSetup.ResolveImageSize(0, "resnet18", 64), Is.EqualTo(64), "ImageNet net, capped by the synthetic images");
        Assert.That(TrainingSetup.ResolveImageSize(0, "ResNet-50", null), Is.EqualTo(224), "ImageNet net on real data");
        Assert.That(TrainingSetup.ResolveImageSize(160, "resnet50", null), Is.EqualTo(160), "explicit size wins");
    }

    [Test]
    public void DataAndSyntheticExcludeEachOther()
    {
        Assert.That(() => TrainCli.Parse(["--data", _dir, "--synthetic"]), Throws.InstanceOf<ArgumentException>().With.Message.Contains("--synthetic"));
    }

    [Test]
    public void DataDirWithoutSplitsIsExplained()
    {
        Assert.That(() => TrainCli.Parse(["--data", _dir]), Throws.InstanceOf<ArgumentException>().With.Message.Contains("val/"));
        Directory.CreateDirectory(Path.Combine(_dir, "val"));
        Assert.That(() => TrainCli.Parse(["--data", _dir]), Throws.InstanceOf<ArgumentException>().With.Message.Contains("train/"));
        Assert.That(TrainCli.Parse(["--data", _dir, "--eval-only"]).Data, Is.EqualTo(_dir), "eval only needs val/ alone");
    }

    [Test]
    public void BadConfigFilesAreExplained()
    {
        Assert.That(() => TrainCli.Parse(["--config", Json("a.json", "{ nope")]), Throws.InstanceOf<ArgumentException>().With.Message.Contains("not valid JSON"));
        Assert.That(() => TrainCli.Parse(["--config", Json("b.json", "[1]")]), Throws.InstanceOf<ArgumentException>().With.Message.Contains("JSON object"));
        Assert.That(() => TrainCli.Parse(["--config", Json("c.json", """{"epoch": 3}""")]), Throws.InstanceOf<ArgumentException>().With.Message.Contains("unknown key 'epoch'"));
        Assert.That(() => TrainCli.Parse(["--config", Json("d.json", """{"nesterov": 1}""")]), Throws.InstanceOf<ArgumentException>().With.Message.Contains("true or false"));
        Assert.That(() => TrainCli.Parse(["--config", Json("e.json", """{"epochs": true}""")]), Throws.InstanceOf<ArgumentException>().With.Message.Contains("takes a value"));
        Assert.That(() => TrainCli.Parse(["--config", Json("f.json", """{"resume": "x"}""")]), Throws.InstanceOf<ArgumentException>().With.Message.Contains("command line"));
        Assert.That(() => TrainCli.Parse(["--config", Json("g.json", """{"batch-size": 0}""")]), Throws.InstanceOf<ArgumentException>().With.Message.Contains("--batch-size"));
    }
}
