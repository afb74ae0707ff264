// Parsing and validation of a safetensors JSON header. Nothing the header says is trusted:
// types of every field, known dtypes, integer and non-negative dimensions, dtype x shape byte
// counts in checked arithmetic, data offsets that tile the buffer exactly (no overlaps, no gaps,
// nothing outside it), unique names (System.Text.Json keeps duplicate properties, so we check),
// and string-only metadata. Every failure is a SafeTensorsFormatException naming the tensor.
using System.Text.Json;
using System.Text.Unicode;

namespace ResidualEngine.Serialization;

internal sealed record SafeTensorsEntry(string Name, DType DType, Shape Shape, long Begin, long End);

internal sealed class SafeTensorsHeader
{
    private SafeTensorsHeader(List<SafeTensorsEntry> entries, Dictionary<string, string> metadata, long bufferBytes)
    {
        Entries = entries;
        Metadata = metadata;
        BufferBytes = bufferBytes;
    }

    /// <summary>Tensors in header order.</summary>
    public List<SafeTensorsEntry> Entries { get; }
    public Dictionary<string, string> Metadata { get; }
    /// <summary>Size of the data buffer the offsets describe.</summary>
    public long BufferBytes { get; }

    private static readonly JsonDocumentOptions s_options = new()
    {
        AllowTrailingCommas = false,
        CommentHandling = JsonCommentHandling.Disallow,
        MaxDepth = 16,
    };

