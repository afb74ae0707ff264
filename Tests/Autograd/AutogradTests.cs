// The autograd core: accumulation, shared inputs, no-grad mode, release of saved tensors,
// scopes and leak counters.
using NUnit.Framework;
using ResidualEngine.Autograd;

namespace ResidualEngine.Tests.Autograd;

public class AutogradTests
{
    [Test]
    public void TensorUsedTwiceReceivesSumOfBothPaths()
    {
        using var scope = TensorScope.Begin();
        var x = Tensor.FromArray(new double[] { 1, -2, 3 }, 3);
        x.RequiresGrad = true;
        // y = relu(x) + x: the identity path and the relu path both reach x.
        var y = Ops.Sum(Ops.Add(Ops.Relu(x), x));
        y.Backward();
        Assert.That(x.Grad!.ToArray<double>(), Is.EqualTo(new double[] { 2, 1, 2 }));
    }

    [Test]
    public void LeafGradientsAccumulateAcrossBackwardCalls()
    {
        using var scope = TensorScope.Begin();
        var x = Tensor.FromArray(new double[] { 1, 2 }, 2);
        x.RequiresGrad = true;
        Ops.Sum(Ops.Scale(x, 3)).Backward();
        Ops.Sum(Ops.Scale(x, 3)).Backward();
        Assert.That(x.Grad!.ToArray<double>(), Is.EqualTo(new double[] { 6, 6 }));
    }

    [Test]
    public void NoGradRecordsNothing()
    {
        using var scope = TensorScope.Begin();
        var x = Tensor.FromArray(new double[] { 1, 2 }, 2);
        x.RequiresGrad = true;
        using (GradMode.NoGrad())
        {
            var y = Ops.Relu(x);
            Assert.That(y.GradFn, Is.Null);
            Assert.That(y.RequiresGrad, Is.False);
        }
        Assert.That(Ops.Relu(x).RequiresGrad, Is.True);
    }

    [Test]
    public void SecondBackwardThroughSameGraphIsRejected()
    {
        using var scope = TensorScope.Begin();
        var x = Tensor.FromArray(new double[] { 1, 2 }, 2);
        x.RequiresGrad = true;
        var y = Ops.Sum(Ops.Mul(x, x));
        y.Backward();
        var e = Assert.Throws<InvalidOperationException>(() => y.Backward());
        Assert.That(e!.Message, Does.Contain("second time"));
    }

    [Test]
    public void BackwardOnNonScalarWithoutGradientIsRejected()
    {
        using var scope = TensorScope.Begin();
        var x = Tensor.FromArray(new double[] { 1, 2 }, 2);
        x.RequiresGrad = true;
        var e = Assert.Throws<InvalidOperationException>(() => Ops.Relu(x).Backward());
        Assert.That(e!.Message, Does.Contain("scalar"));
    }

    [Test]
    public void SavedTensorsAreFreedAfterBackwardAndScopeReturnsCountersToStart()
    {
        long t0 = TensorStats.LiveTensors, b0 = TensorStats.LiveBytes(DeviceType.Cpu);
        var x = Tensor.FromArray(new float[] { 1, -2, 3, 4 }, 4);
        x.RequiresGrad = true;
        using (var scope = TensorScope.Begin())
        {
            var y = Ops.Relu(Ops.Mul(x, x));
            var loss = Ops.Sum(y);
            loss.Backward();
            Assert.That(x.Grad!.ToArray<float>(), Is.EqualTo(new float[] { 2, -4, 6, 8 }));
        }
        x.Dispose(); // also disposes x.Grad
        Assert.That(TensorStats.LiveTensors, Is.EqualTo(t0));
        Assert.That(TensorStats.LiveBytes(DeviceType.Cpu), Is.EqualTo(b0));
    }

    [Test]
    public void KeepMovesTensorOutOfScope()
    {
        Tensor kept;
        using (var scope = TensorScope.Begin())
        {
            var a = Tensor.Zeros(3);
            kept = scope.Keep(Tensor.Ones(new Shape(3)));
            Assert.That(scope.OwnedCount, Is.EqualTo(1));
            _ = a;
        }
        Assert.That(kept.IsDisposed, Is.False);
        Assert.That(kept.ToArray<float>(), Is.EqualTo(new float[] { 1, 1, 1 }));
        kept.Dispose();
    }

    [Test]
    public void ScopesMustEndInOrder()
    {
        var outer = TensorScope.Begin();
        var inner = TensorScope.Begin();
        Assert.Throws<InvalidOperationException>(() => outer.Dispose());
        inner.Dispose();
        outer.Dispose();
    }

    [Test]
    public void UsingADisposedTensorNamesIt()
    {
        var t = Tensor.Zeros(2);
        t.Name = "w";
        t.Dispose();
        var e = Assert.Throws<ObjectDisposedException>(() => _ = t.Pointer);
        Assert.That(e!.Message, Does.Contain("w"));
    }

