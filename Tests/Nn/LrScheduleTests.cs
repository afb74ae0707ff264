// Learning-rate schedules: step drops at milestones, plateau drops after `patience` epochs
// without a relative improvement (ReduceLROnPlateau's rule), cosine warms up linearly per step
// then decays to its minimum, the factory, and state round trips.
using NUnit.Framework;
using ResidualEngine.Nn.Optim;

namespace ResidualEngine.Tests.Nn;

public class LrScheduleTests
{
    [Test]
    public void StepDropsByGammaAtEachMilestone()
    {
        var s = new StepLr(0.1, [30, 60, 80], 0.1);
        Assert.That(s.LearningRate(0, 0, 100), Is.EqualTo(0.1).Within(1e-15));
        Assert.That(s.LearningRate(29, 99, 100), Is.EqualTo(0.1).Within(1e-15));
        Assert.That(s.LearningRate(30, 0, 100), Is.EqualTo(0.01).Within(1e-15));
        Assert.That(s.LearningRate(59, 5, 100), Is.EqualTo(0.01).Within(1e-15));
        Assert.That(s.LearningRate(60, 0, 100), Is.EqualTo(0.001).Within(1e-15));
        Assert.That(s.LearningRate(85, 0, 100), Is.EqualTo(1e-4).Within(1e-16));
    }

    [Test]
    public void WarmupRisesLinearlyPerStepFromNearZero()
    {
        var s = new StepLr(0.4, [10], 0.1, warmupEpochs: 2);
        // 2 epochs of 4 steps: lr * k / 8 for k = 1..8, then the base rate.
        var lrs = Enumerable.Range(0, 12).Select(i => s.LearningRate(i / 4, i % 4, 4)).ToArray();
        for (int i = 0; i < 8; i++) Assert.That(lrs[i], Is.EqualTo(0.4 * (i + 1) / 8).Within(1e-15), $"step {i}");
        for (int i = 8; i < 12; i++) Assert.That(lrs[i], Is.EqualTo(0.4).Within(1e-15), $"step {i}");
    }

    [Test]
    public void PlateauDropsAfterPatienceEpochsWithoutImprovement()
    {
        var s = new PlateauLr(0.1, factor: 0.1, patience: 2);
        double Lr() => s.LearningRate(0, 0, 1);
        s.OnValidation(0.50);
        s.OnValidation(0.40);          // improvement
        s.OnValidation(0.39999);       // below best * (1 - 1e-4)? 0.39996 -> no: a bad epoch (1)
        Assert.That(Lr(), Is.EqualTo(0.1));
        s.OnValidation(0.41);          // bad (2) = patience: not yet
        Assert.That(Lr(), Is.EqualTo(0.1));
        s.OnValidation(0.40);          // bad (3) > patience: drop
        Assert.That(Lr(), Is.EqualTo(0.01).Within(1e-15));
        s.OnValidation(0.30);          // improvement resets the count
        s.OnValidation(0.30);
        s.OnValidation(0.30);
        Assert.That(Lr(), Is.EqualTo(0.01).Within(1e-15));
        s.OnValidation(0.30);
        Assert.That(Lr(), Is.EqualTo(0.001).Within(1e-16));
    }

    [Test]
    public void PlateauCountsNaNAsNoImprovementAndRespectsMinLr()
    {
        var s = new PlateauLr(0.1, factor: 0.5, patience: 0, minLr: 0.04);
        s.OnValidation(double.NaN); // first: not better than +inf -> bad epoch, drop at once (patience 0)
        Assert.That(s.CurrentLr, Is.EqualTo(0.05).Within(1e-15));
        s.OnValidation(1.0);
        Assert.That(s.CurrentLr, Is.EqualTo(0.05).Within(1e-15));
        s.OnValidation(1.0);
        Assert.That(s.CurrentLr, Is.EqualTo(0.04).Within(1e-15));
        s.OnValidation(1.0);
        Assert.That(s.CurrentLr, Is.EqualTo(0.04).Within(1e-15));
    }

    [Test]
    public void CosineWarmsUpLinearlyThenDecaysMonotonicallyToMin()
    {
        int spe = 10;
        var s = new CosineLr(0.2, totalEpochs: 10, warmupEpochs: 2, minLr: 0.01);
        var lrs = new List<double>();
        for (int e = 0; e < 10; e++)
            for (int k = 0; k < spe; k++) lrs.Add(s.LearningRate(e, k, spe));
        for (int i = 0; i < 20; i++) Assert.That(lrs[i], Is.EqualTo(0.2 * (i + 1) / 20).Within(1e-15), $"warmup step {i}");
        Assert.That(lrs[20], Is.EqualTo(0.2).Within(1e-15));
        // Halfway through the decay the rate is halfway between base and min.
        Assert.That(lrs[60], Is.EqualTo((0.2 + 0.01) / 2).Within(1e-12));
        for (int i = 21; i < lrs.Count; i++) Assert.That(lrs[i], Is.LessThan(lrs[i - 1]), $"step {i} does not decrease");
        Assert.That(lrs[^1], Is.EqualTo(0.01).Within(1e-4));
        Assert.That(lrs[^1], Is.GreaterThan(0.01));
        Assert.That(s.LearningRate(12, 0, spe), Is.EqualTo(0.01).Within(1e-15), "past the end it stays at the minimum");
    }

