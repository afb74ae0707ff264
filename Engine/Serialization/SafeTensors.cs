// safetensors read/write. STUB: API fixed; implementation to come.
// Format: 8-byte little-endian header length, JSON header {name: {dtype, shape, data_offsets}, "__metadata__": {...}}, data.
namespace ResidualEngine.Serialization;

public static class SafeTensors
{
    /// <summary>Writes tensors (any device; copied to the host) in the given order, with optional string metadata.</summary>
    public static void Write(Stream stream, IEnumerable<KeyValuePair<string, Tensor>> tensors, IReadOnlyDictionary<string, string>? metadata = null) =>
        throw new NotImplementedException();

    /// <summary>Writes to a file (not atomically: checkpoints add temp-file + fsync + rename on top).</summary>
    public static void Save(string path, IEnumerable<KeyValuePair<string, Tensor>> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        using var f = File.Create(path);
        Write(f, tensors, metadata);
    }

    /// <summary>Reads every tensor onto the CPU. Hostile or damaged input raises SafeTensorsFormatException.</summary>
    public static SafeTensorsFile Read(Stream stream) => throw new NotImplementedException();

    public static SafeTensorsFile Load(string path)
    {
        using var f = File.OpenRead(path);
        return Read(f);
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

/// <summary>A safetensors file that is malformed, truncated or hostile; the message says what is wrong.</summary>
public sealed class SafeTensorsFormatException(string message) : FormatException(message);
