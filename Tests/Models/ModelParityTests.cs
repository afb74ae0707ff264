// Whole-model parity with PyTorch (Tests/Fixtures/models, written by
// Tools/reference/make_fixtures.py): the same architecture with the same deterministic weights
// (DeterministicInit) must give the same logits, loss, gradients and SGD trajectory.
//   resnet18_64     torchvision resnet18(num_classes=10) vs ModelZoo "resnet18", x (2, 3, 64, 64);
//   cifar_resnet20  He et al.'s CIFAR ResNet-20 (option A) vs ModelZoo "resnet20";
//   preact_block    one pre-activation basic block with projection: full output and gradients.
// Gradients of the big models are compared through [sum, sum of squares], the first 64 and 64
// strided elements. Tolerances: atol 1e-4, rtol 1e-3 (F32, different summation orders); the
// gradient sums, which add up to millions of terms, get an atol scaled by the gradient's norm.
using System.Text.Json;
using NUnit.Framework;
using ResidualEngine.Models;
using ResidualEngine.Nn;
using ResidualEngine.Nn.Optim;
using ResidualEngine.Serialization;

namespace ResidualEngine.Tests.Models;

public class ModelParityTests
{
    private const double Atol = 1e-4, Rtol = 1e-3;

    private static SafeTensorsFile Fixture(string name)
    {
        var path = Path.Combine(TestContext.CurrentContext.TestDirectory, "Fixtures", "models", name + ".safetensors");
        if (!File.Exists(path)) Assert.Fail($"fixture {name} is missing: run Tools/reference/make_fixtures.py and commit Tests/Fixtures");
        return SafeTensors.Load(path);
    }

    /// <summary>The zoo model a fixture was made from, built shape-only: DeterministicInit then fills every entry.</summary>
    private static ResNet Build(string fixture)
    {
        using var skip = Init.SkipInitialization();
        return fixture switch
        {
            "resnet18_64" => ModelZoo.Create("resnet18", numClasses: 10),
            "cifar_resnet20" => ModelZoo.Create("resnet20", numClasses: 10),
            _ => throw new ArgumentException(fixture),
        };
    }

    /// <summary>Our state dict must list the fixture's names, in its order, with its shapes.</summary>
    private static void SameLayout(Module m, SafeTensorsFile f)
    {
        var order = f.Metadata["state_dict_order"].Split(',');
        Assert.That(m.StateDict().Keys, Is.EqualTo(order), "state-dict names and order");
        using var shapes = JsonDocument.Parse(f.Metadata["state_dict_shapes"]);
        foreach (var (k, t) in m.StateDict())
        {
            var dims = shapes.RootElement.GetProperty(k).EnumerateArray().Select(e => e.GetInt32()).ToArray();
            Assert.That(t.Shape, Is.EqualTo(new Shape(dims)), k);
        }
    }

    [TestCase("resnet18_64")]
    [TestCase("cifar_resnet20")]
    public void LogitsLossAndGradientsMatchPyTorch(string fixture)
    {
        using var scope = TensorScope.Begin();
        using var f = Fixture(fixture);
        using var m = Build(fixture);
        SameLayout(m, f);
        DeterministicInit.Apply(m.StateDict());
        foreach (var (k, t) in m.StateDict())
        {
            var head = f["init_head." + k].ToDoubles();
            Assert.That(t.ToDoubles().Take(head.Length), Is.EqualTo(head), $"initial {k}");
        }
        m.Train();
        var logits = m.Forward(f["x"]);
        Close.Assert(logits, f["logits"], Atol, Rtol, "logits");
        var loss = Ops.SoftmaxCrossEntropy(logits, f["labels"]);
        Close.Assert(loss, f["loss"], Atol, Rtol, "loss");
        loss.Backward();
        foreach (var (name, p) in m.NamedParameters())
        {
            Assert.That(p.Grad, Is.Not.Null, name);
            var g = p.Grad!.ToDoubles();
            var stats = f["grad_stats." + name].ToDoubles();
            double sum = g.Sum(), sumsq = g.Sum(v => v * v);
            double norm = Math.Sqrt(stats[1]);
            Close.Assert([sum], [stats[0]], Atol + Rtol * norm, Rtol, $"sum of grad {name}"); // cancellation: error relative to the norm
            Close.Assert([sumsq], [stats[1]], Atol * Atol, 2 * Rtol, $"sum of squares of grad {name}");
            var head = f["grad_head." + name].ToDoubles();
            Close.Assert(g.Take(head.Length).ToArray(), head, Atol, Rtol, $"grad head {name}");
            var strided = f["grad_strided." + name].ToDoubles();
            var idx = g.Length < 64 ? Enumerable.Range(0, g.Length).ToArray() : Enumerable.Range(0, 64).Select(i => (int)((long)i * g.Length / 64)).ToArray();
            Close.Assert(idx.Select(i => g[i]).ToArray(), strided, Atol, Rtol, $"strided grad {name}");
        }
    }

