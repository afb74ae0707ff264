// PyTorch's .pth/.pt files as torch.save writes them since 1.6 (and torchvision publishes its
// weights): a zip archive with one top folder holding data.pkl (the pickled object, whose
// tensors refer to storages through persistent ids), data/<key> (each storage's raw bytes,
// little-endian) and version (and, from torch 2.1, byteorder). The pickle is read by
// PickleMachine under TorchPicklePolicy (no code runs); the state dict is the top-level (Ordered)dict of tensors,
// or one found under "state_dict", "model", "model_state_dict" or "module" of a top-level dict
// (training scripts' checkpoints). Each tensor is copied out of its storage (any strides, bounds
// checked) into a contiguous CPU tensor of its dtype. Limits: data.pkl at most 64 MiB, at most
// 100,000 tensors, each storage exactly as long as it claims; the legacy (pre-1.6) format is
// recognised and refused with advice.
using System.IO.Compression;

namespace ResidualEngine.Serialization;

public static class TorchZipReader
{
    public const long MaxPickleBytes = 64L << 20;
    public const int MaxTensors = 100_000;
    public const int MaxEntries = 200_000;

    private static readonly string[] s_nestedKeys = ["state_dict", "model", "model_state_dict", "module"];

    /// <summary>True when the stream starts like a zip archive (PyTorch's format since 1.6).</summary>
    public static bool LooksLikeZip(ReadOnlySpan<byte> head) => head.Length >= 4 && head[0] == 'P' && head[1] == 'K' && head[2] == 3 && head[3] == 4;

    /// <summary>Reads the state dict of a torch.save file into CPU tensors (names as saved). Dispose the result to free them.</summary>
    public static SafeTensorsFile Load(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        using var f = IO.SafeFile.OpenRead(path, "PyTorch file");
        return Read(f, Path.GetFileName(path));
    }

    public static SafeTensorsFile Read(Stream stream, string name = "the file")
    {
        ArgumentNullException.ThrowIfNull(stream);
        if (!stream.CanSeek) throw new ArgumentException("a PyTorch file must be read from a seekable stream", nameof(stream));
        var head = new byte[4];
        long start = stream.Position;
        int got = stream.ReadAtLeast(head, 4, throwOnEndOfStream: false);
        stream.Position = start;
        if (!LooksLikeZip(head.AsSpan(0, got)))
        {
            if (got >= 2 && head[0] == 0x80 && head[1] <= 5)
                throw new TorchFormatException($"{name}: this is PyTorch's legacy (pre-1.6) serialization, which is not read; " +
                    "re-save it with a current torch: torch.save(torch.load(f), 'new.pth')");
            throw new TorchFormatException($"{name}: not a PyTorch zip file (it does not start with a zip signature)");
        }
        ZipArchive zip;
        try
        {
            zip = new ZipArchive(stream, ZipArchiveMode.Read, leaveOpen: true);
        }
        catch (InvalidDataException e)
        {
            throw new TorchFormatException($"{name}: the zip archive is damaged ({e.Message})");
        }
        using (zip)
        {
            if (zip.Entries.Count > MaxEntries) throw new TorchFormatException($"{name}: {zip.Entries.Count} zip entries (at most {MaxEntries})");
            var pkl = zip.Entries.Where(e => e.FullName.EndsWith("/data.pkl", StringComparison.Ordinal) && e.FullName.Count(c => c == '/') == 1).ToList();
            if (pkl.Count != 1)
                throw new TorchFormatException($"{name}: expected one <archive>/data.pkl in the zip, found {pkl.Count}; this is not a torch.save file");
            var prefix = pkl[0].FullName[..^"data.pkl".Length];
            var order = zip.GetEntry(prefix + "byteorder");
            if (order is not null && ReadEntry(order, 16, name).AsSpan().SequenceEqual("big"u8))
                throw new TorchFormatException($"{name}: the tensors are stored big-endian; only little-endian files are read");
            var root = TorchPicklePolicy.Load(ReadEntry(pkl[0], MaxPickleBytes, name), $"{name} ({pkl[0].FullName})");
            var dict = FindStateDict(root, name);
            return Materialise(zip, prefix, dict, name);
        }
    }

    private static List<(string Name, TorchTensorRef Tensor)> FindStateDict(object? root, string name)
    {
        if (root is not PyDict top) throw new TorchFormatException($"{name}: holds {PickleMachine.Describe(root)}, not a state dict (a dict of tensors)");
        if (IsTensorDict(top)) return Tensors(top, name);
        foreach (var k in s_nestedKeys)
            if (top.TryGetValue(k, out var inner) && inner is PyDict d && IsTensorDict(d)) return Tensors(d, name);
        var keys = string.Join(", ", top.Keys.Take(8).Select(PickleMachine.Describe));
        throw new TorchFormatException($"{name}: holds a dict ({keys}{(top.Count > 8 ? ", …" : "")}) that is not a state dict of tensors, " +
            $"and none under {string.Join(", ", s_nestedKeys.Select(k => $"'{k}'"))}");
    }

    private static bool IsTensorDict(PyDict d) => d.Count > 0 && d.Values.All(v => v is TorchTensorRef);

