// Test data for `residual data import`, written by the tests themselves: IDX files (as LeCun's
// MNIST page specifies them) with a few hundred small images whose pixels encode their index, and
// CIFAR-10 batches in the binary layout and as pickles in the form the CIFAR-10 python archive
// uses (Python 2 cPickle, protocol 2: byte-string keys, numpy's _reconstruct, raw data as a
// BINSTRING) or Python 3 protocol 4 (SHORT_BINBYTES, STACK_GLOBAL, MEMOIZE, FRAME).
using System.Buffers.Binary;
using System.Formats.Tar;
using System.IO.Compression;
using System.Text;

namespace ResidualEngine.Tests.Data;

internal static class Idx
{
    /// <summary>Pixel (x, y) of image n: a pattern that differs between images, rows and columns.</summary>
    public static byte Pixel(int n, int x, int y) => (byte)((n * 7 + x * 3 + y * 11 + (x * y)) % 256);

    public static int Label(int n, int classes) => (n + n / 7) % classes;

    public static byte[] Images(int count, int rows, int cols)
    {
        var b = new byte[16 + count * rows * cols];
        Header(b, 3, count, rows, cols);
        for (int n = 0; n < count; n++)
            for (int y = 0; y < rows; y++)
                for (int x = 0; x < cols; x++)
                    b[16 + n * rows * cols + y * cols + x] = Pixel(n, x, y);
        return b;
    }

    public static byte[] Labels(int count, int classes, int offset = 0)
    {
        var b = new byte[8 + count];
        Header(b, 1, count);
        for (int n = 0; n < count; n++) b[8 + n] = (byte)(Label(n, classes) + offset);
        return b;
    }

    private static void Header(byte[] b, int ndim, params int[] dims)
    {
        b[2] = 0x08;
        b[3] = (byte)ndim;
        for (int i = 0; i < dims.Length; i++) BinaryPrimitives.WriteInt32BigEndian(b.AsSpan(4 + 4 * i), dims[i]);
    }

    public static byte[] Gzip(byte[] data)
    {
        using var ms = new MemoryStream();
        using (var gz = new GZipStream(ms, CompressionLevel.Fastest)) gz.Write(data);
        return ms.ToArray();
    }

    /// <summary>Writes the four files of a dataset (train and t10k) into <paramref name="dir"/>.</summary>
    public static void WriteDataset(string dir, int train = 300, int test = 100, int rows = 28, int cols = 28, int classes = 10,
        bool gzip = true, string prefix = "")
    {
        Directory.CreateDirectory(dir);
        string ext = gzip ? ".gz" : "";
        byte[] Maybe(byte[] b) => gzip ? Gzip(b) : b;
        File.WriteAllBytes(Path.Combine(dir, $"{prefix}train-images-idx3-ubyte{ext}"), Maybe(Images(train, rows, cols)));
        File.WriteAllBytes(Path.Combine(dir, $"{prefix}train-labels-idx1-ubyte{ext}"), Maybe(Labels(train, classes)));
        File.WriteAllBytes(Path.Combine(dir, $"{prefix}t10k-images-idx3-ubyte{ext}"), Maybe(Images(test, rows, cols)));
        File.WriteAllBytes(Path.Combine(dir, $"{prefix}t10k-labels-idx1-ubyte{ext}"), Maybe(Labels(test, classes)));
    }
}

internal static class Cifar
{
    public static byte Pixel(int n, int c, int i) => (byte)((n * 13 + c * 85 + i * 5) % 256);

    public static int Label(int n) => (n * 7 + 3) % 10;

    /// <summary>Rows of 3072 bytes (R plane, G plane, B plane) for images first..first+count-1.</summary>
    public static byte[] Rows(int first, int count)
    {
        var b = new byte[count * 3072];
        for (int n = 0; n < count; n++)
            for (int c = 0; c < 3; c++)
                for (int i = 0; i < 1024; i++)
                    b[n * 3072 + c * 1024 + i] = Pixel(first + n, c, i);
        return b;
    }

    public static byte[] Binary(int first, int count)
    {
        var rows = Rows(first, count);
        var b = new byte[count * 3073];
        for (int n = 0; n < count; n++)
        {
            b[n * 3073] = (byte)Label(first + n);
            Buffer.BlockCopy(rows, n * 3072, b, n * 3073 + 1, 3072);
        }
        return b;
    }

