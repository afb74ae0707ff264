// The configuration as data: unsupported combinations throw and say why; the shortcut options
// A/B/C, plain and pre-activation produce the structures the papers describe (checked on the
// module tree, without running anything).
using NUnit.Framework;
using ResidualEngine.Models;
using ResidualEngine.Nn;

namespace ResidualEngine.Tests.Models;

public class ResNetConfigTests
{
    private static ResNetConfig Tiny(BlockKind block = BlockKind.Basic) =>
        new() { Name = "tiny", Block = block, Layers = [1, 2], Stem = StemKind.Cifar, Widths = [4, 8], NumClasses = 3 };

    [Test]
    public void UnsupportedCombinationsThrowNamingTheProblem()
    {
        void Throws(ResNetConfig c, string fragment)
        {
            var e = Assert.Throws<ArgumentException>(() => new ResNet(c));
            Assert.That(e!.Message, Does.Contain(fragment), c.Describe());
        }
        Throws(Tiny() with { Groups = 2 }, "basic blocks support only groups = 1");
        Throws(Tiny() with { WidthPerGroup = 128 }, "width per group");
        Throws(Tiny(BlockKind.Bottleneck) with { Shortcut = ShortcutOption.A }, "option A");
        Throws(Tiny(BlockKind.Bottleneck) with { Shortcut = ShortcutOption.A, PreActivation = true }, "option A");
        Throws(Tiny() with { Layers = [] }, "at least one stage");
        Throws(Tiny() with { Layers = [1, 0] }, "stage 2 has 0 blocks");
        Throws(Tiny() with { Widths = [4] }, "1 widths for 2 stages");
        Throws(Tiny() with { Plain = true, DropPathRate = 0.1 }, "drop-path");
        Throws(Tiny() with { Plain = true, ZeroInitResidual = true }, "zero-init");
        Throws(Tiny() with { Plain = true, ScaleResidual = true }, "scaling");
        Throws(Tiny() with { DropPathRate = 1.0 }, "drop-path rate");
        Throws(Tiny() with { NumClasses = 0 }, "classes");
        Throws(Tiny() with { SqueezeExcitation = true, SeReduction = 0 }, "SE reduction");
        Throws(Tiny(BlockKind.Bottleneck) with { Groups = 32, WidthPerGroup = 1 }, "no channels per group");
        Throws(Tiny() with { Shortcut = ShortcutOption.A, Widths = [8, 4] }, "cannot reduce channels");
    }

    private static ResidualBlock.ShortcutKind[] Shortcuts(ResNetConfig c)
    {
        using var skip = Init.SkipInitialization();
        using var m = new ResNet(c);
        return m.Blocks.Select(b => b.Shortcut).ToArray();
    }

    [Test]
    public void ShortcutOptionsPlaceProjectionsAsThePaperSays()
    {
        // Blocks: stage 1 (4 -> 4, stride 1), stage 2 (4 -> 8 stride 2, then 8 -> 8).
        var k = ResidualBlock.ShortcutKind.Identity;
        Assert.That(Shortcuts(Tiny() with { Shortcut = ShortcutOption.A }),
            Is.EqualTo(new[] { k, ResidualBlock.ShortcutKind.ZeroPad, k }));
        Assert.That(Shortcuts(Tiny()),
            Is.EqualTo(new[] { k, ResidualBlock.ShortcutKind.Projection, k }));
        Assert.That(Shortcuts(Tiny() with { Shortcut = ShortcutOption.C }),
            Is.All.EqualTo(ResidualBlock.ShortcutKind.Projection));
        Assert.That(Shortcuts(Tiny() with { Plain = true }), Is.All.EqualTo(ResidualBlock.ShortcutKind.None));
    }

    [Test]
    public void ParameterCountsOfTheOptionsDifferByTheProjections()
    {
        long P(ResNetConfig c) => ModelZoo.Measure(c).Parameters;
        long a = P(Tiny() with { Shortcut = ShortcutOption.A });
        Assert.That(P(Tiny() with { Plain = true }), Is.EqualTo(a), "option A and plain have no shortcut parameters");
        Assert.That(P(Tiny()) - a, Is.EqualTo(4 * 8 + 2 * 8), "B: one 1x1 conv + BN where 4 -> 8");
        Assert.That(P(Tiny() with { Shortcut = ShortcutOption.C }) - a, Is.EqualTo((4 * 4 + 2 * 4) + (4 * 8 + 2 * 8) + (8 * 8 + 2 * 8)));
        // Pre-activation projections have no BN (the input is already normalised).
        long pre = P(Tiny() with { PreActivation = true });
        long preA = P(Tiny() with { PreActivation = true, Shortcut = ShortcutOption.A });
        Assert.That(pre - preA, Is.EqualTo(4 * 8));
    }