    [Test]
    public void ElementwiseOpsPassGradCheck()
    {
        using var scope = TensorScope.Begin();
        var rng = new Random(3);
        var a = GradCheck.Leaf(rng, 3, 5);
        var b = GradCheck.Leaf(rng, 3, 5);
        GradCheck.Run(t => Ops.Mul(Ops.Add(t[0], t[1]), t[1]), [a, b]);
        GradCheck.Run(t => Ops.Sigmoid(Ops.Scale(t[0], 0.7)), [a]);
        GradCheck.Run(t => Ops.Mean(Ops.AddRelu(t[0], t[1])), [a, b]);
        var s = GradCheck.Leaf(rng, 3);
        GradCheck.Run(t => Ops.ScaleRows(t[0], t[1]), [a, s]);
        GradCheck.Run(t => Ops.Reshape(Ops.Relu(t[0]), 5, -1), [a]);
    }
}

public class GraphLifetimeTests
{
    [Test]
    public void DroppedGraphFreesSavedTensorsWhenItsOutputsAreDisposed()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        long t0 = TensorStats.LiveTensors, b0 = TensorStats.LiveBytes(DeviceType.Cpu);
        var x = Tensor.FromArray(new float[] { 1, -2, 3, 4 }, 4);
        x.RequiresGrad = true;
        using (TensorScope.Begin())
        {
            // Forward with grad on, never backward: the scope's end must free what the nodes saved.
            _ = Ops.Sigmoid(Ops.Mul(Ops.Relu(x), x));
        }
        x.Dispose();
        Assert.That(TensorStats.LiveTensors, Is.EqualTo(t0));
        Assert.That(TensorStats.LiveBytes(DeviceType.Cpu), Is.EqualTo(b0));
    }

    [Test]
    public void DisposingIntermediateHandlesKeepsBackwardWorking()
    {
        // The graph holds what backward needs; a handle is only a handle.
        using var scope = TensorScope.Begin();
        var x = Tensor.FromArray(new double[] { 1, 2 }, 2);
        x.RequiresGrad = true;
        var h = Ops.Mul(x, x);
        var r = Ops.Relu(h);
        var y = Ops.Sum(r);
        h.Dispose();
        r.Dispose();
        y.Backward();
        Assert.That(x.Grad!.ToArray<double>(), Is.EqualTo(new double[] { 2, 4 }));
    }

    [Test]
    public void DisposingTheLastHandleOfAGraphFreesWhatItSaved()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        var x = Tensor.FromArray(new float[4096], 4096);
        x.RequiresGrad = true;
        long b0 = TensorStats.LiveBytes(DeviceType.Cpu), t0 = TensorStats.LiveTensors;
        var h = Ops.Mul(x, x);   // saves x twice (aliases)
        var r = Ops.Relu(h);     // saves r's data
        h.Dispose();
        Assert.That(TensorStats.LiveBytes(DeviceType.Cpu), Is.GreaterThan(b0), "r's graph still needs what Mul and Relu saved");
        r.Dispose();
        Assert.That(TensorStats.LiveTensors, Is.EqualTo(t0));
        Assert.That(TensorStats.LiveBytes(DeviceType.Cpu), Is.EqualTo(b0));
        x.Dispose();
    }
}

public class GradientAccumulationTests
{
    [Test]
    public void SharedGradientBufferIsNeverAccumulatedInPlace()
    {
        // The repro from issue 9: Add's backward hands one dY to both inputs; x1 receives two
        // contributions, and must not write the second one into the buffer x2's gradient shares.
        using var scope = TensorScope.Begin();
        var x1 = Tensor.FromArray(new double[] { 1, 2 }, 2);
        var x2 = Tensor.FromArray(new double[] { 3, 4 }, 2);
        x1.RequiresGrad = true;
        x2.RequiresGrad = true;
        Ops.Sum(Ops.Add(Ops.Add(x1, x2), x1)).Backward();
        Assert.That(x2.Grad!.ToArray<double>(), Is.EqualTo(new double[] { 1, 1 }));
        Assert.That(x1.Grad!.ToArray<double>(), Is.EqualTo(new double[] { 2, 2 }));
    }

    [Test]
    public void UserSeedGradientIsNotWrittenInto()
    {
        using var scope = TensorScope.Begin();
        var x = Tensor.FromArray(new double[] { 1, 2 }, 2);
        x.RequiresGrad = true;
        var seed = Tensor.FromArray(new double[] { 0.5, -1 }, 2);
        var y = Ops.Add(Ops.Reshape(x, 2), x);
        y.Backward(seed);
        Assert.That(seed.ToArray<double>(), Is.EqualTo(new double[] { 0.5, -1 }));
        Assert.That(x.Grad!.ToArray<double>(), Is.EqualTo(new double[] { 1, -2 }));
        // A second backward accumulates into x.Grad, and still leaves the seed alone.
        Ops.Add(x, x).Backward(seed);
        Assert.That(seed.ToArray<double>(), Is.EqualTo(new double[] { 0.5, -1 }));
        Assert.That(x.Grad!.ToArray<double>(), Is.EqualTo(new double[] { 2, -4 }));
    }

