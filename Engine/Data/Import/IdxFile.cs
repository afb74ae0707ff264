// Reader of the IDX format of LeCun's MNIST files, shared by Fashion-MNIST, KMNIST and EMNIST:
// two zero bytes, a type code (0x08 = unsigned byte, the only one these datasets use), the number
// of dimensions, each dimension as a big-endian int32, then the data. gzip-compressed files are
// recognised by their content (1F 8B), not their name. Every way a file can be wrong (another
// format, a bad type code, zero or huge dimensions, a truncated or over-long body, corrupt gzip)
// is an InvalidDataException that names the file and the problem.
using System.Buffers.Binary;
using System.IO.Compression;

namespace ResidualEngine.Data.Import;

/// <summary>An IDX array of unsigned bytes: its dimensions and its data (row-major).</summary>
public sealed class IdxFile
{
    /// <summary>Largest body accepted (EMNIST ByClass, the biggest of the family, is ~550 MB).</summary>
    public const long MaxBytes = 2_000_000_000;

    private IdxFile(string name, int[] dims, byte[] data)
    {
        Name = name;
        Dimensions = dims;
        Data = data;
    }

    public string Name { get; }
    public IReadOnlyList<int> Dimensions { get; }
    public byte[] Data { get; }

    /// <summary>Number of items (the first dimension).</summary>
    public int Count => Dimensions[0];

    public static IdxFile Read(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var info = new FileInfo(path);
        if (!info.Exists) throw new FileNotFoundException($"IDX file '{path}' does not exist", path);
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        Span<byte> magic = stackalloc byte[2];
        int got = file.ReadAtLeast(magic, 2, throwOnEndOfStream: false);
        file.Position = 0;
        if (got == 2 && magic[0] == 0x1F && magic[1] == 0x8B)
        {
            using var gz = new GZipStream(file, CompressionMode.Decompress);
            return Read(gz, path + " (gzip)");
        }
        return Read(file, path);
    }

    /// <summary>Reads one IDX array from a stream (already decompressed); <paramref name="name"/> is used in messages.</summary>
    public static IdxFile Read(Stream stream, string name)
    {
        ArgumentNullException.ThrowIfNull(stream);
        try
        {
            return ReadCore(stream, name);
        }
        catch (InvalidDataException e) when (!e.Message.StartsWith(name, StringComparison.Ordinal))
        {
            // GZipStream's own complaints ("The archive entry was compressed using an unsupported
            // compression method", "Found invalid data while decoding") get the file name.
            throw new InvalidDataException($"{name}: corrupt compressed data ({e.Message})", e);
        }
    }

    private static IdxFile ReadCore(Stream stream, string name)
    {
        Span<byte> head = stackalloc byte[4];
        if (ReadFully(stream, head) < 4) throw new InvalidDataException($"{name}: not an IDX file (shorter than its 4-byte header)");
        if (head[0] != 0 || head[1] != 0)
            throw new InvalidDataException($"{name}: not an IDX file (it starts {Convert.ToHexString(head)}, an IDX file starts 0000 then a type code and a dimension count)");
        if (head[2] != 0x08)
            throw new InvalidDataException($"{name}: IDX type code 0x{head[2]:X2} ({TypeName(head[2])}) is not supported; the image datasets use 0x08 (unsigned bytes)");
        int ndim = head[3];
        if (ndim < 1 || ndim > 4) throw new InvalidDataException($"{name}: IDX header gives {ndim} dimensions; expected 1 (labels) or 3 (images)");
        Span<byte> dimBytes = stackalloc byte[4 * ndim];
        if (ReadFully(stream, dimBytes) < dimBytes.Length) throw new InvalidDataException($"{name}: truncated IDX header (the file ends inside the dimensions)");
        var dims = new int[ndim];
        long total = 1;
        for (int i = 0; i < ndim; i++)
        {
            int d = BinaryPrimitives.ReadInt32BigEndian(dimBytes.Slice(4 * i, 4));
            if (d <= 0) throw new InvalidDataException($"{name}: IDX dimension {i} is {d}; every dimension must be positive");
            dims[i] = d;
            total *= d;
            if (total > MaxBytes)
                throw new InvalidDataException($"{name}: IDX dimensions {string.Join(" x ", dims.Take(i + 1))} promise more than {MaxBytes:N0} bytes; refusing (a corrupt header?)");
        }
        // A header may lie: check the size of a file before allocating, and read a compressed
        // stream in chunks, so that a corrupt header costs no more memory than the data present.
        long available = stream.CanSeek ? stream.Length - stream.Position : -1;
        if (available >= 0 && available < total)
            throw new InvalidDataException($"{name}: truncated: the header ({string.Join(" x ", dims)}) promises {total:N0} data bytes but the file holds {available:N0}");
        var data = available >= 0 ? new byte[total] : null;
        long read = data is not null ? ReadFully(stream, data) : ReadChunked(stream, total, out data);
        if (read < total)
            throw new InvalidDataException($"{name}: truncated: the header ({string.Join(" x ", dims)}) promises {total:N0} data bytes but the file holds {read:N0}");
        Span<byte> extra = stackalloc byte[1];
        if (ReadFully(stream, extra) > 0)
            throw new InvalidDataException($"{name}: the file is longer than its header ({string.Join(" x ", dims)}) says; not a clean IDX file");
        return new IdxFile(name, dims, data);
    }

    private static string TypeName(byte code) => code switch
    {
        0x09 => "signed bytes",
        0x0B => "int16",
        0x0C => "int32",
        0x0D => "float32",
        0x0E => "float64",
        _ => "unknown",
    };

    private static int ReadFully(Stream s, Span<byte> buffer)
    {
        int total = 0;
        while (total < buffer.Length)
        {
            int n = s.Read(buffer[total..]);
            if (n == 0) break;
            total += n;
        }
        return total;
    }

    private static long ReadChunked(Stream s, long total, out byte[] data)
    {
        var chunks = new List<byte[]>();
        long got = 0;
        while (got < total)
        {
            var chunk = new byte[Math.Min(16L << 20, total - got)];
            long n = ReadFully(s, chunk);
            if (n == 0) break;
            chunks.Add(n == chunk.Length ? chunk : chunk[..(int)n]);
            got += n;
            if (n < chunk.Length) break;
        }
        data = new byte[got == total ? total : 0];
        if (got == total)
        {
            long o = 0;
            foreach (var c in chunks) { Buffer.BlockCopy(c, 0, data, (int)o, c.Length); o += c.Length; }
        }
        return got;
    }

    private static long ReadFully(Stream s, byte[] buffer)
    {
        long total = 0;
        while (total < buffer.LongLength)
        {
            int n = s.Read(buffer, (int)total, (int)Math.Min(1 << 20, buffer.LongLength - total));
            if (n == 0) break;
            total += n;
        }
        return total;
    }
}
