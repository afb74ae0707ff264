// Layers doing arithmetic: BN counts training batches (and only those) and updates its running
// statistics only in training; layers converted with ToDType(F64) compute in F64 and pass a
// gradient check; Sequential chains; SE gates scale channels by a sigmoid in (0, 1).
using NUnit.Framework;
using ResidualEngine.Autograd;
using ResidualEngine.Models;
using ResidualEngine.Nn;

namespace ResidualEngine.Tests.Nn;

public class LayerForwardTests
{
    [Test]
    public void BatchNormCountsTrainingBatchesOnly()
    {
        using var scope = TensorScope.Begin();
        using var bn = new BatchNorm2d(3);
        using var ng = GradMode.NoGrad(); // counting does not depend on autograd
        var x = Tensor.Randn(new Shape(4, 3, 2, 2), new Random(1), std: 2);
        bn.Forward(x);
        bn.Forward(x);
        Assert.That(bn.NumBatchesTracked.ToArray<long>(), Is.EqualTo(new long[] { 2 }));
        var rm = bn.RunningMean.ToDoubles();
        Assert.That(rm.Any(v => v != 0), Is.True);
        bn.Eval();
        bn.Forward(x);
        Assert.That(bn.NumBatchesTracked.ToArray<long>(), Is.EqualTo(new long[] { 2 }));
        Assert.That(bn.RunningMean.ToDoubles(), Is.EqualTo(rm));
        // A loaded counter continues from its value.
        bn.Train();
        bn.LoadStateDict(new Dictionary<string, Tensor>(bn.StateDict(), StringComparer.Ordinal)
        {
            ["num_batches_tracked"] = Tensor.Full(Shape.Scalar, 41, DType.I64),
        });
        bn.Forward(x);
        Assert.That(bn.NumBatchesTracked.ToArray<long>(), Is.EqualTo(new long[] { 42 }));
    }

    [Test]
    public void SequentialOfLayersPassesF64GradCheck()
    {
        using var scope = TensorScope.Begin();
        using var net = new Sequential(
            new Conv2d(2, 3, 3, padding: 1, bias: true, rng: new Random(1)), new BatchNorm2d(3), new ReLU(),
            new MaxPool2d(2), new Conv2d(3, 4, 1, rng: new Random(2)), new AdaptiveAvgPool2d(1), new Flatten(), new Linear(4, 3, rng: new Random(3)));
        net.ToDType(DType.F64);
        var x = GradCheck.Leaf(new Random(4), 2, 2, 4, 4);
        GradCheck.Run(_ => net.Forward(x), new[] { x }.Concat(net.Parameters()).ToArray(), maxPerInput: 20);
    }

    [Test]
    public void IdentityReturnsANewHandleToItsInputAndFlattenKeepsTheBatch()
    {
        using var scope = TensorScope.Begin();
        var x = Tensor.Randn(new Shape(2, 3, 2, 2), new Random(1));
        using var id = new Identity();
        var y = id.Forward(x);
        Assert.That(y, Is.Not.SameAs(x), "the caller owns what Forward returns, so it is a handle of its own");
        Assert.That(y.Storage, Is.SameAs(x.Storage), "no copy");
        y.Dispose();
        Assert.That(x.ToArray<float>(), Has.Length.EqualTo(24), "disposing the returned handle leaves the input intact");
        using var fl = new Flatten();
        Assert.That(fl.Forward(x).Shape, Is.EqualTo(new Shape(2, 12)));
    }

    [Test]
    public void SqueezeExcitationGatesEachChannel()
    {
        using var scope = TensorScope.Begin();
        using var se = new SqueezeExcitation(8, 4, new Random(1));
        Assert.That(se.Reduced, Is.EqualTo(2));
        var x = Tensor.Rand(new Shape(2, 8, 3, 3), new Random(2), 0.5, 1.5);
        using var ng = GradMode.NoGrad();
        var y = se.Forward(x).ToDoubles();
        var xv = x.ToDoubles();
        for (int nc = 0; nc < 16; nc++)
        {
            double gate = y[nc * 9] / xv[nc * 9];
            Assert.That(gate, Is.GreaterThan(0).And.LessThan(1), $"plane {nc}");
            for (int i = 1; i < 9; i++) Assert.That(y[nc * 9 + i], Is.EqualTo(gate * xv[nc * 9 + i]).Within(1e-6), $"plane {nc}");
        }
    }
}
