// The shared training step: bitwise the same update as forward + cross-entropy + backward + SGD
// written out by hand; hooks run at their points in order and can replace inputs, targets and
// the loss; the learning rate reaches the optimizer; nothing but the returned loss and logits
// outlives a step; bad input gets a clear error. Plus the shared evaluation on a loader.
using NUnit.Framework;
using ResidualEngine.Models;
using ResidualEngine.Nn;
using ResidualEngine.Nn.Optim;
using ResidualEngine.Training;

namespace ResidualEngine.Tests.Tools;

public class TrainingStepTests
{
    private static (Tensor X, Tensor Y) Batch(int n = 4, int size = 16, int classes = 5, int seed = 7)
    {
        var rng = new Random(seed);
        var x = TensorScope.Detach(Tensor.Randn(new Shape(n, 3, size, size), rng));
        var y = TensorScope.Detach(Tensor.FromArray(Enumerable.Range(0, n).Select(_ => (long)rng.Next(classes)).ToArray(), new Shape(n)));
        return (x, y);
    }

    private static double[] Flat(Module m) => m.StateDict().Values.SelectMany(t => t.ToDoubles()).ToArray();

    [Test]
    public void StepEqualsTheHandWrittenStepBitwise()
    {
        var (x, y) = Batch();
        using (x) using (y)
        using (var a = ModelZoo.Create("resnet20", numClasses: 5, seed: 3))
        using (var b = ModelZoo.Create("resnet20", numClasses: 5, seed: 3))
        using (var sa = Sgd.ForModule(a, 0.05, 0.9, 1e-4))
        using (var sb = Sgd.ForModule(b, 0.05, 0.9, 1e-4))
        {
            var step = new TrainingStep(a, sa, TrainingStep.CrossEntropy(0.1));
            var losses = new List<double>();
            for (int i = 0; i < 3; i++)
            {
                using var scope = TensorScope.Begin();
                losses.Add(step.Run(x, y, learningRate: 0.05 / (i + 1)).LossValue());
            }
            var manual = new List<double>();
            b.Train();
            for (int i = 0; i < 3; i++)
            {
                using var scope = TensorScope.Begin();
                sb.LearningRate = 0.05 / (i + 1);
                sb.ZeroGrad();
                var loss = Ops.SoftmaxCrossEntropy(b.Forward(x), y, 0.1);
                loss.Backward();
                sb.Step();
                manual.Add(loss.Item());
            }
            Assert.That(losses, Is.EqualTo(manual));
            Assert.That(Flat(a), Is.EqualTo(Flat(b)), "weights, BN statistics after three steps");
            Assert.That(sa.StepCount, Is.EqualTo(3));
            Assert.That(sa.LearningRate, Is.EqualTo(0.05 / 3));
        }
    }

    private sealed class Recorder(List<string> log, string name) : ITrainingHook
    {
        public void BeforeForward(StepContext s) => log.Add($"{name}:before-forward:{s.StepIndex}:{s.Logits is null}");
        public void AfterForward(StepContext s) => log.Add($"{name}:after-forward:{s.Loss!.Numel}");
        public void BeforeOptimizerStep(StepContext s) =>
            log.Add($"{name}:before-step:{s.Model.Parameters().All(p => p.Grad is not null)}:{s.Optimizer.StepCount}");
        public void AfterOptimizerStep(StepContext s) => log.Add($"{name}:after-step:{s.Optimizer.StepCount}");
    }

    /// <summary>Scales the gradients (what clip-grad-norm does) and swaps the targets for fixed ones.</summary>
    private sealed class ZeroGradients : ITrainingHook
    {
        public void BeforeOptimizerStep(StepContext s)
        {
            foreach (var p in s.Model.Parameters()) p.Backend.Fill(p.Grad!, 0);
        }
    }

    [Test]
    public void HooksRunAtTheirPointsInOrder()
    {
        var (x, y) = Batch();
        using (x) using (y)
        using (var m = ModelZoo.Create("resnet20", numClasses: 5, seed: 1))
        using (var sgd = Sgd.ForModule(m, 0.1))
        {
            var log = new List<string>();
            var step = new TrainingStep(m, sgd) { Hooks = { new Recorder(log, "a"), new Recorder(log, "b") } };
            m.Eval();
            using (TensorScope.Begin()) step.Run(x, y);
            Assert.That(log, Is.EqualTo(new[]
            {
                "a:before-forward:0:True", "b:before-forward:0:True", "a:after-forward:1", "b:after-forward:1",
                "a:before-step:True:0", "b:before-step:True:0", "a:after-step:1", "b:after-step:1",
            }));
            Assert.That(m.Training, Is.True, "the step trains in training mode");
        }
    }