    private static List<(string, TorchTensorRef)> Tensors(PyDict d, string name)
    {
        if (d.Count > MaxTensors) throw new TorchFormatException($"{name}: {d.Count} tensors (at most {MaxTensors})");
        var list = new List<(string, TorchTensorRef)>(d.Count);
        foreach (var (k, v) in d)
        {
            if (k is not string s) throw new TorchFormatException($"{name}: state dict key {PickleMachine.Describe(k)} is not a string");
            list.Add((s, (TorchTensorRef)v!));
        }
        return list;
    }

    private static byte[] ReadEntry(ZipArchiveEntry e, long max, string name)
    {
        if (e.Length > max) throw new TorchFormatException($"{name}: '{e.FullName}' is {e.Length} bytes (at most {max})");
        var buf = new byte[e.Length];
        try
        {
            using var s = e.Open();
            int n = s.ReadAtLeast(buf, buf.Length, throwOnEndOfStream: false);
            if (n != buf.Length || s.ReadByte() >= 0)
                throw new TorchFormatException($"{name}: '{e.FullName}' does not hold the {e.Length} bytes its zip entry declares");
        }
        catch (InvalidDataException x)
        {
            throw new TorchFormatException($"{name}: '{e.FullName}' cannot be read ({x.Message})");
        }
        return buf;
    }

    private static SafeTensorsFile Materialise(ZipArchive zip, string prefix, List<(string Name, TorchTensorRef Tensor)> refs, string name)
    {
        var storages = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        var result = new OrderedDictionary<string, Tensor>(StringComparer.Ordinal);
        try
        {
            foreach (var (key, r) in refs)
            {
                var st = r.Storage;
                long bytes = checked(st.Numel * st.DType.Size());
                if (!storages.TryGetValue(st.Key, out var data))
                {
                    var entry = zip.GetEntry(prefix + "data/" + st.Key)
                        ?? throw new TorchFormatException($"{name}: tensor '{key}' refers to storage '{st.Key}', which is not in the archive");
                    if (entry.Length != bytes)
                        throw new TorchFormatException($"{name}: storage '{st.Key}' ({st.StorageType}) claims {st.Numel} elements ({bytes} bytes) but its entry holds {entry.Length} bytes");
                    if (bytes > Array.MaxLength) throw new TorchFormatException($"{name}: storage '{st.Key}' is {bytes} bytes, larger than one array can hold");
                    data = storages[st.Key] = ReadEntry(entry, bytes, name);
                }
                else if (data.LongLength != bytes)
                    throw new TorchFormatException($"{name}: storage '{st.Key}' is referred to with two different sizes");
                var t = Gather(data, r, key, name);
                t.Name = key;
                result.Add(key, t);
            }
        }
        catch
        {
            foreach (var t in result.Values) t.Dispose();
            throw;
        }
        var meta = new Dictionary<string, string>(StringComparer.Ordinal) { ["format"] = "pt", ["source"] = "torch.save" };
        return new SafeTensorsFile(result, meta);
    }

    /// <summary>Copies the view (offset, size, stride) of a storage into a new contiguous tensor, checking every bound first.</summary>
    private static unsafe Tensor Gather(byte[] storage, TorchTensorRef r, string key, string name)
    {
        int rank = r.Size.Length, es = r.Storage.DType.Size();
        long numel = 1, last = r.Offset;
        var dims = new int[rank];
        for (int i = 0; i < rank; i++)
        {
            if (r.Size[i] > int.MaxValue) throw new TorchFormatException($"{name}: tensor '{key}' dimension {i} is {r.Size[i]} (too large)");
            dims[i] = (int)r.Size[i];
            numel = checked(numel * r.Size[i]);
            if (r.Size[i] > 0) last = checked(last + (r.Size[i] - 1) * r.Stride[i]);
        }
        if (numel > 0 && last >= r.Storage.Numel)
            throw new TorchFormatException($"{name}: tensor '{key}' (size [{string.Join(", ", r.Size)}], stride [{string.Join(", ", r.Stride)}], offset {r.Offset}) " +
                $"reaches element {last} of a storage of {r.Storage.Numel}");
        var t = TensorScope.Detach(Tensor.Empty(new Shape(dims), r.Storage.DType));
        if (numel == 0) return t;
        var dst = new Span<byte>((void*)t.Pointer, checked((int)(numel * es)));
        bool contiguous = true;
        long expect = 1;
        for (int i = rank - 1; i >= 0; i--)
        {
            if (r.Size[i] != 1 && r.Stride[i] != expect) contiguous = false;
            expect *= r.Size[i];
        }
        if (contiguous)
        {
            storage.AsSpan(checked((int)(r.Offset * es)), dst.Length).CopyTo(dst);
            return t;
        }
        var index = new long[rank];
        for (long n = 0; n < numel; n++)
        {
            long src = r.Offset;
            for (int i = 0; i < rank; i++) src += index[i] * r.Stride[i];
            storage.AsSpan((int)(src * es), es).CopyTo(dst.Slice((int)(n * es), es));
            for (int i = rank - 1; i >= 0; i--)
            {
                if (++index[i] < r.Size[i]) break;
                index[i] = 0;
            }
        }
        return t;
    }
}
