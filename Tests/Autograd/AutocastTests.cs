// Autocast's policy and bookkeeping (the values against PyTorch are in Ops/AutocastParityTests.cs):
// which ops change type, that a weight is cast once per scope and its forward cast serves the
// backward pass, that F32 master weights get F32 gradients, scopes nest and can be turned off,
// F64 is never cast, and outside a scope mixed float types stay an error.
using NUnit.Framework;
using ResidualEngine.Models;

namespace ResidualEngine.Tests.Autograd;

public class AutocastTests
{
    [TestCase(DType.BF16)]
    [TestCase(DType.F16)]
    public void PolicyAsPyTorch(DType dt)
    {
        using var scope = TensorScope.Begin();
        var rng = new Random(1);
        var x = Tensor.Randn(new Shape(2, 3, 8, 8), rng);
        var w = Tensor.Randn(new Shape(4, 3, 3, 3), rng);
        var fcw = Tensor.Randn(new Shape(5, 4), rng);
        var labels = Tensor.FromArray(new long[] { 1, 2 }, new Shape(2));
        using (Autocast.Begin(dt))
        {
            var y = Ops.Conv2d(x, w, null, padding: 1);
            Assert.That(y.DType, Is.EqualTo(dt), "conv2d runs in the autocast type");
            var bn = Ops.BatchNorm2d(y, Tensor.Ones(new Shape(4)), Tensor.Zeros(new Shape(4)), Tensor.Zeros(new Shape(4)), Tensor.Ones(new Shape(4)), training: true);
            Assert.That(bn.DType, Is.EqualTo(dt), "batch norm keeps the 16-bit activation (F32 parameters)");
            var p = Ops.Flatten(Ops.GlobalAvgPool2d(Ops.MaxPool2d(Ops.Relu(bn), 2)));
            Assert.That(p.DType, Is.EqualTo(dt), "pooling and relu keep their input's type");
            var logits = Ops.Linear(p, fcw);
            Assert.That(logits.DType, Is.EqualTo(dt), "linear runs in the autocast type");
            Assert.That(Ops.SoftmaxCrossEntropy(logits, labels).DType, Is.EqualTo(DType.F32), "the loss is F32");
            Assert.That(Ops.Add(logits, Tensor.Zeros(logits.Shape)).DType, Is.EqualTo(DType.F32), "mixed float types promote to F32");
            using (Autocast.Begin(dt, enabled: false))
                Assert.That(Ops.Conv2d(x, w).DType, Is.EqualTo(DType.F32), "a disabled inner scope turns autocast off");
            var x64 = x.To(DType.F64);
            Assert.That(Ops.Conv2d(x64, w.To(DType.F64)).DType, Is.EqualTo(DType.F64), "F64 is never cast");
        }
        Assert.That(Autocast.Current, Is.Null);
        var bf = Tensor.Zeros(new Shape(3), dt);
        Assert.Throws<ArgumentException>(() => Ops.Add(bf, Tensor.Zeros(new Shape(3))), "outside a scope mixed types are an error");
    }

    [Test]
    public void AWeightIsCastOncePerScopeAndItsGradientIsF32()
    {
        using var scope = TensorScope.Begin();
        var rng = new Random(2);
        var x = Tensor.Randn(new Shape(2, 3, 6, 6), rng);
        var w = Tensor.Randn(new Shape(3, 3, 3, 3), rng);
        w.RequiresGrad = true;
        Tensor loss;
        using (var cast = Autocast.Begin(DType.BF16))
        {
            var y = Ops.Conv2d(Ops.Conv2d(x, w, null, padding: 1), w, null, padding: 1);
            Assert.That(cast.CastCount, Is.EqualTo(1), "two uses of one weight: one cast");
            loss = Ops.SoftmaxCrossEntropy(Ops.Flatten(Ops.GlobalAvgPool2d(y)), Tensor.FromArray(new long[] { 0, 2 }, new Shape(2)));
        }
        // The backward pass runs after the scope ended (its casts are freed): the graph kept what it needs.
        loss.Backward();
        Assert.That(w.Grad!.DType, Is.EqualTo(DType.F32));
        Assert.That(w.Grad.ToDoubles(), Has.None.NaN);

        // The same gradient in F32 within BF16 accuracy (the two paths of the weight are summed).
        var w32 = w.Detach();
        w32.RequiresGrad = true;
        var y32 = Ops.Conv2d(Ops.Conv2d(x, w32, null, padding: 1), w32, null, padding: 1);
        Ops.SoftmaxCrossEntropy(Ops.Flatten(Ops.GlobalAvgPool2d(y32)), Tensor.FromArray(new long[] { 0, 2 }, new Shape(2))).Backward();
        var g32 = w32.Grad!.ToDoubles();
        double norm = Math.Sqrt(g32.Sum(v => v * v));
        Close.Assert(w.Grad.ToDoubles(), g32, 0.05 * norm / Math.Sqrt(g32.Length) * 4, 0.05, "bf16 vs f32 weight gradient");
    }

    [Test]
    public void ResNetUnderAutocastKeepsF32MasterWeights()
    {
        using var scope = TensorScope.Begin();
        using var model = ModelZoo.Create("resnet20", numClasses: 4);
        var x = Tensor.Randn(new Shape(2, 3, 12, 12), new Random(3));
        Tensor loss;
        using (Autocast.Begin(DType.F16))
            loss = Ops.SoftmaxCrossEntropy(model.Forward(x), Tensor.FromArray(new long[] { 1, 3 }, new Shape(2)));
        loss.Backward();
        Assert.That(model.Parameters().Select(p => p.DType), Is.All.EqualTo(DType.F32));
        Assert.That(model.Parameters().Select(p => p.Grad!.DType), Is.All.EqualTo(DType.F32));
        Assert.That(model.NamedBuffers().Where(b => b.Tensor.DType.IsFloat()).Select(b => b.Tensor.DType), Is.All.EqualTo(DType.F32),
            "BN statistics stay F32");
    }

    [Test]
    public void ScopesMustEndInOrder()
    {
        var outer = Autocast.Begin(DType.BF16);
        var inner = Autocast.Begin(DType.F16);
        Assert.That(Autocast.Current!.DType, Is.EqualTo(DType.F16));
        Assert.Throws<InvalidOperationException>(outer.Dispose);
        inner.Dispose();
        outer.Dispose();
        Assert.That(Autocast.Current, Is.Null);
        Assert.Throws<ArgumentException>(() => Autocast.Begin(DType.F32));
    }
}
