// Builds pickles opcode by opcode and wraps them in torch.save's zip layout, so tests can make
// both a well-formed state dict and every kind of hostile or damaged file without Python.
using System.IO.Compression;
using System.Text;

namespace ResidualEngine.Tests.Serialization;

internal sealed class TorchPickleWriter
{
    private readonly MemoryStream _s = new();

    public TorchPickleWriter() => Op(0x80, 2);

    public TorchPickleWriter Op(params byte[] bytes)
    {
        _s.Write(bytes);
        return this;
    }

    public TorchPickleWriter Op(char c) => Op((byte)c);

    public TorchPickleWriter Str(string s)
    {
        var b = Encoding.UTF8.GetBytes(s);
        Op('X').Op(BitConverter.GetBytes(b.Length));
        return Op(b);
    }

    public TorchPickleWriter Int(int v) => Op('J').Op(BitConverter.GetBytes(v));

    public TorchPickleWriter Global(string module, string name) => Op('c').Op(Encoding.ASCII.GetBytes($"{module}\n{name}\n"));

    public TorchPickleWriter Mark() => Op('(');

    public TorchPickleWriter Tuple() => Op('t');

    public TorchPickleWriter IntTuple(params int[] v)
    {
        Mark();
        foreach (var x in v) Int(x);
        return Tuple();
    }

    /// <summary>A _rebuild_tensor_v2 call over storage <paramref name="key"/> of <paramref name="numel"/> elements.</summary>
    public TorchPickleWriter Tensor(string key, int numel, int offset, int[] size, int[] stride, string storageType = "FloatStorage")
    {
        Global("torch._utils", "_rebuild_tensor_v2");
        Mark();
        Mark().Str("storage").Global("torch", storageType).Str(key).Str("cpu").Int(numel).Tuple().Op('Q');
        Int(offset).IntTuple(size).IntTuple(stride).Op(0x89);
        Global("collections", "OrderedDict").Op(')').Op('R');
        return Tuple().Op('R');
    }

    public TorchPickleWriter OrderedDict() => Global("collections", "OrderedDict").Op(')').Op('R');

    public TorchPickleWriter Stop() => Op('.');

    public byte[] Bytes => _s.ToArray();

    /// <summary>A state dict {"w": 2x2 F32 view of storage "0"} as torch.save writes it.</summary>
    public static byte[] ValidPickle() =>
        new TorchPickleWriter().OrderedDict().Mark().Str("w").Tensor("0", 4, 0, [2, 2], [2, 1]).Op('u').Stop().Bytes;

    public static byte[] FloatBytes(params float[] v) => v.SelectMany(BitConverter.GetBytes).ToArray();

    /// <summary>torch.save's zip: archive/data.pkl, archive/data/&lt;key&gt;, archive/version.</summary>
    public static byte[] Zip(byte[] pickle, IReadOnlyDictionary<string, byte[]>? storages = null, string prefix = "archive/",
        CompressionLevel level = CompressionLevel.NoCompression)
    {
        using var ms = new MemoryStream();
        using (var zip = new ZipArchive(ms, ZipArchiveMode.Create, leaveOpen: true))
        {
            void Add(string name, byte[] data)
            {
                var e = zip.CreateEntry(name, level);
                using var s = e.Open();
                s.Write(data);
            }
            Add(prefix + "data.pkl", pickle);
            foreach (var (k, v) in storages ?? new Dictionary<string, byte[]> { ["0"] = FloatBytes(1, 2, 3, 4) }) Add(prefix + "data/" + k, v);
            Add(prefix + "version", "3\n"u8.ToArray());
        }
        return ms.ToArray();
    }
}
