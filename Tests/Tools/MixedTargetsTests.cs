// Mixed (soft) targets: lambda CE(y) + (1 - lambda) CE(y rolled by one), the loss the training
// step uses for mixup/cutmix batches, equals torch's cross_entropy with the probability targets
// lambda onehot(y) + (1 - lambda) onehot(roll(y, 1)), label smoothing included, in value and in
// gradient (Fixtures/recipe/augment.json, soft_ce; float64 to 1e-12, float32 to 1e-6); and a
// step on a mixed batch is that loss's step.
using NUnit.Framework;
using ResidualEngine.Data;
using ResidualEngine.Models;
using ResidualEngine.Nn.Optim;
using ResidualEngine.Tests.Data;
using ResidualEngine.Training;

namespace ResidualEngine.Tests.Tools;

public class MixedTargetsTests
{
    [Test]
    public void MixedLossEqualsTorchsCrossEntropyWithProbabilityTargets()
    {
        var f = AutoAugmentTests.Fixture().GetProperty("soft_ce");
        var shape = f.GetProperty("shape").EnumerateArray().Select(x => x.GetInt32()).ToArray();
        var logits = f.GetProperty("logits").EnumerateArray().Select(x => x.GetDouble()).ToArray();
        var labels = f.GetProperty("labels").EnumerateArray().Select(x => x.GetInt64()).ToArray();
        var partner = labels.Select((_, i) => labels[(i + labels.Length - 1) % labels.Length]).ToArray();
        int n = 0;
        foreach (var c in f.GetProperty("cases").EnumerateArray())
        {
            bool f64 = c.GetProperty("dtype").GetString() == "float64";
            double tol = f64 ? 1e-12 : 1e-6;
            using var scope = TensorScope.Begin();
            var x = Tensor.FromDoubles(logits, new Shape(shape), f64 ? DType.F64 : DType.F32);
            x.RequiresGrad = true;
            var loss = TrainingStep.MixedLoss(TrainingStep.CrossEntropy(c.GetProperty("label_smoothing").GetDouble()), x,
                Tensor.FromArray(labels, labels.Length), Tensor.FromArray(partner, partner.Length), c.GetProperty("lam").GetDouble());
            loss.Backward();
            Assert.That(loss.Item(), Is.EqualTo(c.GetProperty("loss").GetDouble()).Within(tol), $"{c}");
            var grad = c.GetProperty("grad").EnumerateArray().Select(v => v.GetDouble()).ToArray();
            Assert.That(x.Grad!.ToDoubles(), Is.EqualTo(grad).Within(tol), $"gradient, {c}");
            n++;
        }
        Assert.That(n, Is.EqualTo(8));
    }

    [Test]
    public void AStepOnAMixedBatchTrainsOnTheMixedLoss()
    {
        var rng = new Random(2);
        using var x = TensorScope.Detach(Tensor.Randn(new Shape(4, 3, 8, 8), rng));
        using var y = TensorScope.Detach(Tensor.FromArray(new long[] { 0, 2, 1, 2 }, 4));
        using var partner = TensorScope.Detach(Tensor.FromArray(new long[] { 2, 0, 2, 1 }, 4));
        using var a = ModelZoo.Create("resnet20", numClasses: 3, seed: 1);
        using var b = ModelZoo.Create("resnet20", numClasses: 3, seed: 1);
        using var sa = Sgd.ForModule(a, 0.1, 0.9);
        using var sb = Sgd.ForModule(b, 0.1, 0.9);
        double stepLoss, manual;
        using (TensorScope.Begin())
            stepLoss = new TrainingStep(a, sa, TrainingStep.CrossEntropy(0.1)).Run(x, y, mix: new BatchMix(MixKind.Cutmix, 0.3, partner)).LossValue();
        using (TensorScope.Begin())
        {
            b.Train();
            sb.ZeroGrad();
            var logits = b.Forward(x);
            var loss = Ops.Add(Ops.Scale(Ops.SoftmaxCrossEntropy(logits, y, 0.1), 0.3), Ops.Scale(Ops.SoftmaxCrossEntropy(logits, partner, 0.1), 0.7));
            loss.Backward();
            sb.Step();
            manual = loss.Item();
        }
        Assert.That(stepLoss, Is.EqualTo(manual).Within(1e-6));
        var wa = a.StateDict().Values.SelectMany(t => t.ToDoubles()).ToArray();
        var wb = b.StateDict().Values.SelectMany(t => t.ToDoubles()).ToArray();
        Assert.That(wa, Is.EqualTo(wb).Within(1e-6));
        Assert.That(() => TrainingStep.MixedLoss(TrainingStep.CrossEntropy(), x, y, partner, 1.5), Throws.ArgumentException.With.Message.Contains("mix weight"));
    }
}
