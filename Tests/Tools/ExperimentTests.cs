// The experiments on tiny configurations (2 classes of 8-pixel synthetic images, one short epoch):
// they must write the figure and the tables with one row per model and sane values; and their
// options are validated.
using NUnit.Framework;
using ResidualEngine.Models;
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
        Assert.That(table, Has.Length.EqualTo(5), "header + plain20, plain32, resnet20, resnet32");
        Assert.That(table.Skip(1).Select(l => l.Split(',')[0]), Is.EqualTo(new[] { "plain20", "plain32", "resnet20", "resnet32" }));
        foreach (var (_, run) in r.Runs)
        {
            Assert.That(run.Iterations, Is.EqualTo(2), "8 images in batches of 4, one epoch");
            Assert.That(run.Final.TrainError, Is.InRange(0, 100));
            Assert.That(run.Final.ValError, Is.InRange(0, 100));
        }
        Assert.That(File.ReadAllLines(r.CurvesCsv), Has.Length.EqualTo(1 + 4));
        Assert.That(File.ReadAllText(r.Table), Does.Contain("| plain32 |").And.Contain("Command: `test`"));
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
        Assert.Throws<ArgumentException>(() => GradientsOptions.Parse(new Args(["--model", "notanet"])));
        Assert.That(CliApp.Run(["experiment", "nonsense"], TextWriter.Null, TextWriter.Null), Is.EqualTo(2));
        Assert.That(CliApp.Run(["experiment", "degradation", "--bogus", "1"], TextWriter.Null, TextWriter.Null), Is.EqualTo(2));
        Assert.That(CliApp.Run(["experiment", "degradation", "--deep", "57"], TextWriter.Null, TextWriter.Null), Is.EqualTo(2));
        var imagenet = DegradationOptions.Parse(new Args(["--imagenet"], "imagenet"));
        Assert.That(imagenet.Models.Select(m => m.Model), Is.EqualTo(new[] { "plain18", "plain34", "resnet18", "resnet34" }));
        Assert.That(imagenet.Data.ImageSize, Is.EqualTo(64));
    }
}
