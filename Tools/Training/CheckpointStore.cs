// Checkpoints as pairs `<name>.safetensors` + `<name>.json` in a run directory. Saving writes
// the tensors atomically (temp file, fsync, rename), measuring their size and SHA-256 on the way
// out, and only then the JSON, which records that size and hash. Loading checks the pair: a
// crash between the two renames leaves a JSON that does not describe the tensors beside it,
// and that is reported rather than silently mixing two epochs. Temp files are never read.
// Tensor names: the model's state dict under its own (torchvision) names, the optimizer's
// state under "optimizer.<name>", so the file also loads as plain weights elsewhere.
using System.Security.Cryptography;
using ResidualEngine.Serialization;

namespace ResidualEngine.Training;

/// <summary>Serialises tensors to a stream; the default is SafeTensors.Write (tests inject failing writers).</summary>
public delegate void TensorWriter(Stream stream, IEnumerable<KeyValuePair<string, Tensor>> tensors, IReadOnlyDictionary<string, string>? metadata);

public sealed class CheckpointStore
{
    public const string OptimizerPrefix = "optimizer.";
    public const string Last = "last";
    public const string Best = "best";

    private readonly TensorWriter _writer;

    public CheckpointStore(string directory, TensorWriter? writer = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        Directory = directory;
        _writer = writer ?? SafeTensors.Write;
    }

    public string Directory { get; }

    public string TensorsPath(string name) => Path.Combine(Directory, name + ".safetensors");
    public string InfoPath(string name) => Path.Combine(Directory, name + ".json");
    public bool Exists(string name) => File.Exists(TensorsPath(name)) && File.Exists(InfoPath(name));

    /// <summary>Writes a checkpoint pair; on failure the previous pair of that name is untouched.</summary>
    public void Save(string name, IEnumerable<KeyValuePair<string, Tensor>> tensors, CheckpointInfo info, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        ArgumentNullException.ThrowIfNull(info);
        System.IO.Directory.CreateDirectory(Directory);
        long bytes = 0;
        string sha = "";
        AtomicFile.Write(TensorsPath(name), s =>
        {
            _writer(s, tensors, metadata);
            // Hash what actually reached the file (the writer may seek), read back from the cache.
            s.Flush();
            bytes = s.Length;
            s.Position = 0;
            sha = Convert.ToHexStringLower(SHA256.HashData(s));
        });
        info.TensorsFile = name + ".safetensors";
        info.TensorsBytes = bytes;
        info.TensorsSha256 = sha;
        info.SavedAt = DateTimeOffset.UtcNow;
        AtomicFile.WriteAllText(InfoPath(name), info.ToJsonText());
    }

    /// <summary>Copies one checkpoint pair to another name (e.g. last -> best), each file atomically.</summary>
    public void Copy(string from, string to)
    {
        var info = ReadInfo(InfoPath(from));
        Verify(TensorsPath(from), info, InfoPath(from));
        AtomicFile.Copy(TensorsPath(from), TensorsPath(to));
        info.TensorsFile = to + ".safetensors";
        AtomicFile.WriteAllText(InfoPath(to), info.ToJsonText());
    }

    /// <summary>
    /// Resolves what the user pointed at: a .safetensors or .json file, or a run directory (its
    /// last checkpoint when <paramref name="preferBest"/> is false, else best, falling back to the other).
    /// Returns the safetensors path.
    /// </summary>
    public static string Resolve(string pathOrRunDir, bool preferBest)
    {
        ArgumentException.ThrowIfNullOrEmpty(pathOrRunDir);
        if (System.IO.Directory.Exists(pathOrRunDir))
        {
            string[] order = preferBest ? [Best, Last] : [Last, Best];
            foreach (var n in order)
            {
                var p = Path.Combine(pathOrRunDir, n + ".safetensors");
                if (File.Exists(p)) return p;
            }
            throw new CheckpointException($"no checkpoint in '{pathOrRunDir}' (expected {Last}.safetensors or {Best}.safetensors)");
        }
        var path = pathOrRunDir.EndsWith(".json", StringComparison.OrdinalIgnoreCase)
            ? Path.ChangeExtension(pathOrRunDir, ".safetensors") : pathOrRunDir;
        if (path.Contains(AtomicFile.TempMarker, StringComparison.Ordinal))
            throw new CheckpointException($"'{pathOrRunDir}' is a temporary file of an interrupted save, not a checkpoint");
        if (!File.Exists(path)) throw new CheckpointException($"checkpoint '{pathOrRunDir}' does not exist");
        return path;
    }

    /// <summary>The JSON beside a safetensors file, verified against it; null when there is none (bare weights).</summary>
    public static CheckpointInfo? LoadInfo(string tensorsPath)
    {
        var json = Path.ChangeExtension(tensorsPath, ".json");
        if (!File.Exists(json)) return null;
        var info = ReadInfo(json);
        Verify(tensorsPath, info, json);
        return info;
    }

    /// <summary>Loads a verified checkpoint: its description (if any) and its tensors on the CPU.</summary>
    public static (CheckpointInfo? Info, SafeTensorsFile Tensors) Load(string tensorsPath)
    {
        var info = LoadInfo(tensorsPath);
        return (info, SafeTensors.Load(tensorsPath));
    }

    private static CheckpointInfo ReadInfo(string jsonPath)
    {
        if (!File.Exists(jsonPath)) throw new CheckpointException($"checkpoint description '{jsonPath}' does not exist");
        return CheckpointInfo.FromJsonText(File.ReadAllText(jsonPath), jsonPath);
    }

    private static void Verify(string tensorsPath, CheckpointInfo info, string jsonPath)
    {
        if (!File.Exists(tensorsPath)) throw new CheckpointException($"checkpoint tensors '{tensorsPath}' do not exist (description: '{jsonPath}')");
        long len = new FileInfo(tensorsPath).Length;
        string sha = len == info.TensorsBytes ? HashFile(tensorsPath) : "";
        if (len != info.TensorsBytes || !string.Equals(sha, info.TensorsSha256, StringComparison.OrdinalIgnoreCase))
            throw new CheckpointException(
                $"checkpoint pair does not match: '{jsonPath}' describes {info.TensorsBytes} bytes (sha256 {Short(info.TensorsSha256)}) " +
                $"but '{tensorsPath}' has {len} bytes{(sha.Length > 0 ? $" (sha256 {Short(sha)})" : "")}; a save was interrupted between the two files. " +
                "Use the other checkpoint of the run (best/last).");
    }

    private static string Short(string h) => h.Length > 12 ? h[..12] + "…" : h;

    public static string HashFile(string path)
    {
        using var f = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
        return Convert.ToHexStringLower(SHA256.HashData(f));
    }
}