    [Test]
    public void PlateauStateRoundTripContinuesIdentically()
    {
        var a = new PlateauLr(0.1, patience: 1, cooldown: 1);
        foreach (var v in new[] { 0.9, 0.8, 0.85, 0.86 }) a.OnValidation(v);
        var state = a.State();
        Assert.That(state.Values.All(double.IsFinite), Is.True, "state must be JSON-friendly");
        var b = new PlateauLr(0.1, patience: 1, cooldown: 1);
        b.LoadState(new Dictionary<string, double>(state));
        Assert.That(b.State(), Is.EquivalentTo(state));
        foreach (var v in new[] { 0.87, 0.88, 0.89, 0.5, 0.6, 0.7 })
        {
            a.OnValidation(v);
            b.OnValidation(v);
            Assert.That(b.CurrentLr, Is.EqualTo(a.CurrentLr));
        }
        Assert.That(a.CurrentLr, Is.LessThan(0.01), "the sequence should have dropped the rate twice");

        var fresh = new PlateauLr(0.1);
        var s0 = fresh.State();
        Assert.That(s0["has_best"], Is.Zero);
        var c = new PlateauLr(0.1);
        c.LoadState(s0);
        c.OnValidation(1e9);
        Assert.That(c.State()["best"], Is.EqualTo(1e9), "a restored empty best accepts any first error");
    }

    [Test]
    public void StatelessSchedulesRoundTripEmptyStateAndRejectUnknownKeys()
    {
        LrSchedule[] all = [new StepLr(0.1, [1]), new CosineLr(0.1, 5)];
        foreach (var s in all)
        {
            Assert.That(s.State(), Is.Empty);
            s.LoadState(s.State());
            Assert.Throws<ArgumentException>(() => s.LoadState(new Dictionary<string, double> { ["lr"] = 1 }));
        }
        var p = new PlateauLr(0.1);
        Assert.That(Assert.Throws<ArgumentException>(() => p.LoadState(new Dictionary<string, double> { ["lr"] = 1 }))!.Message, Does.Contain("missing"));
    }

    [Test]
    public void FactoryBuildsEachKindAndRejectsOthers()
    {
        var st = LrSchedule.Create("step", 0.1, 90, [30, 60], 0);
        Assert.That(st, Is.InstanceOf<StepLr>());
        Assert.That(st.LearningRate(45, 0, 10), Is.EqualTo(0.01).Within(1e-15));
        var def = (StepLr)LrSchedule.Create("Step", 0.1, 64, [], 0);
        Assert.That(def.Milestones, Is.EqualTo(new[] { 32, 48 }));
        var pl = LrSchedule.Create("plateau", 0.1, 90, [], 1);
        Assert.That(pl, Is.InstanceOf<PlateauLr>());
        Assert.That(pl.WarmupEpochs, Is.EqualTo(1));
        Assert.That(((PlateauLr)LrSchedule.Create("plateau", 0.1, 90, null, 0, 3)).Patience, Is.EqualTo(3));
        var co = LrSchedule.Create(" COSINE ", 0.1, 10, [], 1);
        Assert.That(co, Is.InstanceOf<CosineLr>());
        Assert.That(co.LearningRate(0, 0, 2), Is.EqualTo(0.05).Within(1e-15));
        Assert.That(Assert.Throws<ArgumentException>(() => LrSchedule.Create("linear", 0.1, 10, [], 0))!.Message, Does.Contain("linear"));
        Assert.Throws<ArgumentException>(() => LrSchedule.Create("step", 0.1, 0, [], 0));
    }

    [Test]
    public void InvalidArgumentsAreRejected()
    {
        Assert.Throws<ArgumentException>(() => new StepLr(-0.1, [1]));
        Assert.Throws<ArgumentException>(() => new StepLr(0.1, [-1]));
        Assert.Throws<ArgumentException>(() => new StepLr(0.1, [1], gamma: 0));
        Assert.Throws<ArgumentException>(() => new PlateauLr(0.1, factor: 1.0));
        Assert.Throws<ArgumentException>(() => new PlateauLr(0.1, patience: -1));
        Assert.Throws<ArgumentException>(() => new CosineLr(0.1, 5, warmupEpochs: 5));
        Assert.Throws<ArgumentException>(() => new CosineLr(0.1, 0));
        Assert.Throws<ArgumentException>(() => new CosineLr(0.1, 5, minLr: 0.2));
        var s = new StepLr(0.1, [1]);
        Assert.That(Assert.Throws<ArgumentException>(() => s.LearningRate(0, 5, 5))!.Message, Does.Contain("stepInEpoch"));
        Assert.That(Assert.Throws<ArgumentException>(() => s.LearningRate(-1, 0, 5))!.Message, Does.Contain("epoch"));
        Assert.That(Assert.Throws<ArgumentException>(() => s.LearningRate(0, 0, 0))!.Message, Does.Contain("stepsPerEpoch"));
    }
}
