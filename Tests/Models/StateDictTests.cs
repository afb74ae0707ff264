// torchvision compatibility of names and shapes, and weights on disk: resnet18's state-dict
// keys against torchvision's list, loading failures that name every offending key, and a
// safetensors round trip through Weights.SaveWeights/LoadWeights.
using NUnit.Framework;
using ResidualEngine.Models;
using ResidualEngine.Nn;

namespace ResidualEngine.Tests.Models;

public class StateDictTests
{
    private static string[] Bn(string p) =>
        [p + ".weight", p + ".bias", p + ".running_mean", p + ".running_var", p + ".num_batches_tracked"];

    [Test]
    public void Resnet18KeysMatchTorchvision()
    {
        using var skip = Init.SkipInitialization();
        using var m = ModelZoo.Create("resnet18");
        var keys = m.StateDict().Keys.ToList();
        // torchvision.models.resnet18().state_dict(): 122 entries in this order.
        Assert.That(keys, Has.Count.EqualTo(122));
        var head = new List<string> { "conv1.weight" };
        head.AddRange(Bn("bn1"));
        head.Add("layer1.0.conv1.weight");
        head.AddRange(Bn("layer1.0.bn1"));
        head.Add("layer1.0.conv2.weight");
        head.AddRange(Bn("layer1.0.bn2"));
        Assert.That(keys.Take(head.Count), Is.EqualTo(head));
        var layer2 = new List<string> { "layer2.0.conv1.weight" };
        layer2.AddRange(Bn("layer2.0.bn1"));
        layer2.Add("layer2.0.conv2.weight");
        layer2.AddRange(Bn("layer2.0.bn2"));
        layer2.Add("layer2.0.downsample.0.weight");
        layer2.AddRange(Bn("layer2.0.downsample.1"));
        Assert.That(keys.Where(k => k.StartsWith("layer2.0.", StringComparison.Ordinal)), Is.EqualTo(layer2));
        Assert.That(keys.TakeLast(2), Is.EqualTo(new[] { "fc.weight", "fc.bias" }));
        Assert.That(keys.Any(k => k.StartsWith("layer1.0.downsample", StringComparison.Ordinal)), Is.False);
        var sd = m.StateDict();
        Assert.That(sd["conv1.weight"].Shape, Is.EqualTo(new Shape(64, 3, 7, 7)));
        Assert.That(sd["layer2.0.downsample.0.weight"].Shape, Is.EqualTo(new Shape(128, 64, 1, 1)));
        Assert.That(sd["fc.weight"].Shape, Is.EqualTo(new Shape(1000, 512)));
        Assert.That(sd["layer4.1.bn2.num_batches_tracked"].DType, Is.EqualTo(DType.I64));
    }

    [Test]
    public void Resnet50HasTorchvisionsEntryCount()
    {
        using var skip = Init.SkipInitialization();
        using var m = ModelZoo.Create("resnet50");
        var keys = m.StateDict().Keys.ToList();
        Assert.That(keys, Has.Count.EqualTo(320));
        Assert.That(keys, Does.Contain("layer1.0.downsample.0.weight"), "64 -> 256 changes width in the first block");
        Assert.That(keys, Does.Contain("layer3.5.bn3.running_var"));
    }

    [Test]
    public void LoadingReportsMissingExtraAndMisshapenKeys()
    {
        using var scope = TensorScope.Begin();
        using var m = ModelZoo.Create("resnet20");
        var sd = new Dictionary<string, Tensor>(m.StateDict(), StringComparer.Ordinal);
        sd.Remove("layer2.1.conv1.weight");
        sd["layer9.0.conv1.weight"] = Tensor.Zeros(new Shape(1, 1, 1, 1));
        sd["fc.weight"] = Tensor.Zeros(new Shape(12, 64));
        var e = Assert.Throws<StateDictException>(() => m.LoadStateDict(sd));
        Assert.That(e!.Missing, Is.EqualTo(new[] { "layer2.1.conv1.weight" }));
        Assert.That(e.Unexpected, Is.EqualTo(new[] { "layer9.0.conv1.weight" }));
        Assert.That(e.Mismatched.Single(), Does.Contain("fc.weight"));
        Assert.That(e.Message, Does.Contain("layer2.1.conv1.weight").And.Contain("layer9.0.conv1.weight").And.Contain("fc.weight"));
    }

    [Test]
    public void WeightsRoundTripThroughSafetensors()
    {
        using var scope = TensorScope.Begin();
        var path = Path.Combine(Path.GetTempPath(), $"re-weights-{Guid.NewGuid():N}.safetensors");
        try
        {
            using var a = ModelZoo.Create("resnet20", seed: 1);
            // Make the buffers non-trivial so they are really checked.
            a.StateDict()["layer1.0.bn1.running_mean"].Backend.Fill(a.StateDict()["layer1.0.bn1.running_mean"], 0.5);
            a.StateDict()["bn1.num_batches_tracked"].Backend.Fill(a.StateDict()["bn1.num_batches_tracked"], 42);
            Weights.SaveWeights(a, path);
            using var b = ModelZoo.Create("resnet20", seed: 2);
            Weights.LoadWeights(b, path);
            foreach (var (k, t) in a.StateDict())
            {
                var u = b.StateDict()[k];
                Assert.That(u.DType, Is.EqualTo(t.DType), k);
                Assert.That(u.ToDoubles(), Is.EqualTo(t.ToDoubles()), k);
            }
            // Strict loading into another architecture names the differences; lenient loading too if shapes clash.
            using var c = ModelZoo.Create("resnet32");
            var e = Assert.Throws<StateDictException>(() => Weights.LoadWeights(c, path));
            Assert.That(e!.Missing, Does.Contain("layer1.3.conv1.weight"));
            Weights.LoadWeights(c, path, strict: false);
            Assert.That(c.StateDict()["layer1.0.conv1.weight"].ToDoubles(), Is.EqualTo(a.StateDict()["layer1.0.conv1.weight"].ToDoubles()));
        }
        finally
        {
            File.Delete(path);
        }
    }
}
