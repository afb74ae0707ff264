// Checkpoints of a run directory, each ONE safetensors file `<name>.safetensors` holding the
// tensors and, in its header's __metadata__, the training state (CheckpointInfo as JSON under
// residual.checkpoint) and the SHA-256 of the tensor data (residual.data_sha256), next to any
// other string metadata the caller gives (the model's description, say). One file means one
// rename: Save writes a temp file, fsyncs it, renames it over the target and fsyncs the folder,
// so a kill or power cut at any moment leaves either the old checkpoint or the new one, both
// whole; there is no pair to tear. Saving `last` first renames the old `last` to `previous`, so
// the generation before it survives as well. Loading checks the header and the data digest:
// a damaged file is a CheckpointException naming it, and resuming a run directory takes the
// newest intact checkpoint (last, previous or best), saying which when it is not `last`.
// Tensor names: the model's state dict under its own (torchvision) names, the optimizer's state
// under "optimizer.<name>", the moving average of --model-ema under "model_ema.<name>" (plus
// model_ema.n_averaged), so the file also loads as plain weights elsewhere. Checkpoints of
// earlier versions (`<name>.safetensors` + `<name>.json`) still load, checked by the JSON's hash.
using System.Security.Cryptography;
using System.Text;
using ResidualEngine.IO;
using ResidualEngine.Models;
using ResidualEngine.Serialization;

namespace ResidualEngine.Training;

/// <summary>Serialises tensors to a stream; the default is SafeTensors.Write (tests inject failing ones).</summary>
public delegate void TensorWriter(Stream stream, IEnumerable<KeyValuePair<string, Tensor>> tensors, IReadOnlyDictionary<string, string>? metadata);

public sealed class CheckpointStore
{
    // The layout's names are defined once, in Weights (which must skip them when it loads a checkpoint as weights).
    /// <summary>Prefix of the optimizer's state (momentum buffers).</summary>
    public const string OptimizerPrefix = Weights.OptimizerPrefix;
    /// <summary>Prefix of the exponential moving average's tensors (--model-ema), as torchvision's checkpoint key "model_ema".</summary>
    public const string EmaPrefix = Weights.EmaPrefix;

    /// <summary>True for the model's own tensors (not optimizer state, not the moving average).</summary>
    public static bool IsModelKey(string key) => Weights.IsModelKey(key);

