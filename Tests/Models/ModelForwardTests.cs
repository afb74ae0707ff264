// Whole models run: every zoo model except the very deep or very wide ones does a forward
// pass at a small input and gives (N, classes) finite logits; a small one trains a step
// (every parameter gets a gradient, BN counters advance); F32 and F64 agree.
using NUnit.Framework;
using ResidualEngine.Autograd;
using ResidualEngine.Models;
using ResidualEngine.Nn;

namespace ResidualEngine.Tests.Models;

public class ModelForwardTests
{
    // Left out to keep the suite fast (they share code paths with the ones run): the deep
    // (resnet101/152/200, preact_resnet101/152, resnet110/1202, plain110, preact_resnet1001,
    // preact_resnet164) and wide (wide_resnet50_2) ones.
    private static readonly string[] Skipped =
        ["resnet101", "resnet152", "resnet200", "preact_resnet101", "preact_resnet152", "wide_resnet50_2",
         "resnet110", "resnet1202", "plain110", "preact_resnet110", "resnet164", "preact_resnet164", "preact_resnet1001"];

    public static IEnumerable<string> Runnable() => ModelZoo.Names.Where(n => !Skipped.Contains(n));

    [TestCaseSource(nameof(Runnable))]
    public void ForwardGivesLogitsOfTheRightShape(string name)
    {
        using var scope = TensorScope.Begin();
        using var m = ModelZoo.Create(name, numClasses: 5);
        using var ng = GradMode.NoGrad(); // no graph: a graph dropped without backward keeps its saved tensors
        // 32x32 is the smallest input every ImageNet net takes (five halvings down to 1x1).
        var x = Tensor.Randn(new Shape(2, 3, 32, 32), new Random(1));
        var y = m.Forward(x);
        Assert.That(y.Shape, Is.EqualTo(new Shape(2, 5)));
        Assert.That(y.ToDoubles().All(double.IsFinite), Is.True);
        Assert.That(m.Trace(x.Shape, new ShapeTrace()), Is.EqualTo(y.Shape));
    }

    [Test]
    public void SmallModelTrainsAStep()
    {
        using var scope = TensorScope.Begin();
        using var m = ModelZoo.Create("resnet20");
        var x = Tensor.Randn(new Shape(4, 3, 16, 16), new Random(1));
        var labels = Tensor.FromArray(new long[] { 0, 3, 9, 3 }, 4);
        var loss = Ops.SoftmaxCrossEntropy(m.Forward(x), labels);
        Assert.That(loss.Item(), Is.EqualTo(Math.Log(10)).Within(1.5), "initial loss near log(classes)");
        loss.Backward();
        foreach (var (n, p) in m.NamedParameters())
        {
            Assert.That(p.Grad, Is.Not.Null, n);
            Assert.That(p.Grad!.Shape, Is.EqualTo(p.Shape), n);
        }
        Assert.That(m.NamedParameters().Count(p => p.Tensor.Grad!.ToDoubles().Any(v => v != 0)), Is.EqualTo(m.NamedParameters().Count()),
            "every parameter is reached by the gradient");
        Assert.That(m.StateDict()["layer3.2.bn2.num_batches_tracked"].ToArray<long>(), Is.EqualTo(new long[] { 1 }));
        var rm = m.StateDict()["bn1.running_mean"].ToDoubles();
        Assert.That(rm.Any(v => v != 0), Is.True, "running statistics move in training");
        m.Eval();
        using (GradMode.NoGrad()) m.Forward(x);
        Assert.That(m.StateDict()["layer3.2.bn2.num_batches_tracked"].ToArray<long>(), Is.EqualTo(new long[] { 1 }), "eval does not count");
        Assert.That(m.StateDict()["bn1.running_mean"].ToDoubles(), Is.EqualTo(rm), "eval does not update running stats");
    }

    [Test]
    public void F32AndF64Agree()
    {
        using var scope = TensorScope.Begin();
        var cfg = ModelZoo.Config("preact_resnet164") with { Layers = [1, 1, 1], SqueezeExcitation = true, NumClasses = 4 };
        using var m32 = new ResNet(cfg, seed: 3);
        using var m64 = new ResNet(cfg, seed: 3);
        m64.ToDType(DType.F64);
        using var ng = GradMode.NoGrad();
        var x = Tensor.Randn(new Shape(2, 3, 16, 16), new Random(4), DType.F64);
        Close.Assert(m32.Forward(x.To(DType.F32)).ToDoubles(), m64.Forward(x).ToDoubles(), 1e-4, 1e-3, "logits");
    }

    [Test]
    public void WrongInputIsRejectedWithTheModelName()
    {
        using var scope = TensorScope.Begin();
        using var m = ModelZoo.Create("resnet20");
        var e = Assert.Throws<ArgumentException>(() => m.Forward(Tensor.Zeros(new Shape(2, 1, 32, 32))));
        Assert.That(e!.Message, Does.Contain("resnet20").And.Contain("(N, 3, H, W)"));
    }
}
