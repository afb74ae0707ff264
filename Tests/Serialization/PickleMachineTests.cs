// The one pickle machine serves two policies (torch state dicts, numpy CIFAR batches): each
// policy's optional opcodes stay its own, the shared refusals read the same under both, and values
// come out in the same shapes (tuples as object?[], ordered dicts).
using NUnit.Framework;
using ResidualEngine.Data.Import;
using ResidualEngine.Serialization;

namespace ResidualEngine.Tests.Serialization;

public class PickleMachineTests
{
    // {'b': 2, 'a': (1, 'x')} built with protocol-0 DICT and text INT, as an old data pickle spells it.
    private static readonly byte[] s_textDict = [0x80, 2, (byte)'(', 0x8c, 1, (byte)'b', (byte)'I', (byte)'2', (byte)'\n',
        0x8c, 1, (byte)'a', (byte)'K', 1, 0x8c, 1, (byte)'x', 0x86, (byte)'d', (byte)'.'];

    [Test]
    public void TextOpcodesAreTheNumpyPolicysAlone()
    {
        var d = SafePickle.Load(s_textDict, "cifar") as IDictionary<object, object?>;
        Assert.That(d, Is.Not.Null);
        Assert.That(d!.Keys, Is.EqualTo(new object[] { "b", "a" }), "insertion order");
        Assert.That(d["b"], Is.EqualTo(2L));
        Assert.That(d["a"], Is.EqualTo(new object?[] { 1L, "x" }));
        var e = Assert.Throws<TorchFormatException>(() => TorchPicklePolicy.Load(s_textDict, "pth"))!;
        Assert.That(e.Message, Does.Contain("'I' (0x49, a text-mode protocol-0 opcode) is not supported").And.Contain("a PyTorch state dict"));
    }

    [Test]
    public void PersistentIdsAreTheTorchPolicysAlone()
    {
        byte[] pid = [0x80, 2, (byte)')', (byte)'Q', (byte)'.'];
        var e = Assert.Throws<InvalidDataException>(() => SafePickle.Load(pid, "cifar"))!;
        Assert.That(e.Message, Does.Contain("BINPERSID").And.Contain("a CIFAR data file"));
        Assert.That(Assert.Throws<TorchFormatException>(() => TorchPicklePolicy.Load(pid, "pth"))!.Message, Does.Contain("not a storage reference"));
    }

    [TestCase(new byte[] { 0x80, 2, (byte)'0', (byte)'.' }, "empty stack")]
    [TestCase(new byte[] { 0x80, 6, (byte)'N', (byte)'.' }, "protocol 6 is newer than 5")]
    [TestCase(new byte[] { 0x80, 2, (byte)'(', (byte)'N', (byte)'.' }, "STOP with 2 values")]
    [TestCase(new byte[] { 0x80, 2, 0x8a, 9, 1, 2, 3, 4, 5, 6, 7, 8, 9, (byte)'.' }, "too large for 64 bits")]
    [TestCase(new byte[] { 0x80, 2, (byte)'h', 7, (byte)'.' }, "memo entry 7 is read before it is written")]
    public void SharedRefusalsReadTheSameUnderBothPolicies(byte[] pickle, string expected)
    {
        Assert.That(Assert.Throws<TorchFormatException>(() => TorchPicklePolicy.Load(pickle, "pth"))!.Message, Does.Contain(expected));
        Assert.That(Assert.Throws<InvalidDataException>(() => SafePickle.Load(pickle, "cifar"))!.Message, Does.Contain(expected).And.Contain("not a CIFAR data pickle"));
    }
}