    [Test]
    public void PreActivationNetsNameTheirExtraNormalisations()
    {
        using var skip = Init.SkipInitialization();
        using var m = new ResNet(Tiny() with { PreActivation = true });
        var keys = m.StateDict().Keys.ToList();
        Assert.That(keys, Does.Not.Contain("bn1.weight"), "the stem has no BN: each block normalises its input");
        Assert.That(keys, Does.Contain("bn_final.weight").And.Contain("bn_final.running_var"));
        Assert.That(keys.Where(k => k.StartsWith("layer2.0.", StringComparison.Ordinal) && k.EndsWith("weight", StringComparison.Ordinal)),
            Is.EqualTo(new[] { "layer2.0.bn1.weight", "layer2.0.conv1.weight", "layer2.0.bn2.weight", "layer2.0.conv2.weight", "layer2.0.downsample.0.weight" }));
        Assert.That(m.StateDict()["layer2.0.bn1.weight"].Shape, Is.EqualTo(new Shape(4)), "bn1 normalises the block input");
        Assert.That(keys.IndexOf("bn_final.weight"), Is.LessThan(keys.IndexOf("fc.weight")));
    }

    [Test]
    public void BottleneckWidthsFollowTorchvision()
    {
        using var skip = Init.SkipInitialization();
        using var x = ModelZoo.Create("resnext50_32x4d");
        var b = (Bottleneck)x.Stages[0][0];
        Assert.That(b.Width, Is.EqualTo(128));
        Assert.That(b.Conv2.Params.Groups, Is.EqualTo(32));
        Assert.That(x.StateDict()["layer1.0.conv2.weight"].Shape, Is.EqualTo(new Shape(128, 4, 3, 3)));
        using var w = ModelZoo.Create("wide_resnet50_2");
        Assert.That(w.StateDict()["layer4.0.conv2.weight"].Shape, Is.EqualTo(new Shape(1024, 1024, 3, 3)));
        Assert.That(w.StateDict()["layer4.0.conv3.weight"].Shape, Is.EqualTo(new Shape(2048, 1024, 1, 1)));
        // v1.5: the stride sits on the 3x3 conv.
        using var r = ModelZoo.Create("resnet50");
        var first = (Bottleneck)r.Stages[1][0];
        Assert.That(first.Conv1.Params.StrideH, Is.EqualTo(1));
        Assert.That(first.Conv2.Params.StrideH, Is.EqualTo(2));
    }

    [Test]
    public void ZeroInitResidualZeroesTheBranchEnd()
    {
        using var scope = TensorScope.Begin();
        using var post = new ResNet(Tiny() with { ZeroInitResidual = true });
        foreach (var b in post.Blocks.Cast<BasicBlock>())
        {
            Assert.That(b.Bn2.Weight.ToDoubles(), Is.All.EqualTo(0));
            Assert.That(b.Bn1.Weight.ToDoubles(), Is.All.EqualTo(1));
        }
        using var pre = new ResNet(Tiny(BlockKind.Bottleneck) with { PreActivation = true, ZeroInitResidual = true });
        foreach (var b in pre.Blocks.Cast<PreActBottleneck>())
        {
            Assert.That(b.Conv3.Weight.ToDoubles(), Is.All.EqualTo(0));
            Assert.That(b.Conv2.Weight.ToDoubles(), Has.Some.Not.EqualTo(0));
        }
    }

    [Test]
    public void DropPathRatesIncreaseLinearly()
    {
        using var skip = Init.SkipInitialization();
        using var m = new ResNet(Tiny() with { DropPathRate = 0.2 });
        Assert.That(m.Blocks.Select(b => b.Args.DropPathRate), Is.EqualTo(new[] { 0.0, 0.1, 0.2 }).Within(1e-12));
        using var s = new ResNet(Tiny() with { ScaleResidual = true });
        Assert.That(s.Blocks.Select(b => b.Args.ResidualScale), Is.All.EqualTo(1 / Math.Sqrt(3)).Within(1e-15));
    }

    [Test]
    public void DescribeMentionsTheChoices()
    {
        var d = (Tiny() with { SqueezeExcitation = true, Shortcut = ShortcutOption.C }).Describe();
        Assert.That(d, Does.Contain("shortcut C").And.Contain("SE 1/16").And.Contain("[1, 2]"));
    }

    [Test]
    public void RejectedBlocksAndNetworksLeaveNoTensorsBehind()
    {
        long live = TensorStats.LiveTensors;
        var bottleneckA = Tiny(BlockKind.Bottleneck) with { Shortcut = ShortcutOption.A, SqueezeExcitation = true };
        Assert.Throws<ArgumentException>(() => ResNet.CreateBlock(new BlockArgs(4, 2, 2, bottleneckA, new Random(0))));
        var groupedBasic = Tiny() with { Groups = 2 };
        Assert.Throws<ArgumentException>(() => ResNet.CreateBlock(new BlockArgs(4, 4, 1, groupedBasic, new Random(0))));
        Assert.Throws<ArgumentException>(() => ResNet.CreateBlock(new BlockArgs(4, 4, 1, Tiny(), new Random(0), DropPathRate: 0.1)));
        Assert.That(TensorStats.LiveTensors, Is.EqualTo(live));
    }
}
