// Channels-last end to end at the op and model level, on the CPU: whole networks converted with
// model.To(MemoryFormat.ChannelsLast) compute exactly the NCHW network's logits, parameter gradients
// and running statistics in F64 (the CPU runs its NCHW kernels on converted copies, and every
// reduction meets its elements in the same order); outputs, gradients and indices keep their
// input's format; mixed formats are an error naming both tensors; the differentiable Contiguous op;
// state dicts and optimizers across formats; the loader's channels-last batches.
using NUnit.Framework;
using ResidualEngine.Data;
using ResidualEngine.Models;
using ResidualEngine.Nn.Optim;

namespace ResidualEngine.Tests.OpTests;

public class ChannelsLastTests
{
    private static ResNet Model(string name, bool se) =>
        new(ModelZoo.Config(name) with { NumClasses = 5, SqueezeExcitation = se }, 3);

    [TestCase("resnet20", false, 12)]  // CIFAR: option-A shortcuts
    [TestCase("resnet18", false, 32)]  // ImageNet stem: 7x7 stride-2 conv, max pool, projection shortcuts
    [TestCase("resnet18", true, 32)]   // squeeze-and-excitation: 1x1 convs with bias on (N, C, 1, 1), per-(n, c) gates
    public void NetworkInChannelsLastEqualsNchwInF64(string name, bool se, int size)
    {
        using var scope = TensorScope.Begin();
        using var nchw = Model(name, se);
        using var nhwc = Model(name, se);
        nchw.ToDType(DType.F64);
        nhwc.ToDType(DType.F64);
        nhwc.To(MemoryFormat.ChannelsLast);
        Assert.That(nhwc.MemoryFormat, Is.EqualTo(MemoryFormat.ChannelsLast));
        Assert.That(nhwc.Parameters().Where(p => p.Rank == 4).Select(p => p.Format), Is.All.EqualTo(MemoryFormat.ChannelsLast));

        var x = Tensor.Randn(new Shape(2, 3, size, size), new Random(1), DType.F64);
        var labels = Tensor.FromArray(new long[] { 1, 4 }, new Shape(2));
        var la = nchw.Forward(x);
        Ops.SoftmaxCrossEntropy(la, labels).Backward();
        var xl = x.To(MemoryFormat.ChannelsLast);
        var lb = nhwc.Forward(xl);
        Ops.SoftmaxCrossEntropy(lb, labels).Backward();

        Assert.That(lb.ToDoubles(), Is.EqualTo(la.ToDoubles()), "logits");
        var pa = nchw.NamedParameters().ToList();
        var pb = nhwc.NamedParameters().ToList();
        for (int i = 0; i < pa.Count; i++)
        {
            Assert.That(pb[i].Tensor.Grad!.Format, Is.EqualTo(pb[i].Tensor.Format), $"{pb[i].Name}: the gradient comes in its parameter's format");
            Assert.That(pb[i].Tensor.Grad!.ToDoubles(), Is.EqualTo(pa[i].Tensor.Grad!.ToDoubles()), $"{pa[i].Name} gradient");
        }
        var ba = nchw.NamedBuffers().ToList();
        var bb = nhwc.NamedBuffers().ToList();
        for (int i = 0; i < ba.Count; i++) Assert.That(bb[i].Tensor.ToDoubles(), Is.EqualTo(ba[i].Tensor.ToDoubles()), ba[i].Name);
    }

    [Test]
    public void OpsKeepTheirInputsFormat()
    {
        using var scope = TensorScope.Begin();
        var rng = new Random(2);
        var x = Tensor.Randn(new Shape(2, 4, 9, 9), rng).To(MemoryFormat.ChannelsLast);
        x.RequiresGrad = true;
        var w = Tensor.Randn(new Shape(6, 4, 3, 3), rng).To(MemoryFormat.ChannelsLast);
        var ones = Tensor.Ones(new Shape(6));
        var zeros = Tensor.Zeros(new Shape(6));
        var y = Ops.Conv2d(x, w, null, stride: 2, padding: 1);
        var outputs = new[]
        {
            y, Ops.BatchNorm2d(y, ones, zeros, Tensor.Zeros(new Shape(6)), Tensor.Ones(new Shape(6)), training: true),
            Ops.MaxPool2d(x, 3, 2, 1), Ops.AvgPool2d(x, 2), Ops.GlobalAvgPool2d(x), Ops.ShortcutA(x, 8, 2), Ops.Relu(x),
        };
        foreach (var o in outputs) Assert.That(o.Format, Is.EqualTo(MemoryFormat.ChannelsLast), o.Describe());
        var total = outputs.Select(Ops.Sum).Aggregate(Ops.Add);
        total.Backward();
        Assert.That(x.Grad!.Format, Is.EqualTo(MemoryFormat.ChannelsLast));
        // Flatten works where the layouts coincide (the pooled (N, C, 1, 1) features), and refuses elsewhere.
        Assert.That(Ops.Flatten(Ops.GlobalAvgPool2d(x)).Shape, Is.EqualTo(new Shape(2, 4)));
        var e = Assert.Throws<NotSupportedException>(() => Ops.Flatten(x));
        Assert.That(e!.Message, Does.Contain("channels-last"));
    }

