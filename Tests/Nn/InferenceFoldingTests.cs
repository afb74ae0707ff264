// Eval-mode folding (Conv2d.Forward with a BatchNorm2d, ConvInferenceCache): the folded, fused
// forward against the unfused ops (F64, within rounding) for a layer and for whole networks of
// every block type, and the cache's invalidation: a training step after an evaluation, a state-dict
// load, a write into a BN buffer by hand, a dtype conversion — each is followed by an evaluation
// that must again equal the unfused path — while repeated evaluations reuse the cache.
using NUnit.Framework;
using ResidualEngine.Autograd;
using ResidualEngine.Models;
using ResidualEngine.Nn;
using ResidualEngine.Nn.Optim;

namespace ResidualEngine.Tests.Nn;

public class InferenceFoldingTests
{
    /// <summary>The unfused eval forward: with a gradient recorded, every layer runs its plain ops.</summary>
    private static double[] Unfused(Module m, Tensor x)
    {
        using var scope = TensorScope.Begin();
        using var xg = x.Clone();
        xg.RequiresGrad = true;
        return m.Forward(xg).ToDoubles();
    }

    private static double[] Folded(Module m, Tensor x)
    {
        using var scope = TensorScope.Begin();
        using var ng = GradMode.NoGrad();
        return m.Forward(x).ToDoubles();
    }

    private static void Randomise(BatchNorm2d bn, Random rng)
    {
        using var ng = GradMode.NoGrad();
        int c = bn.NumFeatures;
        var dt = bn.Weight.DType;
        var state = new Dictionary<string, Tensor>
        {
            ["weight"] = Tensor.Rand(new Shape(c), rng, 0.5, 1.5, dt),
            ["bias"] = Tensor.Randn(new Shape(c), rng, dt, 0.3),
            ["running_mean"] = Tensor.Randn(new Shape(c), rng, dt, 0.3),
            ["running_var"] = Tensor.Rand(new Shape(c), rng, 0.5, 2.0, dt),
            ["num_batches_tracked"] = Tensor.Zeros(Shape.Scalar, DType.I64),
        };
        bn.LoadStateDict(state);
        foreach (var t in state.Values) t.Dispose();
    }

    [Test]
    public void ConvBnAddReluFoldsWithinRounding()
    {
        using var scope = TensorScope.Begin();
        var rng = new Random(1);
        using var conv = new Conv2d(4, 6, 3, padding: 1, bias: true, rng: rng, dtype: DType.F64);
        using var bn = new BatchNorm2d(6, eps: 1e-3, dtype: DType.F64);
        Randomise(bn, rng);
        conv.Eval();
        bn.Eval();
        var x = Tensor.Randn(new Shape(2, 4, 7, 9), rng, DType.F64);
        var res = Tensor.Randn(new Shape(2, 6, 7, 9), rng, DType.F64);
        double[] folded;
        using (GradMode.NoGrad()) folded = conv.Forward(x, bn, res, relu: true).ToDoubles();
        var unfused = Ops.AddRelu(bn.Forward(conv.Forward(x)), res).ToDoubles();
        Close.Assert(folded, unfused, 1e-12, 1e-11, "conv + bn + residual + relu, folded");
        Assert.That(conv.InferenceBuilds, Is.EqualTo(1));
    }

    public static IEnumerable<TestCaseData> Nets()
    {
        var basic = new ResNetConfig { Name = "fold-basic", Block = BlockKind.Basic, Layers = [1, 1], Widths = [4, 8], Stem = StemKind.Cifar, NumClasses = 3 };
        var bottle = basic with { Name = "fold-bottleneck", Block = BlockKind.Bottleneck, Layers = [1, 2] };
        yield return new TestCaseData(basic).SetName("Basic_projection");
        yield return new TestCaseData(basic with { Shortcut = ShortcutOption.A }).SetName("Basic_optionA");
        yield return new TestCaseData(bottle).SetName("Bottleneck");
        yield return new TestCaseData(bottle with { Groups = 2, WidthPerGroup = 64 }).SetName("Bottleneck_groups");
        yield return new TestCaseData(basic with { Plain = true }).SetName("Plain");
        yield return new TestCaseData(basic with { PreActivation = true }).SetName("PreActBasic");
        yield return new TestCaseData(bottle with { PreActivation = true }).SetName("PreActBottleneck");
        yield return new TestCaseData(basic with { SqueezeExcitation = true, SeReduction = 2 }).SetName("Basic_se");
        yield return new TestCaseData(basic with { ScaleResidual = true }).SetName("Basic_scaled");
        yield return new TestCaseData(basic with { Stem = StemKind.Imagenet }).SetName("Imagenet_stem");
    }

    private static ResNet Net(ResNetConfig cfg, Random rng)
    {
        var net = new ResNet(cfg, seed: 3);
        net.ToDType(DType.F64);
        foreach (var (_, m) in net.NamedModules())
            if (m is BatchNorm2d bn) Randomise(bn, rng);
        return net;
    }

    [TestCaseSource(nameof(Nets))]
    public void EvalOfEveryBlockTypeMatchesTheUnfusedOps(ResNetConfig cfg)
    {
        using var scope = TensorScope.Begin();
        var rng = new Random(2);
        using var net = Net(cfg, rng);
        net.Eval();
        var x = Tensor.Randn(new Shape(2, 3, 20, 20), rng, DType.F64);
        Close.Assert(Folded(net, x), Unfused(net, x), 1e-11, 1e-9, cfg.Name);
    }

