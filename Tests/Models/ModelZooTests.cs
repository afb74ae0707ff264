// The zoo as numbers: parameter counts against torchvision's published figures and the CIFAR
// paper's architecture formula, forward GMACs against torchvision's, and name handling.
// Big models are built shape-only (Init.SkipInitialization) so these tests stay fast.
using NUnit.Framework;
using ResidualEngine.Models;
using ResidualEngine.Nn;

namespace ResidualEngine.Tests.Models;

public class ModelZooTests
{
    // torchvision's documented parameter counts (ImageNet heads).
    [TestCase("resnet18", 11_689_512L)]
    [TestCase("resnet34", 21_797_672L)]
    [TestCase("resnet50", 25_557_032L)]
    [TestCase("resnet101", 44_549_160L)]
    [TestCase("resnet152", 60_192_808L)]
    [TestCase("resnext50_32x4d", 25_028_904L)]
    [TestCase("wide_resnet50_2", 68_883_240L)]
    public void ParameterCountsMatchTorchvision(string name, long expected)
    {
        Assert.That(ModelZoo.Describe(name).Parameters, Is.EqualTo(expected));
    }

    // torchvision's documented forward GMACs at 224x224 (conv + linear multiply-accumulates).
    [TestCase("resnet18", 1.814)]
    [TestCase("resnet34", 3.664)]
    [TestCase("resnet50", 4.089)]
    [TestCase("resnet101", 7.801)]
    [TestCase("resnet152", 11.514)]
    public void GMacsMatchTorchvisionToThreeDecimals(string name, double expected)
    {
        Assert.That(Math.Round(ModelZoo.Describe(name).GMacs, 3), Is.EqualTo(expected));
    }

    /// <summary>He et al. 2015 CIFAR net with option-A shortcuts: stem 3x3 conv 3->16 + BN, three stages of n
    /// basic blocks (16, 32, 64 planes; two 3x3 convs + two BNs each, no shortcut parameters), fc 64 -> 10.</summary>
    private static long CifarFormula(int n, int classes = 10)
    {
        long p = 3 * 16 * 9 + 2 * 16;
        int cin = 16;
        foreach (int w in new[] { 16, 32, 64 })
        {
            p += 9L * cin * w + 9L * w * w + 4L * w;            // first block (may change width)
            p += (n - 1) * (18L * w * w + 4L * w);             // the others
            cin = w;
        }
        return p + 64L * classes + classes;
    }

    [TestCase("resnet20", 3, 0.27)]
    [TestCase("resnet56", 9, 0.85)]
    [TestCase("resnet110", 18, 1.7)]
    public void CifarParameterCountsMatchThePaper(string name, int n, double paperMillions)
    {
        long p = ModelZoo.Describe(name).Parameters;
        Assert.That(p, Is.EqualTo(CifarFormula(n)));
        // The paper rounds to two significant digits.
        Assert.That(p / 1e6, Is.EqualTo(paperMillions).Within(paperMillions * 0.03));
    }

    [Test]
    public void PlainNetsHaveTheSameParametersAsOptionAResNets()
    {
        // Option A adds no parameters, so plain-n and ResNet-n of He et al. differ by the shortcut only.
        Assert.That(ModelZoo.Describe("plain20").Parameters, Is.EqualTo(CifarFormula(3)));
        Assert.That(ModelZoo.Describe("plain110").Parameters, Is.EqualTo(CifarFormula(18)));
    }

    [Test]
    public void PlainImagenetNetsLackExactlyTheProjections()
    {
        // resnet18 has three projections (stages 2-4): 1x1 conv + BN each.
        long proj = 64L * 128 + 2 * 128 + 128L * 256 + 2 * 256 + 256L * 512 + 2 * 512;
        Assert.That(ModelZoo.Describe("plain18").Parameters, Is.EqualTo(11_689_512L - proj));
    }

    [Test]
    public void PreActResNet164MatchesThePaper()
    {
        // He et al. 2016: 1.7M parameters; bottleneck outputs 64/128/256 (planes 16/32/64 x 4).
        var info = ModelZoo.Describe("preact_resnet164");
        Assert.That(info.Parameters / 1e6, Is.EqualTo(1.7).Within(0.05));
        using var skip = Init.SkipInitialization();
        using var m = ModelZoo.Create("preact_resnet164");
        Assert.That(m.Blocks.Select(b => b.OutChannels).Distinct(), Is.EqualTo(new[] { 64, 128, 256 }));
        Assert.That(m.Blocks.Count() * 3 + 2, Is.EqualTo(164)); // three convs per block, plus stem conv and fc
        Assert.That(m.Fc.InFeatures, Is.EqualTo(256));
    }

