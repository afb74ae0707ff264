// SyncBatchNorm2d in one process equals BatchNorm2d (forward values, the three gradients, the
// running statistics), in F64 and with the channels-last layout; with a process group of one it
// is what the multi-process tests build on. Its gradient also passes a finite-difference check.
using NUnit.Framework;
using ResidualEngine.Distributed;

namespace ResidualEngine.Tests.OpTests;

public class SyncBatchNormTests
{
    [Test]
    public void OneProcessMatchesBatchNormExactlyUpToRounding()
    {
        using var scope = TensorScope.Begin();
        var rng = new Random(3);
        var x0 = Tensor.Randn(new Shape(4, 3, 5, 6), rng, DType.F64, 2.0);
        var shift = Tensor.FromArray(new double[] { 10, -3, 0.5 }, 3);
        var x = ResidualEngine.Ops.Map<Pointwise.Add>(x0, shift, Pointwise.Broadcast.Channels(x0));
        var dy = Tensor.Randn(x.Shape, rng, DType.F64);
        var gamma = Tensor.Rand(new Shape(3), rng, 0.5, 1.5, DType.F64);
        var beta = Tensor.Randn(new Shape(3), rng, DType.F64);

        (double[] Y, double[] Dx, double[] Dg, double[] Db, double[] Rm, double[] Rv) Run(bool sync)
        {
            var xi = x.Detach();
            xi.RequiresGrad = true;
            var g = gamma.Clone();
            var b = beta.Clone();
            g.RequiresGrad = true;
            b.RequiresGrad = true;
            var rm = Tensor.FromArray(new double[] { 0.1, 0.2, 0.3 }, 3);
            var rv = Tensor.FromArray(new double[] { 1, 2, 3 }, 3);
            var y = sync
                ? ResidualEngine.Ops.SyncBatchNorm2d(xi, g, b, rm, rv, SingleProcessGroup.Instance, momentum: 0.3)
                : ResidualEngine.Ops.BatchNorm2d(xi, g, b, rm, rv, training: true, momentum: 0.3);
            y.Backward(dy);
            return (y.ToDoubles(), xi.Grad!.ToDoubles(), g.Grad!.ToDoubles(), b.Grad!.ToDoubles(), rm.ToDoubles(), rv.ToDoubles());
        }

        var plain = Run(sync: false);
        var synced = Run(sync: true);
        Assert.That(synced.Y, Is.EqualTo(plain.Y).Within(1e-12), "y");
        Assert.That(synced.Dx, Is.EqualTo(plain.Dx).Within(1e-12), "dx");
        Assert.That(synced.Dg, Is.EqualTo(plain.Dg).Within(1e-11), "dgamma");
        Assert.That(synced.Db, Is.EqualTo(plain.Db).Within(1e-11), "dbeta");
        Assert.That(synced.Rm, Is.EqualTo(plain.Rm).Within(1e-12), "running mean");
        Assert.That(synced.Rv, Is.EqualTo(plain.Rv).Within(1e-12), "running var");
    }

    [Test]
    public void GradientPassesFiniteDifferences()
    {
        using var scope = TensorScope.Begin();
        var rng = new Random(5);
        var x = GradCheck.Leaf(rng, 3, 2, 3, 3);
        var g = Tensor.Rand(new Shape(2), rng, 0.5, 1.5, DType.F64);
        var b = Tensor.Randn(new Shape(2), rng, DType.F64);
        g.RequiresGrad = true;
        b.RequiresGrad = true;
        var rm = Tensor.Zeros(new Shape(2), DType.F64);
        var rv = Tensor.Ones(new Shape(2), DType.F64);
        GradCheck.Run(t => ResidualEngine.Ops.SyncBatchNorm2d(t[0], t[1], t[2], rm, rv, SingleProcessGroup.Instance), [x, g, b]);
    }

    [Test]
    public void HalfPrecisionIsRefusedWithAClearMessage()
    {
        using var scope = TensorScope.Begin();
        var x = Tensor.Zeros(new Shape(2, 2, 2, 2), DType.F32);
        var p = Tensor.Zeros(new Shape(2), DType.F64);
        Assert.That(() => ResidualEngine.Ops.SyncBatchNorm2d(x, p, p, p, p, SingleProcessGroup.Instance),
            Throws.ArgumentException.With.Message.Contains("must all be F32 or all F64"));
    }
}
