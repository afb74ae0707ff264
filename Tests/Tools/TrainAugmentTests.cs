// `residual train --augment cifar`: the small-image recipe (pad 4 + random crop + flip, eval the
// centre view) is selectable, recorded in config.json, and `residual eval` picks the matching
// view from the run, so it reproduces the run's validation numbers exactly.
using NUnit.Framework;
using ResidualEngine.Tools.Cli;
using ResidualEngine.Tools.Commands;
using ResidualEngine.Training;

namespace ResidualEngine.Tests.Tools;

[NonParallelizable]
public class TrainAugmentTests
{
    [Test]
    public void CifarAugmentationTrainsAndEvalUsesItsView()
    {
        var root = Directory.CreateTempSubdirectory("augment-").FullName;
        try
        {
            var data = TinyData.Make(root, size: 16);
            var run = Path.Combine(root, "run");
            var (outcome, t) = TrainerTests.Train(["--data", data, "--model", "resnet20", "--image-size", "16", "--batch-size", "8",
                "--max-steps-per-epoch", "3", "--workers", "1", "--device", "cpu", "--seed", "3", "--epochs", "1", "--augment", "cifar", "--out", run]);
            Assert.That(outcome, Is.EqualTo(TrainOutcome.Completed));
            Assert.That(File.ReadAllText(Path.Combine(run, "config.json")), Does.Contain("\"augment\": \"cifar\""));
            var row = t.History.Single();
            var r = EvalCommand.Evaluate(new EvalCommand.EvalRequest(run, null, null, false, 8, 1, "cpu"), TextWriter.Null);
            Assert.That(r.Top1, Is.EqualTo(row.ValTop1));
            Assert.That(r.Loss, Is.EqualTo(row.ValLoss).Within(1e-9), "the centre view, not resize + centre crop");
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    [Test]
    public void AugmentIsValidated()
    {
        Assert.That(TrainCli.Parse(["--augment", "cifar"]).Augment, Is.EqualTo("cifar"));
        Assert.That(TrainCli.Parse([]).Augment, Is.EqualTo("imagenet"));
        Assert.That(() => TrainCli.Parse(["--augment", "autoaugment"]), Throws.InstanceOf<UsageException>().With.Message.Contains("--augment"));
    }
}