    [Test]
    public void AHookThatZeroesGradientsLeavesWeightDecayOnly()
    {
        var (x, y) = Batch();
        using (x) using (y)
        using (var m = ModelZoo.Create("resnet20", numClasses: 5, seed: 1))
        using (var sgd = Sgd.ForModule(m, 0.1, momentum: 0, weightDecay: 0))
        {
            var before = m.Parameters().Select(p => p.ToDoubles()).ToList();
            var step = new TrainingStep(m, sgd) { Hooks = { new ZeroGradients() } };
            using (TensorScope.Begin()) step.Run(x, y);
            var after = m.Parameters().Select(p => p.ToDoubles()).ToList();
            Assert.That(after, Is.EqualTo(before), "zero gradients, no decay: the parameters do not move");
        }
    }

    [Test]
    public void TheLossFunctionAndTargetsCanBeReplaced()
    {
        var (x, y) = Batch();
        using (x) using (y)
        using (var m = ModelZoo.Create("resnet20", numClasses: 5, seed: 1))
        using (var sgd = Sgd.ForModule(m, 0.0))
        {
            Tensor? seen = null;
            var step = new TrainingStep(m, sgd, (logits, targets) => { seen = targets; return Ops.SoftmaxCrossEntropy(logits, targets); });
            var swap = new SwapTargets();
            step.Hooks.Add(swap);
            using var scope = TensorScope.Begin();
            var r = step.Run(x, y);
            Assert.That(seen, Is.SameAs(swap.Replacement));
            Assert.That(r.Logits.Shape, Is.EqualTo(new Shape(4, 5)));
            Assert.That(r.Loss.RequiresGrad, Is.False, "the returned loss is detached from the graph");
            Assert.That(double.IsFinite(r.LossValue()), Is.True);
        }
    }

    private sealed class SwapTargets : ITrainingHook
    {
        public Tensor? Replacement { get; private set; }

        public void BeforeForward(StepContext s)
        {
            Replacement = Tensor.FromArray(new long[] { 0, 1, 2, 3 }, new Shape(4));
            s.Targets = Replacement;
        }
    }

    [Test]
    public void OnlyTheResultOutlivesAStep()
    {
        var (x, y) = Batch();
        using (x) using (y)
        using (var m = ModelZoo.Create("resnet20", numClasses: 5, seed: 1))
        using (var sgd = Sgd.ForModule(m, 0.1))
        {
            var step = new TrainingStep(m, sgd);
            using (TensorScope.Begin()) step.Run(x, y); // momentum buffers and gradients now exist
            long live = TensorStats.LiveTensors;
            using (var r = step.Run(x, y))
                Assert.That(TensorStats.LiveTensors, Is.EqualTo(live + 2), "loss and logits");
            Assert.That(TensorStats.LiveTensors, Is.EqualTo(live));
        }
    }

    [Test]
    public void MismatchedBatchesAndNonScalarLossesAreClearErrors()
    {
        var (x, y) = Batch();
        using (x) using (y)
        using (var m = ModelZoo.Create("resnet20", numClasses: 5, seed: 1))
        using (var sgd = Sgd.ForModule(m, 0.1))
        using (var scope = TensorScope.Begin())
        {
            var step = new TrainingStep(m, sgd);
            var three = Tensor.FromArray(new long[] { 0, 1, 2 }, new Shape(3));
            Assert.That(() => step.Run(x, three), Throws.ArgumentException.With.Message.Contains("same number of samples"));
            step.Loss = (logits, _) => logits;
            Assert.That(() => step.Run(x, y), Throws.InvalidOperationException.With.Message.Contains("not a scalar"));
            Assert.That(() => TrainingStep.CrossEntropy(1.5), Throws.ArgumentException.With.Message.Contains("label smoothing"));
        }
    }

    [Test]
    public void EvaluationMatchesTheLogitsAndRestoresTheMode()
    {
        var root = Directory.CreateTempSubdirectory("evalstep-").FullName;
        try
        {
            var data = TinyData.Make(root);
            using var m = ModelZoo.Create("resnet20", numClasses: 4, seed: 2);
            using var val = TrainingSetup.ValLoader(Path.Combine(data, "val"), imageSize: 16, batchSize: 5, workers: 1);
            var r = Evaluator.Evaluate(m, val);
            Assert.That(m.Training, Is.True, "training mode restored");
            // The same numbers computed here from the logits of every batch, in eval mode.
            m.Eval();
            double loss = 0;
            long correct = 0, n = 0;
            using (ResidualEngine.Autograd.GradMode.NoGrad())
                foreach (var b in val.Epoch(0))
                    using (b)
                    using (TensorScope.Begin())
                    {
                        var logits = m.Forward(b.Images);
                        loss += Ops.SoftmaxCrossEntropy(logits, b.Labels).Item() * b.Count;
                        correct += StepMeter.TopKCorrect(logits, b.Labels, 1);
                        n += b.Count;
                    }
            Assert.That(r.Samples, Is.EqualTo(24));
            Assert.That(r.Loss, Is.EqualTo(loss / n).Within(1e-12));
            Assert.That(r.Top1, Is.EqualTo((double)correct / n));
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }
}
