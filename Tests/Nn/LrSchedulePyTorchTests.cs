// Our schedules against torch 1.13's, as torchvision's reference script sets them up (a LinearLR or
// ConstantLR warm-up, then StepLR, CosineAnnealingLR or ExponentialLR, in a SequentialLR stepped per
// epoch). With one step per epoch per-step and per-epoch stepping coincide, so the rates must match.
// Fixture: Tests/Fixtures/recipe/lr_schedules.json, made by Tools/reference/make_recipe_fixtures.py.
using System.Text.Json;
using NUnit.Framework;
using ResidualEngine.Nn.Optim;

namespace ResidualEngine.Tests.Nn;

public class LrSchedulePyTorchTests
{
    private static IEnumerable<TestCaseData> Cases()
    {
        var path = Path.Combine(AppContext.BaseDirectory, "Fixtures", "recipe", "lr_schedules.json");
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        int i = 0;
        foreach (var c in doc.RootElement.GetProperty("cases").EnumerateArray())
        {
            var kind = c.GetProperty("kind").GetString()!;
            int warm = c.GetProperty("warmup").GetInt32();
            yield return new TestCaseData(c.GetRawText()).SetName($"Matches torch {i++}: {kind}, warm-up {warm} {(warm > 0 ? c.GetProperty("method").GetString() : "")}");
        }
    }

    [TestCaseSource(nameof(Cases))]
    public void MatchesTorch(string json)
    {
        using var doc = JsonDocument.Parse(json);
        var c = doc.RootElement;
        double Get(string k, double d = 0) => c.TryGetProperty(k, out var v) ? v.GetDouble() : d;
        int epochs = c.GetProperty("epochs").GetInt32();
        var spec = new LrScheduleSpec(c.GetProperty("kind").GetString()!, Get("lr"), epochs, c.GetProperty("warmup").GetInt32())
        {
            StepSize = (int)Get("step_size"),
            Gamma = Get("gamma", 0.1),
            MinLr = Get("lr_min"),
            Milestones = c.TryGetProperty("milestones", out var ms) ? ms.EnumerateArray().Select(m => m.GetInt32()).ToArray() : null,
            WarmupDecay = Get("decay"),
            WarmupMethod = c.GetProperty("method").GetString() == "constant" ? WarmupMethod.Constant : WarmupMethod.Linear,
        };
        var s = LrSchedule.Create(spec);
        var expected = c.GetProperty("lrs").EnumerateArray().Select(v => v.GetDouble()).ToArray();
        var ours = Enumerable.Range(0, epochs).Select(e => s.LearningRate(e, 0, 1)).ToArray();
        Assert.That(ours, Is.EqualTo(expected).Within(1e-12), string.Join(", ", ours));
    }

    [Test]
    public void WarmupRampsPerStepWithinAnEpoch()
    {
        var s = LrSchedule.Create(new LrScheduleSpec("cosineannealinglr", 1.0, 10, 2) { WarmupDecay = 0.01 });
        Assert.That(s.LearningRate(0, 0, 4), Is.EqualTo(0.01).Within(1e-15), "starts at decay x lr");
        Assert.That(s.LearningRate(0, 1, 4), Is.EqualTo(0.01 + 0.99 / 8).Within(1e-15));
        Assert.That(s.LearningRate(2, 0, 4), Is.EqualTo(1.0).Within(1e-15), "the main schedule starts at the base rate");
        var constant = LrSchedule.Create(new LrScheduleSpec("steplr", 1.0, 10, 2) { WarmupMethod = WarmupMethod.Constant, WarmupDecay = 0.1, StepSize = 3 });
        Assert.That(constant.LearningRate(1, 3, 4), Is.EqualTo(0.1));
        Assert.That(constant.LearningRate(4, 0, 4), Is.EqualTo(1.0));
        Assert.That(constant.LearningRate(5, 0, 4), Is.EqualTo(0.1).Within(1e-15), "steplr counts its step size from the warm-up's end");
        Assert.Throws<ArgumentException>(() => LrSchedule.Create(new LrScheduleSpec("steplr", 1.0, 10) { StepSize = 0 }));
        Assert.Throws<ArgumentException>(() => LrSchedule.Create(new LrScheduleSpec("onecycle", 1.0, 10)));
    }
}
