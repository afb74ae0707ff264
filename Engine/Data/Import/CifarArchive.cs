// Reads CIFAR-10 as distributed on https://www.cs.toronto.edu/~kriz/cifar.html, in either form:
//   python  cifar-10-python.tar.gz, or its folder cifar-10-batches-py/: data_batch_1..5 and
//           test_batch are pickled dicts {labels: [10000 ints], data: uint8 array 10000 x 3072},
//           batches.meta holds label_names. Read by SafePickle (data only, no code runs).
//   binary  cifar-10-binary.tar.gz, or cifar-10-batches-bin/: data_batch_1..5.bin and
//           test_batch.bin are 10000 records of <1 label byte><3072 pixel bytes>;
//           batches.meta.txt lists the class names, one per line.
// A row of 3072 bytes is the red plane, then green, then blue, each 32 x 32 row-major. The source
// may be a .tar.gz / .tar file or a folder (or the folder above the batches folder). Entries are
// matched by file name, read only when regular files, and size-capped.
using System.Formats.Tar;
using System.IO.Compression;
using System.Text;

namespace ResidualEngine.Data.Import;

/// <summary>Images of one split: RGB planes (3 x 32 x 32 per image) and labels.</summary>
public sealed record CifarSplit(byte[] Pixels, byte[] Labels)
{
    public const int Side = 32, ImageBytes = 3 * Side * Side;
    public int Count => Labels.Length;
}

/// <summary>CIFAR-10 as read from a user's archive or folder.</summary>
public sealed record CifarData(string Format, CifarSplit Train, CifarSplit Test, IReadOnlyList<string>? ClassNames);

