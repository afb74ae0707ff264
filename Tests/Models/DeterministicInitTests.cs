// The C# deterministic initialiser must reproduce the Python fixture script bit for bit: the raw
// stream u(seed, i), the per-entry rules over real state dicts (names, order, shapes from the
// fixtures' metadata), and the model inputs x.
using System.Text.Json;
using NUnit.Framework;
using ResidualEngine.Serialization;

namespace ResidualEngine.Tests.Models;

public class DeterministicInitTests
{
    private static string Fixture(string name) =>
        Path.Combine(TestContext.CurrentContext.TestDirectory, "Fixtures", "models", name + ".safetensors");

    [Test]
    public void UMatchesValuesPrintedByTheScript()
    {
        // Printed by `make_fixtures.py --check` (repr of float64, 17 significant digits).
        double[] printed = { 0.35156743067245377, 0.9891477639121995, 0.15845101292688324, 0.84305995335160255,
                             0.98185563336153125, 0.249281053002953, 0.48842606793283749, 0.16636697763497121 };
        for (int i = 0; i < printed.Length; i++)
            Assert.That(DeterministicInit.U(1000003, i), Is.EqualTo(printed[i]), $"u(1000003, {i})");
    }

    [TestCase("resnet18_64")]
    [TestCase("cifar_resnet20")]
    [TestCase("preact_block")]
    public void UAndInputMatchTheFixture(string model)
    {
        using var f = SafeTensors.Load(Fixture(model));
        var checkU = f["check_u"].ToArray<double>();
        for (int i = 0; i < checkU.Length; i++)
            Assert.That(DeterministicInit.U(1000003, i), Is.EqualTo(checkU[i]), $"{model}: check_u[{i}]");
        var x = f["x"];
        using var ours = DeterministicInit.Input(x.Shape);
        Assert.That(ours.ToArray<float>(), Is.EqualTo(x.ToArray<float>()), $"{model}: x");
    }

    [TestCase("resnet18_64", "init_head.")]
    [TestCase("cifar_resnet20", "init_head.")]
    [TestCase("preact_block", "init.")]
    public void ApplyReproducesPyTorchInitialStateDict(string model, string prefix)
    {
        using var scope = TensorScope.Begin();
        using var f = SafeTensors.Load(Fixture(model));
        var order = f.Metadata["state_dict_order"].Split(',');
        using var shapes = JsonDocument.Parse(f.Metadata["state_dict_shapes"]);
        var sd = new OrderedDictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var name in order)
        {
            var dims = shapes.RootElement.GetProperty(name).EnumerateArray().Select(e => e.GetInt32()).ToArray();
            var dtype = name.EndsWith("num_batches_tracked", StringComparison.Ordinal) ? DType.I64 : DType.F32;
            sd.Add(name, Tensor.Full(new Shape(dims), double.NaN, dtype));
        }
        DeterministicInit.Apply(sd);
        foreach (var (name, t) in sd)
        {
            var expected = f[prefix + name].ToDoubles();
            var actual = t.ToDoubles().Take(expected.Length).ToArray();
            Assert.That(actual, Is.EqualTo(expected), $"{model}: {name}");
        }
    }
}
