// The experiments on tiny configurations (2 classes of 8-pixel synthetic images, one short epoch):
// they must write the figure and the tables with one row per model and sane values; and their
// options are validated.
using NUnit.Framework;
using ResidualEngine.Models;
using ResidualEngine.Nn;
using ResidualEngine.Tools.Cli;
using ResidualEngine.Tools.Commands;
using ResidualEngine.Tools.Experiments;

namespace ResidualEngine.Tests.Tools;

[NonParallelizable]
public class ExperimentTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp()
    {
        _dir = Path.Combine(Path.GetTempPath(), "residual-experiment-tests-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dir);
    }

    [TearDown]
    public void TearDown()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    private string[] Tiny(params string[] extra) =>
    [
        "--image-size", "8", "--classes", "2", "--train-per-class", "4", "--val-per-class", "2", "--batch-size", "4",
        "--workers", "0", "--data-cache", Path.Combine(_dir, "data"), "--out", Path.Combine(_dir, "out"), .. extra,
    ];

    private static void AssertPng(string path)
    {
        Assert.That(File.Exists(path), Is.True, path);
        var head = File.ReadAllBytes(path).Take(8).ToArray();
        Assert.That(head, Is.EqualTo(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A }), "PNG signature");
    }

    [Test]
    public void DegradationWritesFigureAndTables()
    {
        var o = DegradationOptions.Parse(new Args(Tiny("--shallow", "20", "--deep", "32", "--epochs", "1", "--eval-points", "1")));
        var r = DegradationExperiment.Run(o, "test");
        AssertPng(r.Figure);
        var table = File.ReadAllLines(r.TableCsv);
        Assert.That(table, Has.Length.EqualTo(5), "header + plain-20, plain-32, ResNet-20, ResNet-32");
        Assert.That(table.Skip(1).Select(l => l.Split(',')[0]), Is.EqualTo(new[] { "plain-20", "plain-32", "ResNet-20", "ResNet-32" }));
        foreach (var net in r.Nets)
        {
            var run = net.Runs.Single();
            Assert.That(run.Iterations, Is.EqualTo(2), "8 images in batches of 4, one epoch");
            Assert.That(run.Final.TrainError, Is.InRange(0, 100));
            Assert.That(run.Final.ValError, Is.InRange(0, 100));
        }
        Assert.That(File.ReadAllLines(r.CurvesCsv), Has.Length.EqualTo(1 + 4));
        Assert.That(File.ReadAllText(r.Table), Does.Contain("| plain-32 |").And.Contain("Command: `test`"));
    }

    [Test]
    public void SeedsAreAggregatedAndFinishedRunsAreReused()
    {
        var args = Tiny("--depths", "20", "--seeds", "2", "--iterations", "3", "--eval-points", "3", "--eval-images", "2");
        var log = new List<string>();
        var r = DegradationExperiment.Run(DegradationOptions.Parse(new Args(args)), "test", log.Add);
        Assert.That(r.Nets.Select(n => n.Runs.Count), Is.EqualTo(new[] { 2, 2 }));
        Assert.That(r.Nets[0].Runs.Select(x => x.Seed), Is.EqualTo(new[] { 0, 1 }));
        foreach (var run in r.Nets.SelectMany(n => n.Runs))
        {
            Assert.That(run.Iterations, Is.EqualTo(3), "--iterations over one 2-batch epoch");
            Assert.That(run.Curve.Select(p => p.Iteration), Is.EqualTo(new[] { 1, 2, 3 }));
        }
        // Two seeds of the same net differ (weights and data order), and the table reports their mean.
        var runs = r.Nets[0].Runs;
        Assert.That(runs[0].Curve.Select(p => p.TrainLoss), Is.Not.EqualTo(runs[1].Curve.Select(p => p.TrainLoss)));
        var row = File.ReadAllLines(r.TableCsv)[1].Split(',');
        Assert.That(double.Parse(row[4], System.Globalization.CultureInfo.InvariantCulture),
            Is.EqualTo(Math.Round((runs[0].Final.TrainError + runs[1].Final.TrainError) / 2, 2)).Within(0.006));
        Assert.That(row[3], Is.EqualTo("2"));
        Assert.That(File.ReadAllLines(r.CurvesCsv), Has.Length.EqualTo(1 + 2 * 2 * 3));
        Assert.That(log.Count(l => l.StartsWith("training ", StringComparison.Ordinal)), Is.EqualTo(4));

        // The same invocation again trains nothing: every run comes back from out/runs/.
        log.Clear();
        var again = DegradationExperiment.Run(DegradationOptions.Parse(new Args(args)), "test", log.Add);
        Assert.That(log.Count(l => l.StartsWith("training ", StringComparison.Ordinal)), Is.Zero);
        Assert.That(log.Count(l => l.Contains(": reusing", StringComparison.Ordinal) && l.Contains("runs", StringComparison.Ordinal)), Is.EqualTo(4));
        Assert.That(again.Nets[1].Runs[1].Curve, Is.EqualTo(r.Nets[1].Runs[1].Curve));
        // Another schedule is another run.
        log.Clear();
        DegradationExperiment.Run(DegradationOptions.Parse(new Args([.. args, "--lr", "0.05"])), "test", log.Add);
        Assert.That(log.Count(l => l.StartsWith("training ", StringComparison.Ordinal)), Is.EqualTo(4));
    }

    [Test]
    public void PreActivationRunsEndToEnd()
    {
        var log = new List<string>();
        var o = PreActivationOptions.Parse(new Args(Tiny("--depths", "8", "--iterations", "2", "--eval-points", "2")));
        var r = PreActivationExperiment.Run(o, "test", log.Add);
        AssertPng(r.Figure);
        Assert.That(Path.GetFileName(r.Figure), Is.EqualTo("preact.png"));
        Assert.That(r.Nets.Select(n => n.Net.Label), Is.EqualTo(new[] { "ResNet-8", "pre-act ResNet-8" }));
        Assert.That(r.Nets.Select(n => n.Runs.Single().Iterations), Is.EqualTo(new[] { 2, 2 }));
        // The warm-up, scaled from 400 of 64k, is at least one iteration: the first step runs at lr 0.01.
        Assert.That(r.Nets[0].Runs[0].Curve.Select(p => p.LearningRate), Is.EqualTo(new[] { 0.01, 0.001 }).Within(1e-12));
        Assert.That(File.ReadAllText(r.Table), Does.Contain("lr 0.01 for the first 1"));
    }

    [Test]
    public void TheScheduleIsThePapersScaledToTheRun()
    {
        var s = new Schedule(1, 128, 0.1, 10, 0) { Iterations = 64000 };
        Assert.That(s.LearningRateAt(0, 64000), Is.EqualTo(0.1));
        Assert.That(s.LearningRateAt(31999, 64000), Is.EqualTo(0.1));
        Assert.That(s.LearningRateAt(32000, 64000), Is.EqualTo(0.01).Within(1e-15));
        Assert.That(s.LearningRateAt(47999, 64000), Is.EqualTo(0.01).Within(1e-15));
        Assert.That(s.LearningRateAt(48000, 64000), Is.EqualTo(0.001).Within(1e-15));
        var w = s with { WarmupIterations = 400 };
        Assert.That((w.LearningRateAt(399, 64000), w.LearningRateAt(400, 64000)), Is.EqualTo((0.01, 0.1)));
        Assert.That(s.TotalIterations(390), Is.EqualTo(64000));
        Assert.That((s with { Iterations = 0, Epochs = 3 }).TotalIterations(390), Is.EqualTo(1170));
        // The pre-activation experiment's warm-up: 400 of the paper's 64k iterations, scaled to the run.
        var p = PreActivationOptions.Parse(new Args(["--iterations", "6400"]));
        Assert.That(p.ToComparison(6400).Schedule.WarmupIterations, Is.EqualTo(40));
        Assert.That(PreActivationOptions.Parse(new Args(["--warmup-iterations", "7"])).ToComparison(6400).Schedule.WarmupIterations, Is.EqualTo(7));
    }

    [Test]
    public void PreActivationPairsDifferOnlyInTheUnit()
    {
        var p = PreActivationOptions.Parse(new Args([]));
        var nets = p.ToComparison(1000).Nets;
        Assert.That(nets.Select(n => n.Label), Is.EqualTo(new[] { "ResNet-110", "ResNet-164", "pre-act ResNet-110", "pre-act ResNet-164" }));
        foreach (var d in new[] { 110, 164 })
        {
            var post = PreActivationOptions.Config(d, false);
            var pre = PreActivationOptions.Config(d, true);
            Assert.That(pre with { Name = post.Name, PreActivation = false }, Is.EqualTo(post) .Using<ResNetConfig>((a, b) =>
                a.Block == b.Block && a.Layers.SequenceEqual(b.Layers) && a.Shortcut == b.Shortcut && a.Stem == b.Stem && a.Name == b.Name));
            using var m = new ResNet(post with { NumClasses = 10 });
            Assert.That(m.Config.Layers.Sum() * (post.Block == BlockKind.Basic ? 2 : 3) + 2, Is.EqualTo(d), $"{d} weighted layers");
        }
        Assert.That(PreActivationOptions.Config(110, false).Shortcut, Is.EqualTo(ShortcutOption.A));
        Assert.That(PreActivationOptions.Config(164, true).Block, Is.EqualTo(BlockKind.Bottleneck));
        // The zoo has the same nets by name, with the paper's parameter counts (1.7M for both depths).
        Assert.That(ModelZoo.Describe("preact_resnet110").Parameters, Is.EqualTo(ModelZoo.Describe("resnet110").Parameters).Within(300));
        Assert.That(ModelZoo.Describe("resnet164").Parameters, Is.EqualTo(ModelZoo.Describe("preact_resnet164").Parameters).Within(1000));
        Assert.Throws<ArgumentException>(() => PreActivationOptions.Parse(new Args(["--depths", "100"])));
    }

    [Test]
    public void TheValidationSubsetIsEvenlySpacedAndNormalisationIsMeasured()
    {
        var root = Path.Combine(_dir, "synthetic");
        ResidualEngine.Data.SyntheticImageNet.Generate(root, new ResidualEngine.Data.SyntheticImageNet.Options(Classes: 3, TrainPerClass: 4, ValPerClass: 5, Size: 8));
        var data = ExperimentData.Open(new DataSpec { Folder = root, ImageSize = 8, Workers = 0 });
        using (var all = data.ValLoader(100)) Assert.That(all.Epoch(0).Sum(b => { using (b) return b.Count; }), Is.EqualTo(15));
        using (var some = data.ValLoader(100, 6))
        {
            using var batch = some.Epoch(0).Single();
            // 6 of 15 images sorted by class: indices 0, 2, 5, 7, 10, 12 -> two of each class.
            Assert.That(batch.Labels.ToDoubles(), Is.EqualTo(new double[] { 0, 0, 1, 1, 2, 2 }));
        }
        var n = data.Normalization;
        Assert.That(new[] { n.MeanR, n.MeanG, n.MeanB }, Has.All.InRange(0.05f, 0.95f));
        Assert.That(new[] { n.StdR, n.StdG, n.StdB }, Has.All.InRange(0.01f, 0.6f));
        Assert.That(n, Is.Not.EqualTo(ResidualEngine.Data.Normalization.Cifar10));
    }

    [Test]
    public void GradientsWritesFigureAndPerBlockCsv()
    {
        var o = GradientsOptions.Parse(new Args(Tiny("--model", "plain20", "--model", "resnet20", "--steps", "1")));
        var r = GradientsExperiment.Run(o, "test");
        AssertPng(r.Figure);
        // 2 models x (init, after 1 step) x 9 blocks.
        Assert.That(r.Measurements, Has.Count.EqualTo(4));
        Assert.That(File.ReadAllLines(r.Csv), Has.Length.EqualTo(1 + 4 * 9));
        foreach (var m in r.Measurements)
        {
            Assert.That(m.Blocks.Select(b => b.Block).First(), Is.EqualTo("layer1.0"));
            Assert.That(m.Blocks.Select(b => b.Block).Last(), Is.EqualTo("layer3.2"));
            Assert.That(m.Blocks.All(b => b.GradNorm > 0 && double.IsFinite(b.GradNorm)), Is.True, $"{m.Model} step {m.Step}");
            Assert.That(m.Blocks.All(b => b.ActivationStd > 0 && double.IsFinite(b.ActivationStd)), Is.True);
            Assert.That(m.Layers, Has.Count.EqualTo(19), "19 conv layers in a 20-layer CIFAR net");
        }
    }

    [Test]
    public void BlockWalkReproducesForward()
    {
        using var scope = TensorScope.Begin();
        foreach (var name in new[] { "resnet20", "plain18" })
        {
            using var model = ModelZoo.Create(name, 3, seed: 1);
            var x = Tensor.Randn(new Shape(2, 3, 32, 32), new Random(2));
            Assert.DoesNotThrow(() => GradientsExperiment.CheckWalk(model, x), name);
        }
    }

    [Test]
    public void SingleFolderIsSplitPerClass()
    {
        int[] labels = [.. Enumerable.Repeat(0, 20), .. Enumerable.Repeat(1, 3), .. Enumerable.Repeat(2, 1)];
        var (train, val) = ExperimentData.Split(labels);
        Assert.That(val, Is.EqualTo(new[] { 9, 19, 22 }), "every 10th image of class 0, the last of class 1, none of a one-image class");
        Assert.That(train.Length + val.Length, Is.EqualTo(labels.Length));
        Assert.That(train.Intersect(val), Is.Empty);

        var root = Path.Combine(_dir, "synthetic");
        ResidualEngine.Data.SyntheticImageNet.Generate(root, new ResidualEngine.Data.SyntheticImageNet.Options(Classes: 2, TrainPerClass: 10, ValPerClass: 1, Size: 8));
        var data = ExperimentData.Open(new DataSpec { Folder = Path.Combine(root, "train"), ImageSize = 8, Workers = 0 });
        Assert.That((data.TrainCount, data.ValCount, data.NumClasses), Is.EqualTo((18, 2, 2)));
        using var loader = data.ValLoader(4);
        Assert.That(loader.Epoch(0).Sum(b => { using (b) return b.Count; }), Is.EqualTo(2));
    }

    [Test]
    public void OptionsAreValidated()
    {
        Assert.Throws<ArgumentException>(() => DegradationOptions.Parse(new Args(["--shallow", "56", "--deep", "20"])));
        var e = Assert.Throws<ArgumentException>(() => DegradationOptions.Parse(new Args(["--deep", "57"])));
        Assert.That(e!.Message, Does.Contain("plain57"));
        Assert.Throws<ArgumentException>(() => DegradationOptions.Parse(new Args(["--augment", "mixup"])));
        Assert.That(DegradationOptions.Parse(new Args(["--augment", "crop-flip"])).Data.Augment, Is.EqualTo("cifar"));
        Assert.That(DegradationOptions.Parse(new Args([])).Data.Augment, Is.EqualTo("cifar"), "the paper's small-image augmentation by default");
        Assert.That(DegradationOptions.Parse(new Args([])).Depths, Is.EqualTo(new[] { 20, 32, 44, 56 }));
        Assert.That(DegradationOptions.Parse(new Args(["--seeds", "0,3,5"])).Seeds, Is.EqualTo(new[] { 0, 3, 5 }));
        Assert.That(DegradationOptions.Parse(new Args(["--seeds", "3"])).Seeds, Is.EqualTo(new[] { 0, 1, 2 }));
        Assert.Throws<ArgumentException>(() => DegradationOptions.Parse(new Args(["--seeds", "1,1"])));
        Assert.Throws<ArgumentException>(() => DegradationOptions.Parse(new Args(["--depths", "20,20"])));
        Assert.Throws<ArgumentException>(() => GradientsOptions.Parse(new Args(["--model", "notanet"])));
        Assert.That(CliApp.Run(["experiment", "nonsense"], TextWriter.Null, TextWriter.Null), Is.EqualTo(2));
        Assert.That(CliApp.Run(["experiment", "degradation", "--bogus", "1"], TextWriter.Null, TextWriter.Null), Is.EqualTo(2));
        Assert.That(CliApp.Run(["experiment", "degradation", "--deep", "57"], TextWriter.Null, TextWriter.Null), Is.EqualTo(2));
        var imagenet = DegradationOptions.Parse(new Args(["--imagenet"], "imagenet"));
        Assert.That(imagenet.Models.Select(m => m.Model), Is.EqualTo(new[] { "plain18", "plain34", "resnet18", "resnet34" }));
        Assert.That(imagenet.Data.ImageSize, Is.EqualTo(64));
    }
}
