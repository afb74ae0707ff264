// `residual train --model-ema` end to end on tiny synthetic data: during the warm-up epochs the
// average copies the weights (so after a one-epoch warm-up it equals them and evaluates the same),
// afterwards it averages; checkpoints carry it under "model_ema." with its counter; every epoch
// logs a "val_ema" row; `residual eval --ema` reproduces that row from the checkpoint, and asking
// for the average of a run without one is a clear error; `residual export --ema` writes it. (Exact resume with --model-ema is in
// TrainerTests.ResumingGivesBitwiseTheSameRun.)
using NUnit.Framework;
using ResidualEngine.Serialization;
using ResidualEngine.Tools.Commands;
using ResidualEngine.Training;
using ResidualEngine.Training.Export;

namespace ResidualEngine.Tests.Tools;

[NonParallelizable]
public class ModelEmaTrainingTests
{
    [Test]
    public void TheAverageCopiesDuringWarmUpThenAveragesAndEvalReadsIt()
    {
        var root = Directory.CreateTempSubdirectory("ema-").FullName;
        try
        {
            var data = TinyData.Make(root);
            var run = Path.Combine(root, "run");
            string[] common = ["--data", data, "--model", "resnet20", "--image-size", "16", "--batch-size", "8", "--max-steps-per-epoch", "3",
                "--workers", "1", "--device", "cpu", "--seed", "4", "--model-ema", "--model-ema-steps", "1", "--model-ema-decay", "0.9",
                "--lr-warmup-epochs", "1"];
            // Two epochs, stopped after the first (the warm-up): the checkpoint holds epoch 1.
            var (outcome, t) = TrainerTests.Train([.. common, "--epochs", "2", "--out", run], (tr, stop) => tr.AfterStep = (e, s) => { if (e == 1 && s == 3) stop.Request("test"); });
            Assert.That(outcome, Is.EqualTo(TrainOutcome.Interrupted));
            var last = Path.Combine(run, "last.safetensors");
            var (_, file) = CheckpointStore.Load(last);
            using (file)
            {
                var ema = CheckpointStore.Section(file.Tensors, CheckpointStore.EmaPrefix);
                Assert.That(ema.Keys, Does.Contain(ModelEma.CounterName).And.Contain("fc.weight").And.Contain("bn1.running_mean"));
                Assert.That(ema[ModelEma.CounterName].Item(), Is.Zero, "reset after every update of the warm-up");
                foreach (var (k, v) in file.Tensors.Where(kv => CheckpointStore.IsModelKey(kv.Key)))
                    Assert.That(ema[k].ToDoubles(), Is.EqualTo(v.ToDoubles()), $"{k}: in the warm-up the average is a copy");
            }
            Assert.That(t.LastEmaEval!.Loss, Is.EqualTo(t.LastEval!.Loss), "a copy evaluates the same");

            // A second epoch after the warm-up: now it averages, and eval --ema reads it back.
            (outcome, t) = TrainerTests.Train(["--resume", run]);
            Assert.That(outcome, Is.EqualTo(TrainOutcome.Completed));
            (_, file) = CheckpointStore.Load(last);
            using (file)
            {
                var ema = CheckpointStore.Section(file.Tensors, CheckpointStore.EmaPrefix);
                Assert.That(ema[ModelEma.CounterName].Item(), Is.EqualTo(3), "three updates since the warm-up ended");
                Assert.That(ema["fc.weight"].ToDoubles(), Is.Not.EqualTo(file.Tensors["fc.weight"].ToDoubles()));
            }
            var rows = File.ReadAllLines(Path.Combine(run, "metrics.jsonl")).Where(l => l.Contains("\"val_ema\"", StringComparison.Ordinal)).ToList();
            Assert.That(rows, Has.Count.EqualTo(2), "one val_ema row per epoch");
            var emaEval = EvalCommand.Run(new EvalCommand.EvalRequest(last, null, null, false, 8, 1, "cpu") { Ema = true }, TextWriter.Null);
            Assert.That(emaEval.Ema, Is.True);
            Assert.That(emaEval.Result.Loss, Is.EqualTo(t.LastEmaEval!.Loss).Within(1e-9));
            Assert.That(emaEval.Result.Top1, Is.EqualTo(t.LastEmaEval.Top1));
            Assert.That(emaEval.ToJson()["ema"]!.GetValue<bool>(), Is.True);
            var plain = EvalCommand.Evaluate(new EvalCommand.EvalRequest(last, null, null, false, 8, 1, "cpu"), TextWriter.Null);
            Assert.That(plain.Loss, Is.EqualTo(t.LastEval!.Loss).Within(1e-9), "without --ema: the weights");
            Assert.That(TrainCommand.Summary(t, outcome)["eval_ema"]!["top1"]!.GetValue<double>(), Is.EqualTo(t.LastEmaEval.Top1));

            // A strict load of the checkpoint as weights skips the average (and the optimizer state).
            using (var m = ResidualEngine.Models.ModelZoo.Create("resnet20", numClasses: 4)) ResidualEngine.Models.Weights.LoadWeights(m, last, strict: true);

            // export --ema writes the average as plain weights.
            var exported = Path.Combine(root, "ema.safetensors");
            ModelExport.Run(new ExportRequest(last, ExportFormat.Safetensors, exported) { Ema = true });
            using (var w = SafeTensors.Load(exported))
            using (var ck = SafeTensors.Load(last))
            {
                Assert.That(w.Tensors.Keys.Any(k => !CheckpointStore.IsModelKey(k)), Is.False);
                Assert.That(w["fc.weight"].ToDoubles(), Is.EqualTo(ck[CheckpointStore.EmaPrefix + "fc.weight"].ToDoubles()));
            }

            // A run without the average: --ema says so.
            var bare = Path.Combine(root, "bare");
            Assert.That(TrainerTests.Train(["--data", data, "--model", "resnet20", "--image-size", "16", "--batch-size", "8", "--max-steps-per-epoch", "1",
                "--workers", "1", "--device", "cpu", "--epochs", "1", "--out", bare]).Outcome, Is.EqualTo(TrainOutcome.Completed));
            Assert.That(() => EvalCommand.Evaluate(new EvalCommand.EvalRequest(bare, null, null, false, 8, 1, "cpu") { Ema = true }, TextWriter.Null),
                Throws.ArgumentException.With.Message.Contains("no moving average").And.Message.Contains("--model-ema"));
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }
}
