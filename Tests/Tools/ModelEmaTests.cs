// --model-ema against torchvision's reference recipe (Fixtures/recipe/ema.json, made by
// Tools/reference/make_recipe_fixtures.py): the decay adjustment of train.py, the update every
// `steps` batches of an epoch (the first one, and every one during the warm-up epochs, a copy),
// parameters and BN running statistics averaged, compared after every batch of three epochs
// (float32; the update is one fused pointwise op, so within 1e-6 rather than bit for bit). Plus
// the checkpoint round trip and the argument checks.
using System.Text.Json;
using NUnit.Framework;
using ResidualEngine.Nn;
using ResidualEngine.Training;

namespace ResidualEngine.Tests.Tools;

public class ModelEmaTests
{
    private static JsonElement Fixture()
    {
        var path = Path.Combine(AppContext.BaseDirectory, "Fixtures", "recipe", "ema.json");
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        return doc.RootElement.Clone();
    }

    private static float[][] Floats(JsonElement a) => a.EnumerateArray().Select(t => t.EnumerateArray().Select(x => (float)x.GetDouble()).ToArray()).ToArray();

    // BN's floating-point tensors in torch's order: weight, bias, running_mean, running_var.
    private static Tensor[] FloatTensors(BatchNorm2d bn) => [bn.Weight, bn.Bias, bn.RunningMean, bn.RunningVar];

    [Test]
    public void FollowsTorchvisionsExponentialMovingAverage()
    {
        var f = Fixture();
        double decay = ModelEma.AdjustedDecay(f.GetProperty("decay").GetDouble(), f.GetProperty("batch_size").GetInt32(),
            f.GetProperty("steps").GetInt32(), f.GetProperty("epochs").GetInt32());
        Assert.That(decay, Is.EqualTo(f.GetProperty("adjusted_decay").GetDouble()).Within(1e-15));
        using var bn = new BatchNorm2d(3);
        using var ema = new ModelEma(bn, new BatchNorm2d(3), decay, f.GetProperty("steps").GetInt32(), f.GetProperty("warmup_epochs").GetInt32());
        var shadow = (BatchNorm2d)ema.Shadow;
        int rows = 0;
        foreach (var row in f.GetProperty("rows").EnumerateArray())
        {
            var model = Floats(row.GetProperty("model"));
            var own = FloatTensors(bn);
            for (int k = 0; k < own.Length; k++) own[k].Backend.CopyFromHost(own[k], System.Runtime.InteropServices.MemoryMarshal.AsBytes(model[k].AsSpan()));
            ema.Epoch = row.GetProperty("epoch").GetInt32();
            ema.AfterBatch(row.GetProperty("batch").GetInt32());
            var expected = Floats(row.GetProperty("ema"));
            var got = FloatTensors(shadow);
            for (int k = 0; k < got.Length; k++)
                Assert.That(got[k].ToArray<float>(), Is.EqualTo(expected[k]).Within(1e-6), $"epoch {ema.Epoch} batch {row.GetProperty("batch").GetInt32()} tensor {k}");
            Assert.That(ema.Averaged, Is.EqualTo(row.GetProperty("n_averaged").GetInt64()), "n_averaged");
            rows++;
        }
        Assert.That(rows, Is.EqualTo(15));
        Assert.That(ema.Averaged, Is.GreaterThan(3), "past the warm-up the average averages");
    }

    [Test]
    public void StateRoundTripsThroughACheckpointsTensors()
    {
        using var bn = new BatchNorm2d(4);
        using var a = new ModelEma(bn, new BatchNorm2d(4), 0.9, everySteps: 1);
        var rng = new Random(3);
        for (int i = 0; i < 3; i++)
        {
            using (var w = Tensor.Randn(bn.Weight.Shape, rng)) bn.Weight.Backend.Copy(bn.Weight, w);
            a.Update();
        }
        var saved = a.StateTensors().ToDictionary(t => t.Name, t => t.Tensor.Clone());
        Assert.That(saved.Keys, Does.Contain(ModelEma.CounterName).And.Contain("running_var").And.Contain("num_batches_tracked"));
        using var b = new ModelEma(bn, new BatchNorm2d(4), 0.9, everySteps: 1);
        b.LoadState(saved);
        Assert.That(b.Averaged, Is.EqualTo(3));
        Assert.That(((BatchNorm2d)b.Shadow).Weight.ToArray<float>(), Is.EqualTo(((BatchNorm2d)a.Shadow).Weight.ToArray<float>()));
        foreach (var t in saved.Values) t.Dispose();
        Assert.That(() => b.LoadState(new Dictionary<string, Tensor>()), Throws.ArgumentException.With.Message.Contains(ModelEma.CounterName));
    }

    [Test]
    public void BadArgumentsAreNamed()
    {
        using var bn = new BatchNorm2d(2);
        Assert.That(() => new ModelEma(bn, new BatchNorm2d(3), 0.9), Throws.ArgumentException.With.Message.Contains("shadow"));
        Assert.That(() => new ModelEma(bn, new BatchNorm2d(2), 1.5), Throws.ArgumentException.With.Message.Contains("decay"));
        Assert.That(() => new ModelEma(bn, new BatchNorm2d(2), 0.9, everySteps: 0), Throws.ArgumentException.With.Message.Contains("everySteps"));
        Assert.That(() => ModelEma.AdjustedDecay(0.9, 0, 1, 1), Throws.ArgumentException);
        Assert.That(ModelEma.AdjustedDecay(0.99998, 128, 32, 600), Is.EqualTo(1 - 0.00002 * 128 * 32 / 600.0).Within(1e-15), "torchvision's ResNet-50 recipe");
        Assert.That(ModelEma.AdjustedDecay(0.9, 1024, 32, 1), Is.Zero, "alpha is capped at 1: a copy");
    }
}
