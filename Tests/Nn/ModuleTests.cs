// Module bookkeeping without any arithmetic: state-dict names and order, strict and lenient
// loading with every offending key named, dtype conversion, device/dtype summaries.
using NUnit.Framework;
using ResidualEngine.Nn;

namespace ResidualEngine.Tests.Nn;

public class ModuleTests
{
    private static Sequential Small(int seed = 0) =>
        new(new Conv2d(3, 4, 3, padding: 1, rng: new Random(seed)), new BatchNorm2d(4), new ReLU(), new Flatten(), new Linear(4 * 5 * 5, 2, rng: new Random(seed)));

    [Test]
    public void StateDictFollowsPyTorchNamesAndOrder()
    {
        using var m = Small();
        Assert.That(m.StateDict().Keys, Is.EqualTo(new[]
        {
            "0.weight", "1.weight", "1.bias", "1.running_mean", "1.running_var", "1.num_batches_tracked", "4.weight", "4.bias",
        }));
        Assert.That(m.NamedParameters().Select(p => p.Name), Is.EqualTo(new[] { "0.weight", "1.weight", "1.bias", "4.weight", "4.bias" }));
        var nbt = m.StateDict()["1.num_batches_tracked"];
        Assert.That(nbt.DType, Is.EqualTo(DType.I64));
        Assert.That(nbt.Shape, Is.EqualTo(Shape.Scalar));
        Assert.That(m.ParameterCount(), Is.EqualTo(4 * 3 * 9 + 4 + 4 + 100 * 2 + 2));
    }

    [Test]
    public void LoadStateDictCopiesValues()
    {
        using var scope = TensorScope.Begin();
        using var a = Small(1);
        using var b = Small(2);
        Assert.That(b.StateDict()["0.weight"].ToDoubles(), Is.Not.EqualTo(a.StateDict()["0.weight"].ToDoubles()));
        b.LoadStateDict(a.StateDict());
        foreach (var (k, t) in a.StateDict())
            Assert.That(b.StateDict()[k].ToDoubles(), Is.EqualTo(t.ToDoubles()), k);
    }

    [Test]
    public void StrictLoadNamesEveryMissingUnexpectedAndMismatchedKey()
    {
        using var scope = TensorScope.Begin();
        using var m = Small();
        var sd = new Dictionary<string, Tensor>(m.StateDict(), StringComparer.Ordinal);
        sd.Remove("1.running_var");
        sd["extra.weight"] = Tensor.Zeros(3);
        sd["4.bias"] = Tensor.Zeros(5);
        var e = Assert.Throws<StateDictException>(() => m.LoadStateDict(sd));
        Assert.That(e!.Missing, Is.EqualTo(new[] { "1.running_var" }));
        Assert.That(e.Unexpected, Is.EqualTo(new[] { "extra.weight" }));
        Assert.That(e.Mismatched, Has.Count.EqualTo(1));
        Assert.That(e.Message, Does.Contain("1.running_var").And.Contain("extra.weight").And.Contain("4.bias"));
        // Lenient loading tolerates missing and extra names, never wrong shapes.
        e = Assert.Throws<StateDictException>(() => m.LoadStateDict(sd, strict: false));
        Assert.That(e!.Message, Does.Contain("4.bias").And.Not.Contain("1.running_var"));
    }

    [Test]
    public void FailedLoadChangesNothing()
    {
        using var scope = TensorScope.Begin();
        using var m = Small();
        var before = m.StateDict()["0.weight"].ToDoubles();
        var sd = new Dictionary<string, Tensor>(StringComparer.Ordinal)
        {
            ["0.weight"] = Tensor.Zeros(new Shape(4, 3, 3, 3)),
            ["4.bias"] = Tensor.Zeros(7),
        };
        Assert.Throws<StateDictException>(() => m.LoadStateDict(sd, strict: false));
        Assert.That(m.StateDict()["0.weight"].ToDoubles(), Is.EqualTo(before));
    }

    [Test]
    public void ToDTypeConvertsFloatsAndKeepsTheCounterInteger()
    {
        using var scope = TensorScope.Begin();
        using var m = Small();
        var w32 = m.StateDict()["0.weight"].ToDoubles();
        m.ToDType(DType.F64);
        var sd = m.StateDict();
        Assert.That(sd["0.weight"].DType, Is.EqualTo(DType.F64));
        Assert.That(sd["1.running_var"].DType, Is.EqualTo(DType.F64));
        Assert.That(sd["1.num_batches_tracked"].DType, Is.EqualTo(DType.I64));
        Assert.That(sd["0.weight"].ToDoubles(), Is.EqualTo(w32));
        Assert.That(m.Parameters().All(p => p.RequiresGrad && p.DType == DType.F64), Is.True);
        Assert.That(m.ParameterDType, Is.EqualTo(DType.F64));
        // The layer reads its converted weight, not a stale one.
        Assert.That(((Conv2d)m[0]).Weight, Is.SameAs(sd["0.weight"]));
        Assert.Throws<ArgumentException>(() => m.ToDType(DType.I32));
    }

    [Test]
    public void DisposingAModuleFreesItsTensors()
    {
        long before = TensorStats.LiveTensors;
        var m = Small();
        Assert.That(TensorStats.LiveTensors - before, Is.EqualTo(8));
        m.Dispose();
        Assert.That(TensorStats.LiveTensors, Is.EqualTo(before));
    }

    [Test]
    public void TrainAndEvalReachEveryDescendant()
    {
        using var m = new Sequential(Small(), new Sequential(new BatchNorm2d(2)));
        m.Eval();
        Assert.That(m.NamedModules().All(x => !x.Module.Training), Is.True);
        m.Train();
        Assert.That(m.NamedModules().All(x => x.Module.Training), Is.True);
        Assert.That(m.NamedModules().Select(x => x.Name), Does.Contain("1.0"));
    }

    [Test]
    public void CheckpointsWithoutBatchCountersLoadStrictly()
    {
        // Old PyTorch checkpoints have no num_batches_tracked; PyTorch accepts them, and so do we.
        using var scope = TensorScope.Begin();
        using var a = Small(1);
        using var b = Small(2);
        var sd = new Dictionary<string, Tensor>(a.StateDict(), StringComparer.Ordinal);
        sd.Remove("1.num_batches_tracked");
        b.LoadStateDict(sd);
        Assert.That(b.StateDict()["1.running_var"].ToDoubles(), Is.EqualTo(a.StateDict()["1.running_var"].ToDoubles()));
        Assert.That(b.StateDict()["0.weight"].ToDoubles(), Is.EqualTo(a.StateDict()["0.weight"].ToDoubles()));
    }
}