    [Test]
    public void CifarDepthsFollowSixNPlusTwo()
    {
        foreach (var (name, depth) in new[] { ("resnet20", 20), ("resnet32", 32), ("resnet44", 44), ("resnet56", 56), ("resnet110", 110), ("resnet1202", 1202) })
        {
            var cfg = ModelZoo.Config(name);
            Assert.That(6 * cfg.Layers[0] + 2, Is.EqualTo(depth), name);
            Assert.That(cfg.Shortcut, Is.EqualTo(ShortcutOption.A), name);
            Assert.That(cfg.NumClasses, Is.EqualTo(10), name);
            Assert.That(cfg.NativeImageSize, Is.EqualTo(32), name);
        }
    }

    [Test]
    public void SqueezeExcitationAddsTheGateParameters()
    {
        // Per bottleneck with output C: fc1 (C/16 x C + C/16) and fc2 (C x C/16 + C).
        long extra = 0;
        foreach (var (c, n) in new[] { (256, 3), (512, 4), (1024, 6), (2048, 3) })
        {
            int r = c / 16;
            extra += n * ((long)r * c + r + (long)c * r + c);
        }
        Assert.That(ModelZoo.Describe("se_resnet50").Parameters, Is.EqualTo(25_557_032L + extra));
    }

    [Test]
    public void EveryZooModelBuildsAndTraces()
    {
        foreach (var name in ModelZoo.Names)
        {
            var info = ModelZoo.Describe(name);
            Assert.That(info.Parameters, Is.GreaterThan(0), name);
            Assert.That(info.GMacs, Is.GreaterThan(0), name);
            Assert.That(info.InputSize, Is.EqualTo(info.Config.Stem == StemKind.Imagenet ? 224 : 32), name);
        }
        Assert.That(ModelZoo.Names, Has.Count.EqualTo(ModelZoo.Names.Distinct().Count()));
    }

    [TestCase("ResNet-56", "resnet56")]
    [TestCase("plain-56", "plain56")]
    [TestCase("preact-resnet18", "preact_resnet18")]
    [TestCase("se-resnet50", "se_resnet50")]
    [TestCase("RESNEXT50_32X4D", "resnext50_32x4d")]
    [TestCase("wide-resnet50-2", "wide_resnet50_2")]
    public void SpellingsAreNormalised(string spelling, string canonical)
    {
        Assert.That(ModelZoo.Canonical(spelling), Is.EqualTo(canonical));
    }

    [Test]
    public void UnknownNameListsCloseMatches()
    {
        var e = Assert.Throws<ArgumentException>(() => ModelZoo.Create("resnet19"));
        Assert.That(e!.Message, Does.Contain("resnet19").And.Contain("resnet18"));
        e = Assert.Throws<ArgumentException>(() => ModelZoo.Create("preact_resnet165"));
        Assert.That(e!.Message, Does.Contain("preact_resnet164"));
        e = Assert.Throws<ArgumentException>(() => ModelZoo.Create("vgg16"));
        Assert.That(e!.Message, Does.Contain("unknown model 'vgg16'"));
    }

    [Test]
    public void NumClassesDefaultsPerFamilyAndCanBeChanged()
    {
        using var skip = Init.SkipInitialization();
        using (var m = ModelZoo.Create("resnet20")) Assert.That(m.Fc.OutFeatures, Is.EqualTo(10));
        using (var m = ModelZoo.Create("resnet18")) Assert.That(m.Fc.OutFeatures, Is.EqualTo(1000));
        using (var m = ModelZoo.Create("resnet18", numClasses: 7))
        {
            Assert.That(m.Fc.OutFeatures, Is.EqualTo(7));
            Assert.That(m.NativeImageSize, Is.EqualTo(224));
            Assert.That(m.Config.NumClasses, Is.EqualTo(7));
        }
        Assert.Throws<ArgumentException>(() => ModelZoo.Create("resnet18", numClasses: 0));
    }

    [Test]
    public void SameSeedGivesSameWeightsAndOtherSeedsDiffer()
    {
        using var scope = TensorScope.Begin();
        using var a = ModelZoo.Create("resnet20", seed: 3);
        using var b = ModelZoo.Create("resnet20", seed: 3);
        using var c = ModelZoo.Create("resnet20", seed: 4);
        var wa = a.StateDict()["layer2.0.conv1.weight"].ToDoubles();
        Assert.That(b.StateDict()["layer2.0.conv1.weight"].ToDoubles(), Is.EqualTo(wa));
        Assert.That(c.StateDict()["layer2.0.conv1.weight"].ToDoubles(), Is.Not.EqualTo(wa));
    }
}