    /// <summary>The entries under <paramref name="prefix"/>, with the prefix taken off.</summary>
    public static Dictionary<string, Tensor> Section(IReadOnlyDictionary<string, Tensor> tensors, string prefix)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        return tensors.Where(kv => kv.Key.StartsWith(prefix, StringComparison.Ordinal))
            .ToDictionary(kv => kv.Key[prefix.Length..], kv => kv.Value, StringComparer.Ordinal);
    }

    public const string Last = "last";
    public const string Previous = "previous";
    public const string Best = "best";

    /// <summary>Metadata keys the store writes itself (callers' metadata may not use them).</summary>
    public const string InfoKey = "residual.checkpoint", DigestKey = "residual.data_sha256";

    private static readonly string Placeholder = new('0', 64);
    private readonly TensorWriter _writer;

    public CheckpointStore(string directory, TensorWriter? writer = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        Directory = directory;
        _writer = writer ?? SafeTensors.Write;
    }

    public string Directory { get; }

    public string TensorsPath(string name) => Path.Combine(Directory, name + ".safetensors");
    public bool Exists(string name) => File.Exists(TensorsPath(name));

    /// <summary>Checkpoint files present in the directory, newest role first (last, previous, best).</summary>
    public IEnumerable<string> Present() => new[] { Last, Previous, Best }.Where(Exists);

    /// <summary>
    /// Writes checkpoint <paramref name="name"/> as one file, atomically and durably (temp file,
    /// fsync, rename, folder fsync); on any failure, including a failed fsync, the previous file of
    /// that name is untouched and the error is thrown. Saving <see cref="Last"/> keeps the old one as <see cref="Previous"/>.
    /// </summary>
    public void Save(string name, IEnumerable<KeyValuePair<string, Tensor>> tensors, CheckpointInfo info, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        ArgumentNullException.ThrowIfNull(info);
        var meta = new Dictionary<string, string>(StringComparer.Ordinal);
        if (metadata is not null)
            foreach (var (k, v) in metadata)
            {
                if (k is InfoKey or DigestKey) throw new ArgumentException($"metadata key '{k}' is written by the checkpoint store itself", nameof(metadata));
                meta[k] = v;
            }
        info.SavedAt = DateTimeOffset.UtcNow;
        info.TensorsFile = null;
        info.TensorsBytes = 0;
        info.TensorsSha256 = null;
        meta[InfoKey] = info.ToJsonText();
        meta[DigestKey] = Placeholder;
        System.IO.Directory.CreateDirectory(Directory);
        AtomicFile.Write(TensorsPath(name), s =>
        {
            _writer(s, tensors, meta);
            s.Flush();
            WriteDigest(s);
        }, backup: name == Last ? TensorsPath(Previous) : null);
        // A description of an earlier version beside it would now describe other tensors.
        var legacy = Path.Combine(Directory, name + ".json");
        if (File.Exists(legacy)) File.Delete(legacy);
    }

    /// <summary>Copies checkpoint <paramref name="from"/> to <paramref name="to"/> (e.g. last -> best) after checking it, atomically.</summary>
    public void Copy(string from, string to)
    {
        LoadInfo(TensorsPath(from));
        AtomicFile.Copy(TensorsPath(from), TensorsPath(to));
    }

    /// <summary>
    /// Resolves what the user pointed at: a .safetensors (or older .json) file, or a run directory
    /// (its last checkpoint when <paramref name="preferBest"/> is false, else best, falling back to
    /// the others). Returns the safetensors path; it is not verified here.
    /// </summary>
    public static string Resolve(string pathOrRunDir, bool preferBest)
    {
        ArgumentException.ThrowIfNullOrEmpty(pathOrRunDir);
        if (System.IO.Directory.Exists(pathOrRunDir))
        {
            string[] order = preferBest ? [Best, Last, Previous] : [Last, Previous, Best];
            foreach (var n in order)
            {
                var p = Path.Combine(pathOrRunDir, n + ".safetensors");
                if (File.Exists(p)) return p;
            }
            throw new CheckpointException(NoCheckpoint(pathOrRunDir));
        }
        var path = pathOrRunDir.EndsWith(".json", StringComparison.OrdinalIgnoreCase)
            ? Path.ChangeExtension(pathOrRunDir, ".safetensors") : pathOrRunDir;
        if (path.Contains(AtomicFile.TempMarker, StringComparison.Ordinal))
            throw new CheckpointException($"'{pathOrRunDir}' is a temporary file of an interrupted save, not a checkpoint");
        if (!File.Exists(path)) throw new CheckpointException($"checkpoint '{pathOrRunDir}' does not exist");
        return path;
    }

    /// <summary>What to say about a run directory without a checkpoint (the run stopped before its first one).</summary>
    public static string NoCheckpoint(string runDir) =>
        $"no checkpoint in '{runDir}' (expected {Last}.safetensors, {Previous}.safetensors or {Best}.safetensors): " +
        $"the run stopped before saving its first one, so there is nothing to resume; start it again with --out {runDir}";

    /// <summary>
    /// The newest intact checkpoint of a run directory for resuming (by time saved; last wins a tie),
    /// and a note when it is not <see cref="Last"/> or when others were damaged. Throws
    /// CheckpointException when there is none, or none is intact (each file and its problem listed).
    /// </summary>
    public static (string Path, CheckpointInfo Info, string? Note) FindForResume(string runDir)
    {
        var store = new CheckpointStore(runDir);
        var present = store.Present().ToList();
        if (present.Count == 0) throw new CheckpointException(NoCheckpoint(runDir));
        var intact = new List<(string Name, CheckpointInfo Info)>();
        var damaged = new List<string>();
        foreach (var name in present)
        {
            try
            {
                var info = LoadInfo(store.TensorsPath(name));
                if (info is null) damaged.Add($"{name}.safetensors holds weights only, no training state");
                else intact.Add((name, info));
            }
            catch (Exception e) when (e is IOException or FormatException or UnauthorizedAccessException)
            {
                damaged.Add($"{name}.safetensors: {e.Message}");
            }
        }
        if (intact.Count == 0)
            throw new CheckpointException($"no intact checkpoint in '{runDir}': {string.Join("; ", damaged)}");
        var (chosen, chosenInfo) = intact.OrderByDescending(c => c.Info.SavedAt).ThenBy(c => Array.IndexOf([Last, Previous, Best], c.Name)).First();
        string? note = null;
        if (chosen != Last || damaged.Count > 0)
            note = (damaged.Count > 0 ? $"damaged: {string.Join("; ", damaged)}. " : "") +
                $"Resuming from {chosen}.safetensors (epoch {chosenInfo.Epoch}, step {chosenInfo.StepInEpoch}, global step {chosenInfo.GlobalStep}), the newest intact checkpoint";
        return (store.TensorsPath(chosen), chosenInfo, note);
    }

    /// <summary>The training state of a checkpoint, verified against its tensor data; null for plain weights.</summary>
    public static CheckpointInfo? LoadInfo(string tensorsPath)
    {
        SafeTensorsLayout layout;
        try { layout = SafeTensors.ReadLayout(tensorsPath); }
        catch (SafeTensorsFormatException e) { throw Damaged(tensorsPath, e.Message); }
        if (layout.Metadata.TryGetValue(InfoKey, out var json))
        {
            if (!layout.Metadata.TryGetValue(DigestKey, out var digest)) throw Damaged(tensorsPath, $"its header has {InfoKey} but no {DigestKey}");
            var actual = DataDigest(tensorsPath, layout.DataOffset);
            if (!string.Equals(actual, digest, StringComparison.OrdinalIgnoreCase))
                throw Damaged(tensorsPath, $"its tensor data do not match the digest in its header (sha256 {Short(actual)} instead of {Short(digest)})");
            return CheckpointInfo.FromJsonText(json, tensorsPath);
        }
        return LegacyInfo(tensorsPath);
    }

    /// <summary>Loads a verified checkpoint: its training state (if any) and its tensors on the CPU.</summary>
    public static (CheckpointInfo? Info, SafeTensorsFile Tensors) Load(string tensorsPath)
    {
        var info = LoadInfo(tensorsPath);
        try
        {
            return (info, SafeTensors.Load(tensorsPath));
        }
        catch (SafeTensorsFormatException e)
        {
            throw Damaged(tensorsPath, e.Message);
        }
    }

    private static CheckpointException Damaged(string path, string why) =>
        new($"checkpoint '{path}' is damaged: {why}");

    // The header was written with a placeholder digest of fixed length; the data follow it, so the
    // digest is computed from what reached the file and written over the placeholder.
    private static void WriteDigest(FileStream s)
    {
        s.Position = 0;
        Span<byte> size = stackalloc byte[8];
        s.ReadExactly(size);
        long n = (long)System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(size);
        if (n <= 0 || n > SafeTensors.MaxHeaderBytes || 8 + n > s.Length) throw new InvalidOperationException("the checkpoint writer did not write a safetensors header");
        var header = new byte[n];
        s.ReadExactly(header);
        var marker = Encoding.UTF8.GetBytes($"\"{DigestKey}\":\"{Placeholder}\"");
        int at = header.AsSpan().IndexOf(marker);
        if (at < 0 || header.AsSpan(at + 1).IndexOf(marker) >= 0)
            throw new InvalidOperationException("the checkpoint writer did not write the metadata it was given");
        var digest = DataDigest(s, 8 + n);
        s.Position = 8 + at + marker.Length - 1 - Placeholder.Length;
        s.Write(Encoding.ASCII.GetBytes(digest));
        s.Flush();
    }

    private static string DataDigest(string path, long offset)
    {
        using var f = SafeFile.OpenRead(path, "checkpoint", bufferSize: 1 << 20);
        return DataDigest(f, offset);
    }

    private static string DataDigest(Stream s, long offset)
    {
        s.Position = offset;
        return Convert.ToHexStringLower(SHA256.HashData(s));
    }

    private static string Short(string h) => h.Length > 12 ? h[..12] + "…" : h;

    // ---- checkpoints of earlier versions: <name>.safetensors + <name>.json ----

    private static CheckpointInfo? LegacyInfo(string tensorsPath)
    {
        var json = Path.ChangeExtension(tensorsPath, ".json");
        if (!File.Exists(json)) return null;
        var info = CheckpointInfo.FromJsonText(SafeFile.ReadAllText(json, "checkpoint description"), json);
        long len = new FileInfo(tensorsPath).Length;
        string sha = len == info.TensorsBytes ? HashFile(tensorsPath) : "";
        if (len != info.TensorsBytes || !string.Equals(sha, info.TensorsSha256, StringComparison.OrdinalIgnoreCase))
            throw Damaged(tensorsPath, $"'{json}' describes {info.TensorsBytes} bytes (sha256 {Short(info.TensorsSha256 ?? "")}) " +
                $"but the file has {len} bytes{(sha.Length > 0 ? $" (sha256 {Short(sha)})" : "")}; a save was interrupted between the two files");
        return info;
    }

    public static string HashFile(string path)
    {
        using var f = SafeFile.OpenRead(path, "checkpoint", bufferSize: 1 << 20);
        return Convert.ToHexStringLower(SHA256.HashData(f));
    }
}

/// <summary>A checkpoint that cannot be used: missing, damaged (torn, truncated, corrupt) or malformed.</summary>
public sealed class CheckpointException(string message) : IOException(message);