public static class CifarArchive
{
    /// <summary>The class names on the CIFAR-10 page (and in batches.meta), label order.</summary>
    public static IReadOnlyList<string> DefaultClassNames { get; } =
        ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];

    private const long MaxEntryBytes = 256L << 20;
    private static readonly string[] s_trainBatches = ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5"];

    /// <summary>True when <paramref name="path"/> looks like CIFAR-10 (an archive with its name, or a folder holding its batches).</summary>
    public static bool Recognises(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (File.Exists(path))
        {
            var n = Path.GetFileName(path).ToLowerInvariant();
            return n.Contains("cifar", StringComparison.Ordinal) && (n.EndsWith(".tar.gz", StringComparison.Ordinal) || n.EndsWith(".tgz", StringComparison.Ordinal) || n.EndsWith(".tar", StringComparison.Ordinal));
        }
        return Directory.Exists(path) && FindBatchFolder(path) is not null;
    }

    public static CifarData Read(string path, Action<string>? log = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var files = File.Exists(path) ? ReadArchive(path) : ReadFolder(path);
        bool binary = files.ContainsKey("test_batch.bin");
        bool python = files.ContainsKey("test_batch");
        if (!binary && !python)
            throw new InvalidDataException($"{path}: no CIFAR-10 test batch found (expected test_batch from cifar-10-python or test_batch.bin from cifar-10-binary); " +
                $"found: {(files.Count == 0 ? "nothing relevant" : string.Join(", ", files.Keys.Order(StringComparer.Ordinal)))}");
        log?.Invoke($"{path}: CIFAR-10 {(binary ? "binary" : "python")} version");
        var train = Concat(s_trainBatches.Select(b => binary ? Binary(Need(files, b + ".bin", path), $"{path}:{b}.bin") : Python(Need(files, b, path), $"{path}:{b}")).ToList());
        var test = binary ? Binary(Need(files, "test_batch.bin", path), $"{path}:test_batch.bin") : Python(Need(files, "test_batch", path), $"{path}:test_batch");
        IReadOnlyList<string>? names = null;
        if (binary && files.TryGetValue("batches.meta.txt", out var txt))
            names = Encoding.ASCII.GetString(txt).Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0).ToList();
        else if (!binary && files.TryGetValue("batches.meta", out var meta))
            names = MetaNames(meta, $"{path}:batches.meta");
        return new CifarData(binary ? "binary" : "python", train, test, names);
    }

    private static byte[] Need(Dictionary<string, byte[]> files, string name, string path) =>
        files.TryGetValue(name, out var b) ? b : throw new InvalidDataException($"{path}: CIFAR-10 file '{name}' is missing");

    /// <summary>The folder holding the batches: <paramref name="dir"/> itself, or one of its sub-folders.</summary>
    private static string? FindBatchFolder(string dir)
    {
        static bool Has(string d) => File.Exists(Path.Combine(d, "test_batch")) || File.Exists(Path.Combine(d, "test_batch.bin"));
        if (Has(dir)) return dir;
        foreach (var sub in new[] { "cifar-10-batches-py", "cifar-10-batches-bin" })
            if (Has(Path.Combine(dir, sub))) return Path.Combine(dir, sub);
        return null;
    }

    private static bool Relevant(string fileName) =>
        fileName is "test_batch" or "test_batch.bin" or "batches.meta" or "batches.meta.txt" ||
        s_trainBatches.Any(b => fileName == b || fileName == b + ".bin");

    private static Dictionary<string, byte[]> ReadFolder(string dir)
    {
        var folder = FindBatchFolder(dir) ?? throw new InvalidDataException(
            $"{dir}: no CIFAR-10 batches here (expected test_batch or test_batch.bin, in this folder or in cifar-10-batches-py/ or cifar-10-batches-bin/)");
        var files = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        foreach (var f in Directory.GetFiles(folder))
        {
            var name = Path.GetFileName(f);
            if (!Relevant(name)) continue;
            files[name] = ReadCapped(f);
        }
        return files;
    }

    /// <summary>Reads a file of at most MaxEntryBytes (a device or a huge file is refused instead of read without end).</summary>
    private static byte[] ReadCapped(string path)
    {
        using var s = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        using var ms = new MemoryStream();
        var buf = new byte[1 << 16];
        int n;
        while ((n = s.Read(buf)) > 0)
        {
            ms.Write(buf, 0, n);
            if (ms.Length > MaxEntryBytes) throw new InvalidDataException($"{path}: more than {MaxEntryBytes:N0} bytes, far larger than a CIFAR-10 batch");
        }
        return ms.ToArray();
    }

    private static Dictionary<string, byte[]> ReadArchive(string path)
    {
        var files = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        Span<byte> magic = stackalloc byte[2];
        int got = file.ReadAtLeast(magic, 2, throwOnEndOfStream: false);
        file.Position = 0;
        using Stream input = got == 2 && magic[0] == 0x1F && magic[1] == 0x8B ? new GZipStream(file, CompressionMode.Decompress) : file;
        try
        {
            using var tar = new TarReader(input);
            while (tar.GetNextEntry() is { } e)
            {
                var name = Path.GetFileName(e.Name.TrimEnd('/'));
                if (!Relevant(name)) continue;
                if (e.EntryType is not (TarEntryType.RegularFile or TarEntryType.V7RegularFile))
                    throw new InvalidDataException($"{path}: archive entry '{e.Name}' is a {e.EntryType}, not a regular file");
                if (e.Length > MaxEntryBytes) throw new InvalidDataException($"{path}: archive entry '{e.Name}' claims {e.Length:N0} bytes, far more than a CIFAR-10 batch");
                if (e.DataStream is null) throw new InvalidDataException($"{path}: archive entry '{e.Name}' has no data");
                var buf = new byte[e.Length];
                int read = e.DataStream.ReadAtLeast(buf, buf.Length, throwOnEndOfStream: false);
                if (read < buf.Length) throw new InvalidDataException($"{path}: archive entry '{e.Name}' is truncated ({read:N0} of {e.Length:N0} bytes)");
                files[name] = buf;
            }
        }
        catch (Exception e) when (e is InvalidDataException or EndOfStreamException or FormatException)
        {
            if (e.Message.StartsWith(path, StringComparison.Ordinal)) throw;
            throw new InvalidDataException($"{path}: not a readable tar archive ({e.Message})", e);
        }
        return files;
    }

    /// <summary>One batch of the binary version: records of a label byte and 3072 pixel bytes.</summary>
    public static CifarSplit Binary(byte[] bytes, string name)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        const int record = 1 + CifarSplit.ImageBytes;
        if (bytes.Length == 0 || bytes.Length % record != 0)
            throw new InvalidDataException($"{name}: {bytes.Length:N0} bytes is not a whole number of {record}-byte CIFAR-10 records (truncated or not a CIFAR-10 binary batch)");
        int n = bytes.Length / record;
        var labels = new byte[n];
        var pixels = new byte[(long)n * CifarSplit.ImageBytes];
        for (int i = 0; i < n; i++)
        {
            labels[i] = bytes[i * record];
            if (labels[i] > 9) throw new InvalidDataException($"{name}: record {i} has label {labels[i]}; CIFAR-10 labels are 0-9");
            Buffer.BlockCopy(bytes, i * record + 1, pixels, i * CifarSplit.ImageBytes, CifarSplit.ImageBytes);
        }
        return new CifarSplit(pixels, labels);
    }

    /// <summary>One batch of the python version: a pickled dict with "labels" and "data".</summary>
    public static CifarSplit Python(byte[] bytes, string name)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        var d = SafePickle.Load(bytes, name) as IDictionary<object, object?>
            ?? throw new InvalidDataException($"{name}: the pickle does not hold a dict (not a CIFAR-10 batch)");
        if (!d.TryGetValue("data", out var dataObj) || dataObj is not PickleArray data)
            throw new InvalidDataException($"{name}: no 'data' array (not a CIFAR-10 batch{(d.ContainsKey("fine_labels") ? "; this looks like CIFAR-100, which is not supported" : "")})");
        if (!d.TryGetValue("labels", out var labelsObj) || labelsObj is not List<object?> labelList)
            throw new InvalidDataException($"{name}: no 'labels' list (not a CIFAR-10 batch{(d.ContainsKey("fine_labels") ? "; this looks like CIFAR-100, which is not supported" : "")})");
        if (data.DType is not ("|u1" or "<u1" or ">u1" or "=u1") || data.Shape.Length != 2 || data.Shape[1] != CifarSplit.ImageBytes || data.Fortran)
            throw new InvalidDataException($"{name}: 'data' is a {data.DType} array of shape ({string.Join(", ", data.Shape)}){(data.Fortran ? " in Fortran order" : "")}; " +
                $"CIFAR-10 has uint8 rows of {CifarSplit.ImageBytes} in C order");
        if (data.Shape[0] != labelList.Count)
            throw new InvalidDataException($"{name}: {data.Shape[0]} images but {labelList.Count} labels");
        var labels = new byte[labelList.Count];
        for (int i = 0; i < labels.Length; i++)
        {
            if (labelList[i] is not long l || l < 0 || l > 9)
                throw new InvalidDataException($"{name}: label {i} is {labelList[i] ?? "None"}; CIFAR-10 labels are 0-9");
            labels[i] = (byte)l;
        }
        return new CifarSplit(data.Data, labels);
    }

    private static List<string> MetaNames(byte[] bytes, string name)
    {
        var d = SafePickle.Load(bytes, name) as IDictionary<object, object?>
            ?? throw new InvalidDataException($"{name}: the pickle does not hold a dict");
        if (!d.TryGetValue("label_names", out var v) || v is not List<object?> list)
            throw new InvalidDataException($"{name}: no 'label_names' list");
        return list.Select(x => x switch
        {
            string s => s,
            byte[] b => Encoding.UTF8.GetString(b),
            _ => throw new InvalidDataException($"{name}: a label name is not text"),
        }).ToList();
    }

    private static CifarSplit Concat(List<CifarSplit> parts)
    {
        var pixels = new byte[parts.Sum(p => (long)p.Pixels.Length)];
        var labels = new byte[parts.Sum(p => p.Labels.Length)];
        long po = 0;
        int lo = 0;
        foreach (var p in parts)
        {
            Buffer.BlockCopy(p.Pixels, 0, pixels, (int)po, p.Pixels.Length);
            Buffer.BlockCopy(p.Labels, 0, labels, lo, p.Labels.Length);
            po += p.Pixels.Length;
            lo += p.Labels.Length;
        }
        return new CifarSplit(pixels, labels);
    }
}
