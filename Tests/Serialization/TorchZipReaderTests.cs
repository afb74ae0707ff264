// The restricted .pth reader against files written by torch.save itself (Debian torch 1.13,
// Tools/reference/make_pth_fixtures.py): a state dict loads strictly into our model and gives
// torch's logits; half and bfloat16 storages; a training checkpoint with the state dict nested;
// views that share a storage (offsets, strides, stride 0); integer dtypes. And hostile or
// damaged files, built opcode by opcode: each is refused with a TorchFormatException that names
// the construct, and none runs code or crashes.
using System.IO.Compression;
using NUnit.Framework;
using ResidualEngine.Models;
using ResidualEngine.Serialization;

namespace ResidualEngine.Tests.Serialization;

public class TorchZipReaderTests
{
    private static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "Fixtures", "pth", name);

    /// <summary>The fixture's net: CIFAR ResNet, one block per stage, widths 4/8/16, option-A shortcuts, 10 classes.</summary>
    internal static ResNet TinyCifar() => new(ModelZoo.Config("resnet20") with { Name = "tiny_cifar", Layers = [1, 1, 1], Widths = [4, 8, 16] });

    private static double[] Logits(ResNet m, Tensor x)
    {
        using var scope = TensorScope.Begin();
        using var ng = ResidualEngine.Autograd.GradMode.NoGrad();
        m.Eval();
        return m.Forward(x).ToDoubles();
    }

    [TestCase("tiny_cifar_f32.pth", DType.F32, "logits_f32", 1e-5)]
    [TestCase("tiny_cifar_f16.pth", DType.F16, "logits_f16", 1e-5)]
    [TestCase("tiny_cifar_bf16.pth", DType.BF16, "logits_bf16", 1e-5)]
    public void TorchSavedStateDictLoadsStrictlyAndGivesTorchsLogits(string file, DType dtype, string expected, double tol)
    {
        using var sd = TorchZipReader.Load(Fixture(file));
        using var io = TorchZipReader.Load(Fixture("tiny_cifar_io.pt"));
        using var model = TinyCifar();
        Assert.That(sd.Tensors.Keys, Is.EqualTo(model.StateDict().Keys), "names and order as torch's state_dict");
        Assert.That(sd["conv1.weight"].DType, Is.EqualTo(dtype));
        Assert.That(sd["bn1.num_batches_tracked"].DType, Is.EqualTo(DType.I64));
        Assert.That(sd["bn1.num_batches_tracked"].ToDoubles(), Is.EqualTo(new[] { 5.0 }));
        model.LoadStateDict(sd.Tensors);
        var ours = Logits(model, io["x"]);
        Assert.That(ours, Is.EqualTo(io[expected].ToDoubles()).Within(tol));
    }

    [Test]
    public void ATrainingCheckpointYieldsItsNestedStateDict()
    {
        using var ckpt = TorchZipReader.Load(Fixture("tiny_cifar_ckpt.pth"));
        using var plain = TorchZipReader.Load(Fixture("tiny_cifar_f32.pth"));
        Assert.That(ckpt.Tensors.Keys, Is.EqualTo(plain.Tensors.Keys));
        foreach (var (k, t) in plain.Tensors) Assert.That(ckpt[k].ToDoubles(), Is.EqualTo(t.ToDoubles()), k);
        using var viaWeights = Weights.ReadFile(Fixture("tiny_cifar_ckpt.pth"));
        Assert.That(viaWeights.Tensors, Has.Count.EqualTo(plain.Tensors.Count), "Weights.ReadFile tells the format by its first bytes");
    }

    [Test]
    public void ViewsOfSharedStoragesAreCopiedOutExactly()
    {
        using var f = TorchZipReader.Load(Fixture("views.pt"));
        foreach (var v in new[] { "base", "rows", "cols", "t", "scalar", "expand" })
        {
            Assert.That(f[v].Shape, Is.EqualTo(f[v + "_copy"].Shape), v);
            Assert.That(f[v].ToDoubles(), Is.EqualTo(f[v + "_copy"].ToDoubles()), v);
        }
        Assert.That(f["cols"].Shape, Is.EqualTo(new Shape(4, 3)));
        Assert.That(f["scalar"].ToDoubles(), Is.EqualTo(new[] { (2 * 6 + 3) * 0.5 - 3 }));
        Assert.That(f["long"].ToDoubles(), Is.EqualTo(new[] { -2.0, -1, 0, 1, Math.Pow(2, 40) }));
        Assert.That(f["int"].DType, Is.EqualTo(DType.I32));
        Assert.That(f["byte"].ToDoubles(), Is.EqualTo(new[] { 0.0, 7, 255 }));
        Assert.That(f["double"].ToDoubles(), Is.EqualTo(new[] { 0.1, -1e300 }));
    }

    [Test]
    public void AHandBuiltStateDictReads()
    {
        using var f = TorchZipReader.Read(new MemoryStream(TorchPickleWriter.Zip(TorchPickleWriter.ValidPickle())));
        Assert.That(f["w"].Shape, Is.EqualTo(new Shape(2, 2)));
        Assert.That(f["w"].ToDoubles(), Is.EqualTo(new[] { 1.0, 2, 3, 4 }));
    }

    private static TorchFormatException Refused(byte[] file)
    {
        long live = TensorStats.LiveTensors;
        var e = Assert.Throws<TorchFormatException>(() => TorchZipReader.Read(new MemoryStream(file)).Dispose())!;
        Assert.That(TensorStats.LiveTensors, Is.EqualTo(live), "nothing is left allocated by a refused file");
        return e;
    }

    private static byte[] WithPickle(Func<TorchPickleWriter, TorchPickleWriter> body) => TorchPickleWriter.Zip(body(new TorchPickleWriter()).Bytes);

    [TestCase("os", "system")]
    [TestCase("builtins", "eval")]
    [TestCase("subprocess", "Popen")]
    [TestCase("torch", "load")]
    [TestCase("torch._utils", "_rebuild_device_tensor_from_numpy")]
    public void GlobalsOutsideTheAllowListAreRefusedByName(string module, string name)
    {
        var file = WithPickle(w => w.Global(module, name).Mark().Str("echo pwned").Tuple().Op('R').Stop());
        Assert.That(Refused(file).Message, Does.Contain($"'{module}.{name}' is not allowed"));
    }

    [Test]
    public void StackGlobalIsCheckedToo()
    {
        var file = WithPickle(w => w.Str("posix").Str("system").Op(0x93).Stop());
        Assert.That(Refused(file).Message, Does.Contain("'posix.system' is not allowed"));
    }

    [TestCase((byte)'i', "INST")]
    [TestCase((byte)'o', "OBJ")]
    [TestCase((byte)0x81, "NEWOBJ")]
    [TestCase((byte)0x97, "NEXT_BUFFER")]
    [TestCase((byte)0xff, "0xff")]
    public void OpcodesWeDoNotNeedAreRefusedByName(byte op, string name) =>
        Assert.That(Refused(WithPickle(w => w.OrderedDict().Op(op).Stop())).Message, Does.Contain(name).And.Contain("not supported"));

    [Test]
    public void AllowedGlobalsCannotBeCalledWithOtherMeanings()
    {
        // A storage type is a name inside persistent ids, never a callable.
        var call = WithPickle(w => w.Global("torch", "FloatStorage").Mark().Int(10).Tuple().Op('R').Stop());
        Assert.That(Refused(call).Message, Does.Contain("not an allowed callable"));
        var bool_ = WithPickle(w => w.Global("torch", "BoolStorage").Stop());
        Assert.That(Refused(bool_).Message, Does.Contain("'torch.BoolStorage' is not supported"));
        var build = WithPickle(w => w.Str("x").Str("y").Op('b').Stop());
        Assert.That(Refused(build).Message, Does.Contain("BUILD"));
    }

    [Test]
    public void StorageProblemsAreNamed()
    {
        byte[] Dict(string key, int numel, int offset, int[] size, int[] stride) =>
            new TorchPickleWriter().OrderedDict().Mark().Str("w").Tensor(key, numel, offset, size, stride).Op('u').Stop().Bytes;
        Assert.That(Refused(TorchPickleWriter.Zip(Dict("0", 8, 0, [2, 4], [4, 1]))).Message, Does.Contain("claims 8 elements (32 bytes) but its entry holds 16 bytes"));
        Assert.That(Refused(TorchPickleWriter.Zip(Dict("0", 4, 1, [2, 2], [2, 1]))).Message, Does.Contain("reaches element 4 of a storage of 4"));
        Assert.That(Refused(TorchPickleWriter.Zip(Dict("7", 4, 0, [2, 2], [2, 1]))).Message, Does.Contain("storage '7', which is not in the archive"));
        Assert.That(Refused(TorchPickleWriter.Zip(Dict("../../etc/passwd", 4, 0, [2, 2], [2, 1]))).Message, Does.Contain("is not a plain name"));
        Assert.That(Refused(TorchPickleWriter.Zip(Dict("0", 4, 0, [2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1], [2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]))).Message,
            Does.Contain("17 dimensions"));
    }

    [Test]
    public void DamagedAndForeignFilesAreNamed()
    {
        Assert.That(Refused([0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc]).Message, Does.Contain("legacy (pre-1.6) serialization"));
        Assert.That(Refused("hello world"u8.ToArray()).Message, Does.Contain("not a PyTorch zip file"));
        var truncated = TorchPickleWriter.ValidPickle()[..^5];
        Assert.That(Refused(TorchPickleWriter.Zip(truncated)).Message, Does.Contain("truncated").Or.Contain("ends without a STOP"));
        Assert.That(Refused(WithPickle(w => w.Op('X').Op(0xff, 0xff, 0xff, 0x7f).Stop())).Message, Does.Contain("claims 2147483647 bytes"));
        Assert.That(Refused(WithPickle(w => w.Op((byte)'h', 3).Stop())).Message, Does.Contain("memo entry 3 is read before it is written"));
        Assert.That(Refused(WithPickle(w => w.Op(']').Stop())).Message, Does.Contain("holds a list of 0, not a state dict"));
        Assert.That(Refused(WithPickle(w => w.Op('}').Str("epoch").Int(3).Op('s').Stop())).Message, Does.Contain("not a state dict of tensors"));
        Assert.That(Refused(WithPickle(w => w.Op('0').Stop())).Message, Does.Contain("empty stack"));

        using var ms = new MemoryStream();
        using (var zip = new ZipArchive(ms, ZipArchiveMode.Create, leaveOpen: true)) zip.CreateEntry("archive/version");
        Assert.That(Refused(ms.ToArray()).Message, Does.Contain("expected one <archive>/data.pkl"));
        var cut = TorchPickleWriter.Zip(TorchPickleWriter.ValidPickle());
        Assert.That(Refused(cut[..(cut.Length / 2)]).Message, Does.Contain("damaged").Or.Contain("cannot be read"));
    }

    [Test]
    public void AHugeCompressedPickleIsRefusedBeforeItIsRead()
    {
        var zeros = new byte[TorchZipReader.MaxPickleBytes + 1];
        var file = TorchPickleWriter.Zip(zeros, level: CompressionLevel.Fastest);
        Assert.That(file.Length, Is.LessThan(1 << 20), "the zip itself is small");
        Assert.That(Refused(file).Message, Does.Contain($"(at most {TorchZipReader.MaxPickleBytes})"));
    }
}
