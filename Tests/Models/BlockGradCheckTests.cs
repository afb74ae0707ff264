// Every block type, in F64 at a tiny size, passes a finite-difference gradient check with
// respect to its input and every parameter: basic, bottleneck, both pre-activation blocks,
// SE, grouped convs, shortcut options A/B/C and plain blocks, with and without stride.
// Blocks are built in F32 (as a model would be) and converted with Module.ToDType(F64).
using NUnit.Framework;
using ResidualEngine.Autograd;
using ResidualEngine.Models;
using ResidualEngine.Nn;

namespace ResidualEngine.Tests.Models;

public class BlockGradCheckTests
{
    private static ResNetConfig Cfg(BlockKind block) =>
        new() { Name = "gradcheck", Block = block, Layers = [1], Widths = [4], Stem = StemKind.Cifar, NumClasses = 2 };

    public static IEnumerable<TestCaseData> Cases()
    {
        var basic = Cfg(BlockKind.Basic);
        var bottle = Cfg(BlockKind.Bottleneck);
        // (name, config, in planes, planes, stride)
        yield return new TestCaseData(basic, 4, 4, 1).SetName("Basic_identity");
        yield return new TestCaseData(basic, 4, 6, 2).SetName("Basic_projectionB_stride2");
        yield return new TestCaseData(basic with { Shortcut = ShortcutOption.A }, 4, 6, 2).SetName("Basic_optionA_stride2");
        yield return new TestCaseData(basic with { Shortcut = ShortcutOption.C }, 4, 4, 1).SetName("Basic_optionC");
        yield return new TestCaseData(basic with { Plain = true }, 4, 6, 2).SetName("Basic_plain");
        yield return new TestCaseData(basic with { SqueezeExcitation = true, SeReduction = 2 }, 4, 4, 1).SetName("Basic_se");
        yield return new TestCaseData(basic with { ScaleResidual = true }, 4, 4, 1).SetName("Basic_scaled");
        yield return new TestCaseData(bottle, 4, 2, 2).SetName("Bottleneck_projection_stride2");
        yield return new TestCaseData(bottle, 8, 2, 1).SetName("Bottleneck_identity");
        yield return new TestCaseData(bottle with { Groups = 2, WidthPerGroup = 64 }, 4, 2, 1).SetName("Bottleneck_groups2");
        yield return new TestCaseData(bottle with { SqueezeExcitation = true, SeReduction = 4 }, 4, 2, 2).SetName("Bottleneck_se");
        yield return new TestCaseData(bottle with { Plain = true }, 4, 2, 1).SetName("Bottleneck_plain");
        yield return new TestCaseData(basic with { PreActivation = true }, 4, 6, 2).SetName("PreActBasic_projection");
        yield return new TestCaseData(basic with { PreActivation = true }, 4, 4, 1).SetName("PreActBasic_identity");
        yield return new TestCaseData(basic with { PreActivation = true, Shortcut = ShortcutOption.A }, 4, 6, 2).SetName("PreActBasic_optionA");
        yield return new TestCaseData(bottle with { PreActivation = true }, 4, 2, 2).SetName("PreActBottleneck_projection");
        yield return new TestCaseData(bottle with { PreActivation = true, SqueezeExcitation = true, SeReduction = 4, Groups = 2 }, 8, 2, 1)
            .SetName("PreActBottleneck_se_groups_identity");
        yield return new TestCaseData(bottle with { PreActivation = true, Plain = true }, 4, 2, 1).SetName("PreActBottleneck_plain");
    }

    [TestCaseSource(nameof(Cases))]
    public void BlockPassesGradCheck(ResNetConfig cfg, int inPlanes, int planes, int stride)
    {
        using var scope = TensorScope.Begin();
        using var block = ResNet.CreateBlock(new BlockArgs(inPlanes, planes, stride, cfg, new Random(11)));
        block.ToDType(DType.F64);
        var x = GradCheck.Leaf(new Random(5), 2, inPlanes, 5, 5);
        var inputs = new[] { x }.Concat(block.Parameters()).ToArray();
        Assert.That(inputs.Skip(1).All(p => p.DType == DType.F64 && p.RequiresGrad), Is.True);
        GradCheck.Run(_ => block.Forward(x), inputs, maxPerInput: 24);
    }

    [TestCaseSource(nameof(Cases))]
    public void BlockOutputHasTheDeclaredShape(ResNetConfig cfg, int inPlanes, int planes, int stride)
    {
        using var scope = TensorScope.Begin();
        using var block = ResNet.CreateBlock(new BlockArgs(inPlanes, planes, stride, cfg, new Random(11)));
        using var ng = GradMode.NoGrad(); // no graph: a graph dropped without backward keeps its saved tensors
        var y = block.Forward(Tensor.Randn(new Shape(2, inPlanes, 5, 5), new Random(1)));
        var expected = block.Trace(new Shape(2, inPlanes, 5, 5), new ShapeTrace());
        Assert.That(y.Shape, Is.EqualTo(expected));
        Assert.That(y.Shape, Is.EqualTo(new Shape(2, block.OutChannels, (5 + stride - 1) / stride, (5 + stride - 1) / stride)));
    }

    [Test]
    public void DropPathZeroesWholeSamplesAndRescalesSurvivors()
    {
        // Pre-activation blocks end with the sum, so out - x is exactly the (masked) branch.
        var cfg = Cfg(BlockKind.Basic) with { PreActivation = true };
        using var scope = TensorScope.Begin();
        using var plainBlock = ResNet.CreateBlock(new BlockArgs(4, 4, 1, cfg, new Random(3)));
        using var dropBlock = ResNet.CreateBlock(new BlockArgs(4, 4, 1, cfg, new Random(3), DropPathRate: 0.5, DropPathRng: new Random(8)));
        using var ng = GradMode.NoGrad();
        const int n = 40;
        var x = Tensor.Randn(new Shape(n, 4, 3, 3), new Random(2));
        var full = Ops.Add(plainBlock.Forward(x), Ops.Scale(x, -1)).ToDoubles();
        var dropped = Ops.Add(dropBlock.Forward(x), Ops.Scale(x, -1)).ToDoubles();
        int per = 4 * 3 * 3, zeros = 0;
        for (int s = 0; s < n; s++)
        {
            double ratio = 0;
            for (int i = 0; i < per; i++)
                if (Math.Abs(full[s * per + i]) > 1e-3) { ratio = dropped[s * per + i] / full[s * per + i]; break; }
            Assert.That(ratio, Is.EqualTo(0).Within(1e-4).Or.EqualTo(2).Within(1e-4), $"sample {s}");
            for (int i = 0; i < per; i++)
                Assert.That(dropped[s * per + i], Is.EqualTo(ratio * full[s * per + i]).Within(1e-4));
            if (ratio < 1) zeros++;
        }
        Assert.That(zeros, Is.InRange(8, 32), "about half the samples dropped at rate 0.5");
        // Evaluation mode never drops.
        dropBlock.Eval();
        plainBlock.Eval();
        Close.Assert(dropBlock.Forward(x), plainBlock.Forward(x), 1e-6, 1e-6, "eval-mode drop-path");
    }
}
