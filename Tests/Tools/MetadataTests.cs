// Metadata travels with weights: every checkpoint records model, classes, input size and
// normalisation in its safetensors header, so a bare copy (no .json, no run directory) evaluates
// at the size it was trained at without flags; malformed metadata is a clear error.
using NUnit.Framework;
using ResidualEngine.Models;
using ResidualEngine.Serialization;
using ResidualEngine.Tools.Commands;
using ResidualEngine.Training;

namespace ResidualEngine.Tests.Tools;

[NonParallelizable]
public class MetadataTests
{
    [Test]
    public void MetadataRoundTripsAndMalformedEntriesAreNamed()
    {
        var m = new ModelMetadata { Model = "resnet50", NumClasses = 3, Classes = ["cat", "dog", "ünï"], ImageSize = 160, Mean = [0.5, 0.5, 0.5], Std = [0.25, 0.25, 0.25] };
        var back = ModelMetadata.FromDictionary(m.ToDictionary())!;
        Assert.That((back.Model, back.NumClasses, back.ImageSize), Is.EqualTo(("resnet50", 3, 160)));
        Assert.That(back.Classes, Is.EqualTo(m.Classes));
        Assert.That((back.Mean, back.Std), Is.EqualTo((m.Mean, m.Std)));
        Assert.That(ModelMetadata.FromDictionary(new Dictionary<string, string> { ["format"] = "pt" }), Is.Null, "weights from elsewhere");

        var bad = m.ToDictionary();
        bad[ModelMetadata.ImageSizeKey] = "-3";
        Assert.That(() => ModelMetadata.FromDictionary(bad, "f"), Throws.InstanceOf<FormatException>().With.Message.Contains("residual.image_size = '-3'"));
        bad = m.ToDictionary();
        bad[ModelMetadata.ClassesKey] = "[\"a\"]";
        Assert.That(() => ModelMetadata.FromDictionary(bad, "f"), Throws.InstanceOf<FormatException>().With.Message.Contains("lists 1 classes but residual.num_classes is 3"));
        bad = m.ToDictionary();
        bad[ModelMetadata.StdKey] = "[1, 0, 1]";
        Assert.That(() => ModelMetadata.FromDictionary(bad, "f"), Throws.InstanceOf<FormatException>().With.Message.Contains("std positive"));
        bad = m.ToDictionary();
        bad[ModelMetadata.MeanKey] = "{";
        Assert.That(() => ModelMetadata.FromDictionary(bad, "f"), Throws.InstanceOf<FormatException>().With.Message.Contains("residual.mean is not valid"));
    }

    [Test]
    public void ABareCopyOfACheckpointEvaluatesAtItsTrainingSize()
    {
        var root = Directory.CreateTempSubdirectory("meta-").FullName;
        try
        {
            var data = TinyData.Make(root);
            var run = Path.Combine(root, "run");
            var (outcome, trainer) = TrainerTests.Train(["--data", data, "--model", "resnet20", "--image-size", "16", "--batch-size", "8", "--max-steps-per-epoch", "2",
                "--epochs", "1", "--workers", "1", "--device", "cpu", "--out", run]);
            Assert.That(outcome, Is.EqualTo(TrainOutcome.Completed));

            // A strict load of a training checkpoint skips its optimizer state.
            using (var m = ModelZoo.Create("resnet20", numClasses: 4)) Weights.LoadWeights(m, Path.Combine(run, "last.safetensors"), strict: true);

            using (var f = SafeTensors.Load(Path.Combine(run, "last.safetensors")))
            {
                var meta = ModelMetadata.FromDictionary(f.Metadata)!;
                Assert.That((meta.Model, meta.NumClasses, meta.ImageSize), Is.EqualTo(("resnet20", 4, 16)));
                Assert.That(meta.Classes, Has.Count.EqualTo(4));
                Assert.That(meta.Mean, Is.EqualTo(ModelMetadata.ImageNetMean));
            }

            // Copied away from its run directory and .json: model, classes and size still come with it (resnet20's native size would be 32).
            var copy = Path.Combine(root, "copy", "weights.safetensors");
            Directory.CreateDirectory(Path.GetDirectoryName(copy)!);
            File.Copy(Path.Combine(run, "last.safetensors"), copy);
            var log = new StringWriter();
            var r = EvalCommand.Evaluate(new EvalCommand.EvalRequest(copy, data, null, false, 8, 1, "cpu"), log);
            Assert.That(log.ToString(), Does.Contain("16 px"));
            Assert.That(r.Top1, Is.EqualTo(trainer.LastEval!.Top1), "the same numbers as the run's own validation");

            // Another data set's class folders are refused, not silently mislabelled.
            var other = TinyData.Make(Path.Combine(root, "other"), classes: 4);
            Directory.Move(Path.Combine(other, "val", Directory.GetDirectories(Path.Combine(other, "val")).Select(Path.GetFileName).First()!),
                Path.Combine(other, "val", "zz_renamed"));
            Assert.That(() => EvalCommand.Evaluate(new EvalCommand.EvalRequest(copy, other, null, false, 8, 1, "cpu"), TextWriter.Null),
                Throws.ArgumentException.With.Message.Contains("not the ones the model was trained on"));
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }
}