    /// <summary>A batch as the Python 2 cPickle of the CIFAR-10 python archive writes it (protocol 2).</summary>
    public static byte[] Python2Pickle(int first, int count)
    {
        var p = new PickleBytes();
        p.Op(0x80, 2).Op('}').Op('(');
        p.ShortBinString("batch_label").ShortBinString("testing batch 1 of 1");
        p.ShortBinString("labels").Op(']').Op('(');
        for (int n = 0; n < count; n++) p.Op('K', (byte)Label(first + n));
        p.Op('e');
        p.ShortBinString("data").Global("numpy.core.multiarray", "_reconstruct").Global("numpy", "ndarray")
            .Op('K', 0).Op(0x85).ShortBinString("b").Op(0x87).Op('R')
            .Op('(').Op('K', 1).Int((uint)count).Int(3072).Op(0x86)
            .Global("numpy", "dtype").ShortBinString("u1").Op(0x89).Op(0x88).Op(0x87).Op('R')
            .Op('(').Op('K', 3).ShortBinString("|").Op('N').Op('N').Op('N').Int(uint.MaxValue).Int(uint.MaxValue).Op('K', 0).Op('t').Op('b')
            .Op(0x89).BinString(Rows(first, count)).Op('t').Op('b');
        p.ShortBinString("filenames").Op(']').Op('(');
        for (int n = 0; n < count; n++) p.ShortBinString($"img_{first + n}.png");
        p.Op('e').Op('u').Op('.');
        return p.ToArray();
    }

    /// <summary>A batches.meta pickle (protocol 2, Python 2) with the given label names.</summary>
    public static byte[] MetaPickle(IEnumerable<string> names)
    {
        var p = new PickleBytes();
        p.Op(0x80, 2).Op('}').Op('(').ShortBinString("num_cases_per_batch").Int(10000).ShortBinString("label_names").Op(']').Op('(');
        foreach (var n in names) p.ShortBinString(n);
        p.Op('e').ShortBinString("num_vis").Int(3072).Op('u').Op('.');
        return p.ToArray();
    }

    /// <summary>Writes a tar (gzip-compressed when <paramref name="gzip"/>) of the given files under <paramref name="folder"/>/.</summary>
    public static void Tar(string path, string folder, IEnumerable<(string Name, byte[] Data)> files, bool gzip = true)
    {
        using var fs = File.Create(path);
        using Stream s = gzip ? new GZipStream(fs, CompressionLevel.Fastest) : fs;
        using var tar = new TarWriter(s, TarEntryFormat.Pax);
        tar.WriteEntry(new PaxTarEntry(TarEntryType.Directory, folder + "/"));
        foreach (var (name, data) in files)
            tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, folder + "/" + name) { DataStream = new MemoryStream(data) });
    }

    /// <summary>The six batches of a tiny CIFAR-10 (binary: data_batch_N.bin, python: data_batch_N) with <paramref name="perBatch"/> images each.</summary>
    public static List<(string Name, byte[] Data)> Batches(bool binary, int perBatch)
    {
        var files = new List<(string, byte[])>();
        for (int b = 0; b < 5; b++)
            files.Add(($"data_batch_{b + 1}{(binary ? ".bin" : "")}", binary ? Binary(b * perBatch, perBatch) : Python2Pickle(b * perBatch, perBatch)));
        files.Add(($"test_batch{(binary ? ".bin" : "")}", binary ? Binary(1000, perBatch) : Python2Pickle(1000, perBatch)));
        return files;
    }
}

/// <summary>Emits pickle opcodes.</summary>
internal sealed class PickleBytes
{
    private readonly MemoryStream _s = new();

    public PickleBytes Op(char op) => Op((byte)op);

    public PickleBytes Op(byte op, params byte[] args)
    {
        _s.WriteByte(op);
        _s.Write(args);
        return this;
    }

    public PickleBytes Op(char op, byte arg) => Op((byte)op, arg);

    public PickleBytes Int(uint v)
    {
        var b = new byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, v);
        return Op('J', b);
    }

    public PickleBytes Op(char op, byte[] args) => Op((byte)op, args);

    public PickleBytes ShortBinString(string s)
    {
        var b = Encoding.Latin1.GetBytes(s);
        return Op('U', [(byte)b.Length, .. b]);
    }

    public PickleBytes BinString(byte[] b)
    {
        var len = new byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(len, b.Length);
        return Op('T', [.. len, .. b]);
    }

    public PickleBytes Global(string module, string name) => Op('c', Encoding.ASCII.GetBytes(module + "\n" + name + "\n"));

    public byte[] ToArray() => _s.ToArray();
}