    [Test]
    public void MixedFormatsNameBothTensors()
    {
        using var scope = TensorScope.Begin();
        var a = Tensor.Zeros(new Shape(1, 2, 3, 3));
        a.Name = "left";
        var b = Tensor.Zeros(new Shape(1, 2, 3, 3)).To(MemoryFormat.ChannelsLast);
        b.Name = "right";
        var e = Assert.Throws<ArgumentException>(() => Ops.Add(a, b));
        Assert.That(e!.Message, Does.Contain("left").And.Contain("right").And.Contain("NCHW").And.Contain("channels-last"));
    }

    [Test]
    public void ContiguousIsDifferentiableAndTransposesTheGradientBack()
    {
        using var scope = TensorScope.Begin();
        var x = Tensor.Randn(new Shape(2, 3, 4, 5), new Random(3), DType.F64);
        x.RequiresGrad = true;
        var y = Ops.Contiguous(x, MemoryFormat.ChannelsLast);
        Assert.That(y.Format, Is.EqualTo(MemoryFormat.ChannelsLast));
        Assert.That(y.ToDoubles(), Is.EqualTo(x.ToDoubles()), "same logical values");
        var r = Tensor.Randn(x.Shape, new Random(4), DType.F64);
        Ops.Sum(Ops.Mul(y, r.To(MemoryFormat.ChannelsLast))).Backward();
        Assert.That(x.Grad!.Format, Is.EqualTo(MemoryFormat.Contiguous));
        Assert.That(x.Grad.ToDoubles(), Is.EqualTo(r.ToDoubles()), "d sum(y * r) / dx = r");
    }

    [Test]
    public void StateDictsAndOptimizersCrossFormats()
    {
        using var scope = TensorScope.Begin();
        using var a = Model("resnet20", false);
        using var b = Model("resnet20", false);
        a.To(MemoryFormat.ChannelsLast);
        foreach (var p in b.Parameters()) p.Backend.Fill(p, 0);
        // Loading a channels-last model's state into an NCHW one (and back) keeps the logical values.
        b.LoadStateDict(a.StateDict());
        Assert.That(b.StateDict().Select(kv => kv.Value.ToDoubles()), Is.EqualTo(a.StateDict().Select(kv => kv.Value.ToDoubles())));
        // An optimizer made before the conversion keeps working: its momentum buffers follow their parameters.
        using var sgd = Sgd.ForModule(b, 0.1);
        var x = Tensor.Randn(new Shape(2, 3, 8, 8), new Random(5));
        Ops.Sum(b.Forward(x)).Backward();
        sgd.Step();
        b.To(MemoryFormat.ChannelsLast);
        sgd.ZeroGrad();
        Ops.Sum(b.Forward(x.To(MemoryFormat.ChannelsLast))).Backward();
        Assert.DoesNotThrow(sgd.Step);
        Assert.That(sgd.StateTensors().Where(s => s.Buffer.Rank == 4).Select(s => s.Buffer.Format), Is.All.EqualTo(MemoryFormat.ChannelsLast));
    }

    private sealed class Ramp : IDataset
    {
        public int Count => 6;
        public int NumClasses => 2;
        public IReadOnlyList<string> Classes => ["a", "b"];
        public Sample Get(int index, Random rng) =>
            new(Enumerable.Range(0, 3 * 4 * 5).Select(i => (float)(index * 100 + i)).ToArray(), index % 2, 4, 5);
    }

    [Test]
    public void LoaderMakesChannelsLastBatches()
    {
        using var nchw = new DataLoader(new Ramp(), new DataLoaderOptions(4, Shuffle: false, Seed: 0, Workers: 1));
        using var nhwc = new DataLoader(new Ramp(), new DataLoaderOptions(4, Shuffle: false, Seed: 0, Workers: 1) { Format = MemoryFormat.ChannelsLast });
        foreach (var (p, q) in nchw.Epoch(0).Zip(nhwc.Epoch(0)))
        {
            using (p)
            using (q)
            {
                Assert.That(q.Images.Format, Is.EqualTo(MemoryFormat.ChannelsLast));
                Assert.That(q.Images.ToDoubles(), Is.EqualTo(p.Images.ToDoubles()));
            }
        }
    }
}
