// Dynamic loss scaling with torch.cuda.amp.GradScaler's semantics (its documented defaults: init_scale
// 2^16, growth_factor 2, backoff_factor 0.5, growth_interval 2000): an overflow skips the optimizer
// step and halves the scale; growth_interval clean steps in a row double it; unscaling divides every
// gradient by the scale; the state survives a checkpoint. Also an FP16 training step that really
// overflows (a scale of 2^40) and recovers by backing off, with no parameter changed by skipped steps.
using NUnit.Framework;
using ResidualEngine.Models;
using ResidualEngine.Nn.Optim;
using ResidualEngine.Training;

namespace ResidualEngine.Tests.Nn;

public class GradScalerTests
{
    private static (Tensor P, Sgd Opt) OneParameter(params double[] grad)
    {
        var p = Tensor.FromDoubles(grad.Select(_ => 1.0).ToArray(), new Shape(grad.Length), DType.F32);
        p.RequiresGrad = true;
        p.Grad = Tensor.FromDoubles(grad, new Shape(grad.Length), DType.F32);
        return (p, new Sgd([new ParamGroup([p], 0)], lr: 0.5));
    }

    [Test]
    public void DefaultsAreTorchs()
    {
        using var s = new GradScaler();
        Assert.That((s.Scale, s.GrowthFactor, s.BackoffFactor, s.GrowthInterval, s.Enabled), Is.EqualTo((65536.0, 2.0, 0.5, 2000, true)));
    }

    [Test]
    public void OverflowSkipsTheStepAndHalvesTheScale()
    {
        using var scope = TensorScope.Begin();
        var (p, opt) = OneParameter(65536 * 2.0, double.PositiveInfinity);
        using var s = new GradScaler();
        using (opt)
        {
            Assert.That(s.Step(opt), Is.False);
            s.Update();
            Assert.That(p.ToDoubles(), Is.EqualTo(new[] { 1.0, 1.0 }), "the parameter is untouched");
            Assert.That(opt.StepCount, Is.Zero);
            Assert.That((s.Scale, s.GrowthTracker, s.SkippedSteps, s.LastStepSkipped), Is.EqualTo((32768.0, 0, 1L, (bool?)true)));
        }
    }

    [Test]
    public void CleanStepsUnscaleAndGrowTheScaleAfterTheInterval()
    {
        using var scope = TensorScope.Begin();
        using var s = new GradScaler(initScale: 8, growthInterval: 3);
        var (p, opt) = OneParameter(8 * 0.25, 8 * -0.5);
        using (opt)
        {
            s.Unscale(opt);
            Assert.That(p.Grad!.ToDoubles(), Is.EqualTo(new[] { 0.25, -0.5 }), "gradients divided by the scale");
            Assert.That(s.Step(opt), Is.True);
            s.Update();
            Assert.That(p.ToDoubles(), Is.EqualTo(new[] { 1 - 0.5 * 0.25, 1 + 0.5 * 0.5 }), "the optimizer stepped on true gradients");
            for (int i = 0; i < 2; i++)
            {
                Assert.That(s.Scale, Is.EqualTo(8), $"after {i + 1} clean steps");
                p.Grad = Tensor.FromDoubles([1, 1], new Shape(2), DType.F32);
                s.Step(opt);
                s.Update();
            }
            Assert.That((s.Scale, s.GrowthTracker), Is.EqualTo((16.0, 0)), "the third clean step in a row doubles the scale");
            Assert.Throws<InvalidOperationException>(() => { s.Unscale(opt); s.Unscale(opt); }, "unscaling twice per step is an error");
        }
    }

    [Test]
    public void DisabledScalerPassesThrough()
    {
        using var scope = TensorScope.Begin();
        using var s = new GradScaler(enabled: false);
        var (p, opt) = OneParameter(double.NaN);
        using (opt)
        {
            using var loss = Tensor.Scalar(3);
            Assert.That(s.ScaleLoss(loss).Item(), Is.EqualTo(3));
            Assert.That(s.Step(opt), Is.True, "no check, no skip (BF16 needs no scaler)");
        }
    }

    [Test]
    public void StateRoundTripsAndIsChecked()
    {
        using var s = new GradScaler();
        s.LoadState(1024, 17, 3);
        Assert.That((s.Scale, s.GrowthTracker, s.SkippedSteps), Is.EqualTo((1024.0, 17, 3L)));
        Assert.Throws<ArgumentException>(() => s.LoadState(-1, 0));
        Assert.Throws<ArgumentException>(() => s.LoadState(1, 2000));
    }

    [Test]
    public void Fp16TrainingStepsBackOffFromAnOverflowingScale()
    {
        using var scope = TensorScope.Begin();
        using var model = ModelZoo.Create("resnet20", numClasses: 4);
        using var opt = Sgd.ForModule(model, 0.05);
        using var scaler = new GradScaler(initScale: Math.Pow(2, 40));
        var step = new TrainingStep(model, opt) { AutocastType = DType.F16, Scaler = scaler };
        var x = Tensor.Randn(new Shape(4, 3, 12, 12), new Random(4));
        var labels = Tensor.FromArray(new long[] { 0, 1, 2, 3 }, new Shape(4));
        var before = model.Parameters().First().ToDoubles();
        int skipped = 0;
        StepResult? first = null;
        for (int i = 0; i < 40 && first is null; i++)
        {
            var r = step.Run(x, labels);
            if (r.Skipped)
            {
                skipped++;
                Assert.That(opt.StepCount, Is.Zero, "no step is taken while the gradients overflow");
                Assert.That(model.Parameters().First().ToDoubles(), Is.EqualTo(before), "skipped steps change no parameter");
                r.Dispose();
            }
            else first = r;
        }
        Assert.That(skipped, Is.GreaterThan(0), "2^40 times the loss overflows F16 gradients");
        Assert.That(first, Is.Not.Null, "backing off reaches a scale at which the step goes through");
        Assert.That(double.IsFinite(first!.LossValue()), Is.True, "a finite loss");
        Assert.That(scaler.Scale, Is.EqualTo(Math.Pow(2, 40 - skipped)), "halved once per overflow");
        Assert.That(model.Parameters().First().ToDoubles(), Is.Not.EqualTo(before), "the step that went through changed the weights");
        Assert.That(opt.StepCount, Is.EqualTo(1));
        Assert.That(scaler.SkippedSteps, Is.EqualTo(skipped));
    }
}