    [TestCase("resnet18_64")]
    [TestCase("cifar_resnet20")]
    public void ThreeSgdStepsMatchPyTorch(string fixture)
    {
        using var scope = TensorScope.Begin();
        using var f = Fixture(fixture);
        using var m = Build(fixture);
        DeterministicInit.Apply(m.StateDict());
        m.Train();
        using var opt = Sgd.ForModule(m, lr: 0.1, momentum: 0.9, weightDecay: 1e-4);
        var losses = new double[3];
        for (int s = 0; s < 3; s++)
        {
            using var step = TensorScope.Begin();
            opt.ZeroGrad();
            var loss = Ops.SoftmaxCrossEntropy(m.Forward(f["x"]), f["labels"]);
            loss.Backward();
            opt.Step();
            losses[s] = loss.Item();
        }
        Close.Assert(losses, f["sgd_losses"].ToDoubles(), Atol, Rtol, "SGD losses");
        Close.Assert(m.StateDict()["bn1.running_mean"], f["bn1.running_mean_after"], Atol, Rtol, "bn1.running_mean after 3 steps");
        Assert.That(m.StateDict()["bn1.num_batches_tracked"].ToArray<long>(), Is.EqualTo(new long[] { 3 }));
    }

    [Test]
    public void PreActBlockMatchesPyTorchExactly()
    {
        using var scope = TensorScope.Begin();
        using var f = Fixture("preact_block");
        var cfg = new ResNetConfig { Name = "preact_block", Layers = [1], PreActivation = true, Stem = StemKind.Cifar };
        using var block = ResNet.CreateBlock(new BlockArgs(16, 32, 2, cfg, new Random(0)));
        Assert.That(block, Is.InstanceOf<PreActBasicBlock>());
        SameLayout(block, f);
        DeterministicInit.Apply(block.StateDict());
        foreach (var (k, t) in block.StateDict())
            Assert.That(t.ToDoubles(), Is.EqualTo(f["init." + k].ToDoubles()), $"initial {k}");
        block.Train();
        var x = f["x"].To(DType.F32);
        x.RequiresGrad = true;
        var y = block.Forward(x);
        Close.Assert(y, f["out"], Atol, Rtol, "out");
        var loss = Ops.Sum(Ops.Mul(y, f["r"]));
        Close.Assert(loss, f["loss"], Atol, Rtol, "loss");
        loss.Backward();
        Close.Assert(x.Grad!, f["dx"], Atol, Rtol, "dx");
        foreach (var (name, p) in block.NamedParameters())
            Close.Assert(p.Grad!, f["grad." + name], Atol, Rtol, $"grad {name}");
        foreach (var bn in new[] { "bn1", "bn2" })
        {
            Close.Assert(block.StateDict()[bn + ".running_mean"], f[bn + ".running_mean_after"], Atol, Rtol, bn + " running mean");
            Close.Assert(block.StateDict()[bn + ".running_var"], f[bn + ".running_var_after"], Atol, Rtol, bn + " running var");
        }
    }
}
