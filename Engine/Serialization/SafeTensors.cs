// safetensors read/write (the format of Hugging Face's safetensors, which PyTorch users share weights in).
// Layout: u64 little-endian header size N, N bytes of UTF-8 JSON
//   {"__metadata__": {string: string}, "name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...}
// padded with spaces, then the byte buffer; offsets are relative to the buffer start, tensors are
// row-major and little-endian. The writer emits tensors in the caller's order, contiguous, with the
// header padded to a multiple of 8 bytes (so the buffer is 8-byte aligned). The reader
// (SafeTensorsHeader.cs) trusts nothing in the header: every claim is validated against the file
// size before anything is allocated, and every problem is a SafeTensorsFormatException.
using System.Buffers.Binary;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace ResidualEngine.Serialization;

public static class SafeTensors
{
    /// <summary>Headers above this size are rejected (the reference implementation's limit).</summary>
    public const long MaxHeaderBytes = 100_000_000;

    /// <summary>
    /// Headers naming more tensors (or metadata keys) than this are rejected before the entries are
    /// built: a million empty entries cost a gigabyte of objects. The largest published models have
    /// a few tens of thousands of tensors per file.
    /// </summary>
    public const int MaxEntries = 1 << 18;

    // Host copies and stream I/O move at most this many bytes at a time (spans are int-sized).
    private const int Chunk = 1 << 24;

    /// <summary>Writes tensors (any device; copied to the host) in the given order, with optional string metadata.</summary>
    public static void Write(Stream stream, IEnumerable<KeyValuePair<string, Tensor>> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(tensors);
        var list = tensors.ToList();
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (name, t) in list)
        {
            if (name is null) throw new ArgumentException("safetensors: a tensor name is null", nameof(tensors));
            if (name == "__metadata__") throw new ArgumentException("safetensors: '__metadata__' is reserved and cannot name a tensor", nameof(tensors));
            if (!names.Add(name)) throw new ArgumentException($"safetensors: tensor name '{name}' appears twice", nameof(tensors));
            if (t is null) throw new ArgumentNullException(nameof(tensors), $"safetensors: tensor '{name}' is null");
            if (t.IsDisposed) throw new ObjectDisposedException(nameof(Tensor), $"safetensors: tensor '{name}' was disposed");
        }