    [TestCaseSource(nameof(Nets))]
    public void TrainStepAfterEvalInvalidatesTheFold(ResNetConfig cfg)
    {
        using var scope = TensorScope.Begin();
        var rng = new Random(4);
        using var net = Net(cfg, rng);
        var x = Tensor.Randn(new Shape(4, 3, 20, 20), rng, DType.F64);
        var labels = Tensor.FromArray(new long[] { 0, 1, 2, 1 }, new Shape(4));
        using var sgd = Sgd.ForModule(net, 0.1, 0.9, 1e-4, nesterov: false, noBnWeightDecay: false);

        net.Eval();
        var before = Folded(net, x);
        Close.Assert(before, Unfused(net, x), 1e-11, 1e-9, "first evaluation");

        // One training step changes weights (SGD) and running statistics (BN in training mode).
        net.Train();
        using (TensorScope.Begin())
        {
            var loss = Ops.SoftmaxCrossEntropy(net.Forward(x), labels);
            net.ZeroGrad();
            loss.Backward();
            sgd.Step();
        }
        net.Eval();
        var after = Folded(net, x);
        Close.Assert(after, Unfused(net, x), 1e-11, 1e-9, "evaluation after a training step");
        Assert.That(after.Zip(before).Max(p => Math.Abs(p.First - p.Second)), Is.GreaterThan(1e-6), "the step changed the outputs");
    }

    [Test]
    public void RepeatedEvaluationReusesTheCacheAndEveryWriteInvalidatesIt()
    {
        using var scope = TensorScope.Begin();
        var rng = new Random(5);
        var cfg = new ResNetConfig { Name = "fold", Block = BlockKind.Basic, Layers = [1], Widths = [4], Stem = StemKind.Cifar, NumClasses = 3 };
        using var net = Net(cfg, rng);
        net.Eval();
        var x = Tensor.Randn(new Shape(2, 3, 12, 12), rng, DType.F64);
        var block = net.Blocks.First();
        var conv = (Conv2d)block.Children().First(c => c.Name == "conv2").Module;
        var bn = (BatchNorm2d)block.Children().First(c => c.Name == "bn2").Module;

        Folded(net, x);
        Folded(net, x);
        Assert.That(conv.InferenceBuilds, Is.EqualTo(1), "a second evaluation reuses the folded weights");

        // A state-dict load (new running statistics).
        Randomise(bn, rng);
        Close.Assert(Folded(net, x), Unfused(net, x), 1e-11, 1e-9, "after a state-dict load");
        Assert.That(conv.InferenceBuilds, Is.EqualTo(2));

        // A write by hand into one element of a BN buffer through the backend.
        using (var v = Tensor.Full(new Shape(bn.NumFeatures), 3.0, DType.F64)) bn.RunningVar.Backend.Copy(bn.RunningVar, v);
        Close.Assert(Folded(net, x), Unfused(net, x), 1e-11, 1e-9, "after writing running_var");

        // A write into the conv weights.
        conv.Weight.Backend.Fill(conv.Weight, 0.01);
        Close.Assert(Folded(net, x), Unfused(net, x), 1e-11, 1e-9, "after filling the weights");

        // A dtype conversion replaces every tensor.
        net.ToDType(DType.F32);
        using var x32 = x.To(DType.F32);
        Close.Assert(Folded(net, x32), Unfused(net, x32), 1e-4, 1e-4, "after ToDType(F32)");
    }

    [Test]
    public void TrainingReleasesTheEvalCache()
    {
        using var scope = TensorScope.Begin();
        var rng = new Random(6);
        using var conv = new Conv2d(3, 4, 3, padding: 1, rng: rng);
        var x = Tensor.Randn(new Shape(1, 3, 8, 8), rng);
        conv.Eval();
        using (GradMode.NoGrad()) conv.Forward(x).Dispose();
        Assert.That(conv.InferenceBuilds, Is.EqualTo(1));
        long reserved = ResidualEngine.Backends.Cpu.HostAllocator.LiveBytes;
        conv.Train();
        conv.Forward(x).Dispose();
        Assert.That(conv.HasInferenceCache, Is.False, "the cache is gone while training");
        Assert.That(ResidualEngine.Backends.Cpu.HostAllocator.LiveBytes, Is.LessThan(reserved), "its packed weights went back to the allocator");
    }

    [TestCaseSource(nameof(Nets))]
    public void EvalModeBlocksPassGradCheckThroughTheUnfusedPath(ResNetConfig cfg)
    {
        // Analytical gradients come from the unfused ops (a gradient is recorded); the numerical ones
        // from no-grad evaluations, which take the folded path: both must agree.
        using var scope = TensorScope.Begin();
        var rng = new Random(7);
        using var net = Net(cfg, rng);
        net.Eval();
        var block = net.Blocks.First();
        var x = GradCheck.Leaf(rng, 2, block.InChannels, 6, 6);
        var inputs = new[] { x }.Concat(block.Parameters()).ToArray();
        GradCheck.Run(_ => block.Forward(x), inputs, maxPerInput: 12);
    }
}
