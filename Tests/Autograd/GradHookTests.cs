// Gradient-ready hooks: they fire once per backward pass per leaf, after every path to the leaf
// was summed (the value they see is final), while the rest of the pass has not run yet (so
// data-parallel training can start communicating early); removing a hook stops it; a hook that
// throws ends the pass with its exception.
using NUnit.Framework;

namespace ResidualEngine.Tests.Autograd;

public class GradHookTests
{
    [Test]
    public void HookSeesTheSummedGradientOncePerPass()
    {
        using var scope = TensorScope.Begin();
        var x = Tensor.FromArray(new double[] { 1, -2, 3 }, 3);
        x.RequiresGrad = true;
        var seen = new List<double[]>();
        using var reg = x.RegisterGradReadyHook(t => seen.Add(t.Grad!.ToArray<double>()));
        Ops.Sum(Ops.Add(Ops.Relu(x), x)).Backward(); // two paths reach x
        Assert.That(seen, Has.Count.EqualTo(1));
        Assert.That(seen[0], Is.EqualTo(new double[] { 2, 1, 2 }));
        Ops.Sum(Ops.Scale(x, 3)).Backward(); // accumulates: the hook sees the running total
        Assert.That(seen, Has.Count.EqualTo(2));
        Assert.That(seen[1], Is.EqualTo(new double[] { 5, 4, 5 }));
    }

    [Test]
    public void HooksFireWhileTheRestOfTheBackwardIsStillPending()
    {
        using var scope = TensorScope.Begin();
        // y = sum(w2 * relu(w1 * x)): w2's gradient is final before w1's is computed.
        var x = Tensor.FromArray(new double[] { 1, 2 }, 2);
        var w1 = Tensor.FromArray(new double[] { 0.5, -1.5 }, 2);
        var w2 = Tensor.FromArray(new double[] { 2, 3 }, 2);
        w1.RequiresGrad = true;
        w2.RequiresGrad = true;
        var order = new List<string>();
        using var r1 = w1.RegisterGradReadyHook(_ => order.Add("w1"));
        using var r2 = w2.RegisterGradReadyHook(t =>
        {
            order.Add("w2");
            Assert.That(w1.Grad, Is.Null, "w1's gradient is not computed yet when w2's is ready");
        });
        Ops.Sum(Ops.Mul(w2, Ops.Relu(Ops.Mul(w1, x)))).Backward();
        Assert.That(order, Is.EqualTo(new[] { "w2", "w1" }));
        Assert.That(w1.Grad!.ToArray<double>(), Is.EqualTo(new double[] { 2, 0 }));
    }

    [Test]
    public void DisposedHookNoLongerRuns()
    {
        using var scope = TensorScope.Begin();
        var x = Tensor.FromArray(new double[] { 1 }, 1);
        x.RequiresGrad = true;
        int a = 0, b = 0;
        var ra = x.RegisterGradReadyHook(_ => a++);
        using var rb = x.RegisterGradReadyHook(_ => b++);
        Ops.Sum(x).Backward();
        ra.Dispose();
        ra.Dispose();
        Ops.Sum(x).Backward();
        Assert.That((a, b), Is.EqualTo((1, 2)));
    }

    [Test]
    public void ThrowingHookEndsTheBackwardAndFreesItsGradients()
    {
        using var scope = TensorScope.Begin();
        var x = Tensor.FromArray(new double[] { 1, 2 }, 2);
        x.RequiresGrad = true;
        using var reg = x.RegisterGradReadyHook(_ => throw new InvalidOperationException("hook failed"));
        var y = Ops.Sum(Ops.Scale(x, 2));
        var e = Assert.Throws<InvalidOperationException>(() => y.Backward());
        Assert.That(e!.Message, Is.EqualTo("hook failed"));
    }

    [Test]
    public void OnlyLeavesTakeHooks()
    {
        using var scope = TensorScope.Begin();
        var x = Tensor.FromArray(new double[] { 1 }, 1);
        x.RequiresGrad = true;
        var y = Ops.Scale(x, 2);
        Assert.That(() => y.RegisterGradReadyHook(_ => { }), Throws.InvalidOperationException.With.Message.Contains("not a leaf"));
    }
}