    [Test]
    public void LeafUsedDirectlyAsRootAdoptsACopyOfTheSeed()
    {
        using var scope = TensorScope.Begin();
        var x = Tensor.FromArray(new double[] { 1, 2 }, 2);
        x.RequiresGrad = true;
        var seed = Tensor.FromArray(new double[] { 3, 4 }, 2);
        x.Backward(seed);
        x.Backward(seed);
        Assert.That(x.Grad!.ToArray<double>(), Is.EqualTo(new double[] { 6, 8 }));
        Assert.That(seed.ToArray<double>(), Is.EqualTo(new double[] { 3, 4 }));
    }
}

public class ModelLifetimeTests
{
    [Test]
    public void ResNetForwardFreesItsIntermediatesUnderNoGrad()
    {
        // Only the parameters, the input and the logits may be alive after an inference forward,
        // and the peak must stay far below the sum of every activation the net produced.
        using var model = ResidualEngine.Models.ModelZoo.Create("resnet18", numClasses: 10);
        model.Train(false);
        using var x = Tensor.Randn(new Shape(2, 3, 64, 64), new Random(1));
        // The first eval forward builds each layer's eval cache (BN folded into the conv: one bias
        // tensor per conv + BN pair, and packed weights); later ones reuse it and allocate nothing that stays.
        long firstBefore = TensorStats.LiveTensors;
        using (GradMode.NoGrad()) model.Forward(x).Dispose();
        int folded = model.NamedModules().Count(m => m.Module is ResidualEngine.Nn.BatchNorm2d);
        Assert.That(TensorStats.LiveTensors - firstBefore, Is.EqualTo(folded), "one folded bias per conv + BN pair");
        long before = TensorStats.LiveBytes(DeviceType.Cpu), tensorsBefore = TensorStats.LiveTensors;
        TensorStats.ResetPeak();
        Tensor y;
        using (GradMode.NoGrad()) y = model.Forward(x);
        long peak = TensorStats.PeakBytes(DeviceType.Cpu) - before;
        Assert.That(TensorStats.LiveTensors, Is.EqualTo(tensorsBefore + 1), "only the logits outlive the forward");
        Assert.That(TensorStats.LiveBytes(DeviceType.Cpu) - before, Is.EqualTo(y.Bytes));
        // The largest activations of resnet18 at 64 px, batch 2: 2 x 64 x 32 x 32 floats = 512 KiB each.
        // Every activation together is several MiB; a freed forward peaks at a few of them.
        Assert.That(peak, Is.LessThan(1_500_000), $"inference peak {peak} bytes");
        y.Dispose();
    }

    [Test]
    public void TrainingStepKeepsOnlyWhatBackwardNeedsAndEndsWhereItStarted()
    {
        using var model = ResidualEngine.Models.ModelZoo.Create("resnet18", numClasses: 10);
        using var x = Tensor.Randn(new Shape(2, 3, 64, 64), new Random(1));
        using var labels = Tensor.FromArray(new long[] { 1, 7 }, 2);
        long before = TensorStats.LiveBytes(DeviceType.Cpu), tensorsBefore = TensorStats.LiveTensors;
        using (var loss = model.Forward(x).Then(l => Ops.SoftmaxCrossEntropy(l, labels)))
        {
            long held = TensorStats.LiveBytes(DeviceType.Cpu) - before;
            Assert.That(held, Is.GreaterThan(0), "the graph holds what backward needs");
            loss.Backward();
        }
        foreach (var p in model.Parameters()) { Assert.That(p.Grad, Is.Not.Null); p.Grad!.Dispose(); p.Grad = null; }
        Assert.That(TensorStats.LiveTensors, Is.EqualTo(tensorsBefore), "no handle, saved tensor or gradient outlives the step");
        Assert.That(TensorStats.LiveBytes(DeviceType.Cpu), Is.EqualTo(before));
    }
}

public class BatchNormReluLifetimeTests
{
    [Test]
    public void BatchNormFollowedByReluKeepsOneActivationForBackward()
    {
        // BN saves its input; ReLU saves its output; BN's output is dead once ReLU has read it.
        using var bn = new ResidualEngine.Nn.BatchNorm2d(8);
        using var x = Tensor.Randn(new Shape(4, 8, 16, 16), new Random(2));
        x.RequiresGrad = true;
        long activation = x.Bytes;
        long before = TensorStats.LiveBytes(DeviceType.Cpu);
        var y = bn.Forward(x).Then(Ops.Relu);
        long held = TensorStats.LiveBytes(DeviceType.Cpu) - before;
        // y (also what ReLU saved: the same buffer) plus BN's per-channel statistics; not BN's output.
        Assert.That(held, Is.GreaterThanOrEqualTo(activation));
        Assert.That(held, Is.LessThan(activation + 1024), $"BN + ReLU hold {held} bytes for a {activation}-byte activation");
        Ops.Sum(y).Backward();
        Assert.That(x.Grad, Is.Not.Null);
        y.Dispose();
    }
}