        var header = BuildHeader(list, metadata);
        Span<byte> size = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(size, (ulong)header.Length);
        stream.Write(size);
        stream.Write(header);
        foreach (var (_, t) in list) WriteData(stream, t);
        stream.Flush();
    }

    /// <summary>Writes to a file (not atomically: checkpoints add temp-file + fsync + rename on top).</summary>
    public static void Save(string path, IEnumerable<KeyValuePair<string, Tensor>> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        using var f = File.Create(path);
        Write(f, tensors, metadata);
    }

    /// <summary>Reads every tensor onto the CPU. Hostile or damaged input raises SafeTensorsFormatException.
    /// The tensors belong to the returned file (not to any TensorScope): dispose it to free them.</summary>
    public static SafeTensorsFile Read(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        if (!stream.CanRead) throw new ArgumentException("safetensors: the stream is not readable", nameof(stream));
        long? available = null;
        if (stream.CanSeek) available = Math.Max(0, stream.Length - stream.Position);
        var header = ReadHeaderCore(stream, available, out _);

        // The size of a non-seekable stream is unknown, so its buffer is read (growing only as bytes
        // arrive) before any tensor is allocated: a lying header cannot make us allocate much more than was sent.
        var source = stream;
        MemoryStream? buffered = null;
        if (available is null)
        {
            if (header.BufferBytes > Array.MaxLength)
                throw new SafeTensorsFormatException($"safetensors: the header claims {header.BufferBytes} data bytes; non-seekable streams are limited to {Array.MaxLength} (read from a file instead)");
            source = buffered = new MemoryStream(ReadBounded(stream, header.BufferBytes, "the tensor data"), writable: false);
        }

        var result = new OrderedDictionary<string, Tensor>(StringComparer.Ordinal);
        try
        {
            foreach (var e in header.Entries)
            {
                var t = Tensor.Empty(e.Shape, e.DType);
                TensorScope.Detach(t);
                t.Name = e.Name;
                result.Add(e.Name, t);
            }
            // Data in offset order, straight into each tensor's memory (the offsets tile the buffer exactly).
            foreach (var e in header.Entries.OrderBy(e => e.Begin).ThenBy(e => e.End))
                ReadData(source, result[e.Name], e.Name);
            if (available is null && stream.ReadByte() >= 0)
                throw new SafeTensorsFormatException($"safetensors: bytes follow the last tensor's data; the data offsets must cover the buffer exactly ({header.BufferBytes} bytes)");
        }
        catch
        {
            foreach (var t in result.Values) t.Dispose();
            throw;
        }
        finally
        {
            buffered?.Dispose();
        }
        return new SafeTensorsFile(result, header.Metadata);
    }

    /// <summary>
    /// The metadata and layout of a safetensors file without its tensors (the header is validated
    /// against the file's size as <see cref="Read"/> does). Cheap: only the header is read.
    /// </summary>
    public static SafeTensorsLayout ReadLayout(string path)
    {
        using var f = IO.SafeFile.OpenRead(path, "safetensors file");
        var header = ReadHeaderCore(f, f.Length, out long n);
        return new SafeTensorsLayout(header.Metadata, 8 + n, header.BufferBytes, header.Entries.Count);
    }

    private static SafeTensorsHeader ReadHeaderCore(Stream stream, long? available, out long n)
    {
        Span<byte> sizeBytes = stackalloc byte[8];
        int got = ReadFully(stream, sizeBytes);
        if (got < 8)
            throw new SafeTensorsFormatException($"safetensors: file is {got} bytes long, shorter than the 8-byte header size field");
        ulong size = BinaryPrimitives.ReadUInt64LittleEndian(sizeBytes);
        if (size > MaxHeaderBytes)
            throw new SafeTensorsFormatException($"safetensors: header size {size} exceeds the limit of {MaxHeaderBytes} bytes");
        n = (long)size;
        if (available is long avail && n > avail - 8)
            throw new SafeTensorsFormatException($"safetensors: header size {n} goes beyond the end of the file ({avail - 8} bytes after the size field)");
        var headerBytes = ReadBounded(stream, n, "the header");
        long? bufferBytes = available is long a ? a - 8 - n : null;
        return SafeTensorsHeader.Parse(headerBytes, bufferBytes);
    }

    /// <summary>Reads a safetensors file; anything but a regular file (a FIFO, a device, a folder) is refused before it is opened.</summary>
    public static SafeTensorsFile Load(string path)
    {
        using var f = IO.SafeFile.OpenRead(path, "safetensors file");
        return Read(f);
    }

    // ---- writing ----

    private static byte[] BuildHeader(List<KeyValuePair<string, Tensor>> list, IReadOnlyDictionary<string, string>? metadata)
    {
        using var ms = new MemoryStream();
        // Relaxed escaping keeps non-ASCII names readable; the output is still valid JSON.
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                w.WriteStartObject("__metadata__");
                foreach (var (k, v) in metadata)
                {
                    if (k is null || v is null) throw new ArgumentException("safetensors: metadata keys and values must not be null", nameof(metadata));
                    w.WriteString(k, v);
                }
                w.WriteEndObject();
            }
            long offset = 0;
            foreach (var (name, t) in list)
            {
                w.WriteStartObject(name);
                w.WriteString("dtype", t.DType.SafetensorsName());
                w.WriteStartArray("shape");
                foreach (var d in t.Shape.Dims) w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(offset);
                offset += t.Bytes;
                w.WriteNumberValue(offset);
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndObject();
        }
        int len = (int)ms.Length;
        int padded = (len + 7) / 8 * 8;
        for (int i = len; i < padded; i++) ms.WriteByte((byte)' ');
        return ms.ToArray();
    }

    private static unsafe void WriteData(Stream stream, Tensor t)
    {
        if (t.Bytes == 0) return;
        Tensor? host = null;
        try
        {
            var src = t;
            if (t.Device.Type != DeviceType.Cpu) src = host = t.To(Device.Cpu);
            if (src.Format == MemoryFormat.ChannelsLast)
            {
                // safetensors is row-major in logical (N, C, H, W) order; reorder the NHWC bytes.
                stream.Write(NhwcToNchw(src));
                return;
            }
            byte* p = (byte*)src.Pointer;
            for (long done = 0; done < src.Bytes; done += Chunk)
                stream.Write(new ReadOnlySpan<byte>(p + done, (int)Math.Min(Chunk, src.Bytes - done)));
        }
        finally
        {
            host?.Dispose();
        }
    }

    private static unsafe byte[] NhwcToNchw(Tensor t)
    {
        int n = t.Shape[0], c = t.Shape[1], h = t.Shape[2], w = t.Shape[3], es = t.DType.Size();
        var dst = new byte[checked((int)t.Bytes)];
        byte* src = (byte*)t.Pointer;
        long di = 0;
        for (int ni = 0; ni < n; ni++)
            for (int ci = 0; ci < c; ci++)
                for (int hi = 0; hi < h; hi++)
                    for (int wi = 0; wi < w; wi++, di += es)
                    {
                        long si = ((((long)ni * h + hi) * w + wi) * c + ci) * es;
                        new ReadOnlySpan<byte>(src + si, es).CopyTo(dst.AsSpan((int)di, es));
                    }
        return dst;
    }

    // ---- reading ----

    private static int ReadFully(Stream s, Span<byte> dst)
    {
        int total = 0;
        while (total < dst.Length)
        {
            int r = s.Read(dst[total..]);
            if (r <= 0) break;
            total += r;
        }
        return total;
    }

    /// <summary>Reads exactly <paramref name="count"/> bytes, growing the buffer only as data arrives,
    /// so a lying size on a non-seekable stream cannot make us allocate more than the stream holds.</summary>
    private static byte[] ReadBounded(Stream s, long count, string what)
    {
        var buf = new byte[(int)Math.Min(count, 1 << 16)];
        long total = 0;
        while (total < count)
        {
            if (total == buf.Length) Array.Resize(ref buf, (int)Math.Min(count, (long)buf.Length * 2));
            int r = s.Read(buf, (int)total, buf.Length - (int)total);
            if (r <= 0)
                throw new SafeTensorsFormatException($"safetensors: file truncated in {what}: expected {count} bytes, found {total}");
            total += r;
        }
        return buf;
    }

    private static unsafe void ReadData(Stream stream, Tensor t, string name)
    {
        byte* p = (byte*)t.Pointer;
        for (long done = 0; done < t.Bytes;)
        {
            int want = (int)Math.Min(Chunk, t.Bytes - done);
            int got = ReadFully(stream, new Span<byte>(p + done, want));
            done += got;
            if (got < want)
                throw new SafeTensorsFormatException($"safetensors: file truncated in the data of tensor '{name}': {done} of {t.Bytes} bytes present");
        }
    }
}

/// <summary>The contents of a safetensors file: CPU tensors in file order plus metadata. Disposing frees the tensors.</summary>
public sealed class SafeTensorsFile(OrderedDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string> metadata) : IDisposable
{
    public OrderedDictionary<string, Tensor> Tensors { get; } = tensors;
    public IReadOnlyDictionary<string, string> Metadata { get; } = metadata;
    public Tensor this[string name] => Tensors.TryGetValue(name, out var t) ? t : throw new KeyNotFoundException($"no tensor named '{name}' in the safetensors file");
    public void Dispose()
    {
        foreach (var t in Tensors.Values) t.Dispose();
    }
}

/// <summary>What a safetensors header says: metadata, where the data buffer starts and how long it is, how many tensors.</summary>
public sealed record SafeTensorsLayout(IReadOnlyDictionary<string, string> Metadata, long DataOffset, long DataBytes, int TensorCount);

/// <summary>A safetensors file that is malformed, truncated or hostile; the message says what is wrong.</summary>
public sealed class SafeTensorsFormatException(string message) : FormatException(message);