    /// <param name="json">The header bytes (UTF-8 JSON, possibly space-padded).</param>
    /// <param name="bufferBytes">Bytes after the header when the file size is known; null for a non-seekable stream.</param>
    public static SafeTensorsHeader Parse(byte[] json, long? bufferBytes)
    {
        // The JSON reader checks UTF-8 only partly (names are decoded lazily), so check it all first.
        if (!Utf8.IsValid(json))
            throw Fail("header is not valid UTF-8");
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json, s_options);
        }
        catch (JsonException e)
        {
            throw Fail($"header is not valid JSON ({e.Message})");
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw Fail($"header must be a JSON object, not {doc.RootElement.ValueKind}");
            var entries = new List<SafeTensorsEntry>();
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var prop in doc.RootElement.EnumerateObject())
            {
                if (seen.Count >= SafeTensors.MaxEntries)
                    throw Fail($"header has more than {SafeTensors.MaxEntries:N0} entries (tensors and '__metadata__'), the limit");
                if (!seen.Add(prop.Name))
                    throw Fail(prop.Name == "__metadata__" ? "'__metadata__' appears twice" : $"tensor '{prop.Name}' appears twice in the header");
                if (prop.Name == "__metadata__") ReadMetadata(prop.Value, metadata);
                else entries.Add(ReadEntry(prop.Name, prop.Value));
            }
            long buffer = CheckOffsets(entries, bufferBytes);
            return new SafeTensorsHeader(entries, metadata, buffer);
        }
    }

    private static void ReadMetadata(JsonElement e, Dictionary<string, string> metadata)
    {
        if (e.ValueKind != JsonValueKind.Object)
            throw Fail($"'__metadata__' must be an object of strings, not {e.ValueKind}");
        foreach (var p in e.EnumerateObject())
        {
            if (metadata.Count >= SafeTensors.MaxEntries)
                throw Fail($"'__metadata__' has more than {SafeTensors.MaxEntries:N0} keys, the limit");
            if (p.Value.ValueKind != JsonValueKind.String)
                throw Fail($"metadata value for key '{p.Name}' must be a string, not {p.Value.ValueKind}");
            if (!metadata.TryAdd(p.Name, p.Value.GetString()!))
                throw Fail($"metadata key '{p.Name}' appears twice");
        }
    }

    private static SafeTensorsEntry ReadEntry(string name, JsonElement e)
    {
        if (e.ValueKind != JsonValueKind.Object)
            throw Fail($"entry for tensor '{name}' must be an object with dtype, shape and data_offsets, not {e.ValueKind}");
        JsonElement? dtypeEl = null, shapeEl = null, offsetsEl = null;
        foreach (var p in e.EnumerateObject())
        {
            switch (p.Name)
            {
                case "dtype": SetOnce(ref dtypeEl, p, name); break;
                case "shape": SetOnce(ref shapeEl, p, name); break;
                case "data_offsets": SetOnce(ref offsetsEl, p, name); break;
                default: break; // unknown fields are tolerated, as other readers do
            }
        }
        if (dtypeEl is null) throw Fail($"tensor '{name}' has no 'dtype'");
        if (shapeEl is null) throw Fail($"tensor '{name}' has no 'shape'");
        if (offsetsEl is null) throw Fail($"tensor '{name}' has no 'data_offsets'");

        if (dtypeEl.Value.ValueKind != JsonValueKind.String)
            throw Fail($"tensor '{name}': 'dtype' must be a string, not {dtypeEl.Value.ValueKind}");
        var dtypeName = dtypeEl.Value.GetString()!;
        var dtype = ParseDType(dtypeName) ?? throw Fail($"tensor '{name}': unknown or unsupported dtype '{dtypeName}' (supported: F64, F32, F16, BF16, I64, I32, U8)");

        var dims = ReadIntArray(shapeEl.Value, name, "shape", "dimension");
        if (dims.Count > Shape.MaxRank)
            throw Fail($"tensor '{name}': rank {dims.Count} exceeds the maximum rank {Shape.MaxRank}");
        long bytes = dtype.Size();
        foreach (var d in dims)
        {
            try { bytes = checked(bytes * d); }
            catch (OverflowException)
            {
                throw Fail($"tensor '{name}': shape [{string.Join(", ", dims)}] of {dtypeName} overflows a 64-bit byte count");
            }
        }

        var offsets = ReadIntArray(offsetsEl.Value, name, "data_offsets", "offset");
        if (offsets.Count != 2)
            throw Fail($"tensor '{name}': 'data_offsets' must be [begin, end], got {offsets.Count} values");
        long begin = offsets[0], end = offsets[1];
        if (begin > end)
            throw Fail($"tensor '{name}': data_offsets [{begin}, {end}] has begin after end");
        if (end - begin != bytes)
            throw Fail($"tensor '{name}': data_offsets [{begin}, {end}] hold {end - begin} bytes but dtype {dtypeName} x shape [{string.Join(", ", dims)}] needs {bytes}");

        Shape shape;
        try { shape = Shape.FromLongs(dims); }
        catch (ArgumentException ex) { throw Fail($"tensor '{name}': invalid shape [{string.Join(", ", dims)}] ({ex.Message})"); }
        return new SafeTensorsEntry(name, dtype, shape, begin, end);
    }

    private static void SetOnce(ref JsonElement? slot, JsonProperty p, string name)
    {
        if (slot is not null) throw Fail($"tensor '{name}': field '{p.Name}' appears twice");
        slot = p.Value;
    }

    /// <summary>An array of non-negative integers (no fractions, no exponents that leave the long range).</summary>
    private static List<long> ReadIntArray(JsonElement e, string name, string field, string what)
    {
        if (e.ValueKind != JsonValueKind.Array)
            throw Fail($"tensor '{name}': '{field}' must be an array of integers, not {e.ValueKind}");
        var r = new List<long>();
        foreach (var v in e.EnumerateArray())
        {
            if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt64(out long x))
                throw Fail($"tensor '{name}': {what} {r.Count} of '{field}' is not an integer ({v.GetRawText()})");
            if (x < 0)
                throw Fail($"tensor '{name}': {what} {r.Count} of '{field}' is negative ({x})");
            r.Add(x);
            if (r.Count > 64) throw Fail($"tensor '{name}': '{field}' has too many values");
        }
        return r;
    }

    private static DType? ParseDType(string s) => s switch
    {
        "F64" => DType.F64,
        "F32" => DType.F32,
        "F16" => DType.F16,
        "BF16" => DType.BF16,
        "I64" => DType.I64,
        "I32" => DType.I32,
        "U8" => DType.U8,
        _ => null,
    };

    /// <summary>The ranges, sorted, must start at 0, follow each other with no gap or overlap, and end at the buffer's end.</summary>
    private static long CheckOffsets(List<SafeTensorsEntry> entries, long? bufferBytes)
    {
        var sorted = entries.OrderBy(e => e.Begin).ThenBy(e => e.End).ToList();
        long pos = 0;
        SafeTensorsEntry? prev = null;
        foreach (var e in sorted)
        {
            if (bufferBytes is long b && e.End > b)
                throw Fail($"tensor '{e.Name}': data_offsets [{e.Begin}, {e.End}] reach beyond the data buffer ({b} bytes; the file is too short)");
            if (e.Begin < pos)
                throw Fail($"tensor '{e.Name}': data_offsets [{e.Begin}, {e.End}] overlap tensor '{prev!.Name}' [{prev.Begin}, {prev.End}]");
            if (e.Begin > pos)
                throw Fail($"tensor '{e.Name}': data_offsets [{e.Begin}, {e.End}] leave a gap of {e.Begin - pos} bytes after {(prev is null ? "the start of the buffer" : $"tensor '{prev.Name}'")}");
            pos = e.End;
            prev = e;
        }
        if (bufferBytes is long total && pos != total)
            throw Fail($"the data offsets cover {pos} bytes but the buffer after the header holds {total}: {total - pos} trailing bytes belong to no tensor");
        return pos;
    }

    private static SafeTensorsFormatException Fail(string what) => new($"safetensors: {what}");
}
