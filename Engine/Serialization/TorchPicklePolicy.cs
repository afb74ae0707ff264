// The torch.save policy of the pickle machine (PickleMachine): the globals a PyTorch state dict
// needs, each implemented here, never imported. collections.OrderedDict builds a dict and
// torch._utils' tensor rebuilders produce a TorchTensorRef description (no data is read here).
// Storage types (torch.FloatStorage, ...) may only appear inside persistent ids (BINPERSID).
// Every other global is rejected with a message naming it. Used by TorchZipReader.
using System.Text;

namespace ResidualEngine.Serialization;

/// <summary>A file in PyTorch's format that is malformed, hostile or uses something we do not read; the message names it.</summary>
public sealed class TorchFormatException(string message) : FormatException(message);

/// <summary>A storage named by a persistent id: ('storage', torch.XStorage, key, location, numel).</summary>
internal sealed record TorchStorageRef(string Key, DType DType, string StorageType, long Numel, string Location)
{
    public override string ToString() => $"a {StorageType}";
}

/// <summary>A tensor as torch._utils._rebuild_tensor_v2 describes it: a view (offset, sizes, strides) of a storage.</summary>
internal sealed record TorchTensorRef(TorchStorageRef Storage, long Offset, long[] Size, long[] Stride)
{
    public override string ToString() => "a tensor";
}

internal sealed class TorchPicklePolicy : PicklePolicy
{
    public const int MaxRank = 16;

    private static readonly Dictionary<string, DType> s_storageTypes = new(StringComparer.Ordinal)
    {
        ["FloatStorage"] = DType.F32,
        ["DoubleStorage"] = DType.F64,
        ["HalfStorage"] = DType.F16,
        ["BFloat16Storage"] = DType.BF16,
        ["LongStorage"] = DType.I64,
        ["IntStorage"] = DType.I32,
        ["ByteStorage"] = DType.U8,
    };

    private static readonly HashSet<string> s_callables = new(StringComparer.Ordinal)
    {
        "collections.OrderedDict",
        "torch._utils._rebuild_tensor_v2",
        "torch._utils._rebuild_tensor",
        "torch._utils._rebuild_parameter",
        "torch._utils._rebuild_parameter_with_state",
    };

    private static readonly TorchPicklePolicy s_policy = new();

    /// <summary>Interprets one pickle and returns the value it builds. <paramref name="what"/> names the input in errors.</summary>
    public static object? Load(byte[] data, string what)
    {
        ArgumentNullException.ThrowIfNull(data);
        return PickleMachine.Load(data, what, s_policy);
    }

    public override string Files => "a PyTorch state dict";

    public override Exception Error(string input, string message, int at) => new TorchFormatException($"{input}: {message} (at byte {at} of the pickle)");

    public override bool Accepts(byte op) => op == (byte)'Q';

    // A Python 2 str in a state dict is text.
    public override object ByteString(byte[] b) => Encoding.Latin1.GetString(b);

    public override PyGlobal Global(PickleMachine m, string module, string name)
    {
        var full = $"{module}.{name}";
        if (module == "torch" && s_storageTypes.ContainsKey(name)) return new PyGlobal(module, name);
        if (s_callables.Contains(full)) return new PyGlobal(module, name);
        if (module == "torch" && name.EndsWith("Storage", StringComparison.Ordinal))
            throw m.Error($"storage type '{full}' is not supported (supported: {string.Join(", ", s_storageTypes.Keys.Select(k => "torch." + k))})");
        throw m.Error($"pickle global '{full}' is not allowed: only tensors in (Ordered)dicts are read " +
            $"(allowed: {string.Join(", ", s_callables)} and torch storage types); this reader never imports or runs code");
    }

    public override object? Reduce(PickleMachine m, PyGlobal g, object?[] a)
    {
        if (!s_callables.Contains(g.ToString())) throw m.Error($"REDUCE calls {g}, which is not an allowed callable");
        switch (g.ToString())
        {
            case "collections.OrderedDict":
            {
                var d = new PyDict();
                if (a.Length == 0) return d;
                if (a.Length == 1 && a[0] is List<object?> pairs)
                {
                    foreach (var p in pairs)
                    {
                        if (p is not object?[] { Length: 2 } kv) throw m.Error("OrderedDict's argument must be a list of (key, value) pairs");
                        m.SetItem(d, kv[0], kv[1]);
                    }
                    return d;
                }
                throw m.Error($"OrderedDict called with {a.Length} arguments");
            }
            case "torch._utils._rebuild_tensor_v2":
            case "torch._utils._rebuild_tensor":
                if (a.Length < 4) throw m.Error($"{g} needs (storage, offset, size, stride, ...), got {a.Length} arguments");
                if (a.Length > 4 && a[4] is not bool) throw m.Error($"{g}: requires_grad must be a bool");
                if (a.Length > 5 && !(a[5] is PyDict { Count: 0 }))
                    throw m.Error($"{g}: tensors with backward hooks are not supported");
                if (a.Length > 7) throw m.Error($"{g}: {a.Length} arguments (at most 7 expected)");
                return Tensor(m, a[0], a[1], a[2], a[3], g.ToString());
            case "torch._utils._rebuild_parameter":
            case "torch._utils._rebuild_parameter_with_state":
                if (a.Length < 3 || a[0] is not TorchTensorRef data) throw m.Error($"{g} needs (tensor, requires_grad, hooks, ...)");
                if (!(a[2] is PyDict { Count: 0 })) throw m.Error($"{g}: parameters with backward hooks are not supported");
                return data;
            default:
                throw m.Error($"REDUCE of {g} is not supported");
        }
    }

    private static TorchTensorRef Tensor(PickleMachine m, object? storage, object? offset, object? size, object? stride, string who)
    {
        if (storage is not TorchStorageRef s) throw m.Error($"{who}: the first argument must be a storage, got {Describe(storage)}");
        if (offset is not long off || off < 0) throw m.Error($"{who}: the storage offset must be a non-negative integer, got {Describe(offset)}");
        var sz = Longs(m, size, who, "size");
        var st = Longs(m, stride, who, "stride");
        if (sz.Length != st.Length) throw m.Error($"{who}: size has {sz.Length} dimensions but stride has {st.Length}");
        if (sz.Length > MaxRank) throw m.Error($"{who}: {sz.Length} dimensions (at most {MaxRank})");
        return new TorchTensorRef(s, off, sz, st);
    }

    private static long[] Longs(PickleMachine m, object? v, string who, string what)
    {
        if (v is not object?[] t) throw m.Error($"{who}: {what} must be a tuple, got {Describe(v)}");
        var r = new long[t.Length];
        for (int i = 0; i < r.Length; i++)
        {
            if (t[i] is not long x || x < 0) throw m.Error($"{who}: {what}[{i}] must be a non-negative integer, got {Describe(t[i])}");
            r[i] = x;
        }
        return r;
    }

    public override object? PersistentLoad(PickleMachine m, object? pid)
    {
        if (pid is not object?[] { Length: 5 } t || t[0] is not "storage")
            throw m.Error($"persistent id {Describe(pid)} is not a storage reference ('storage', type, key, location, numel)");
        if (t[1] is not PyGlobal { Module: "torch" } type || !s_storageTypes.TryGetValue(type.Name, out var dtype))
            throw m.Error($"storage of type {Describe(t[1])} is not supported");
        if (t[2] is not string key || key.Length == 0 || key.Length > 64 || !key.All(c => char.IsAsciiLetterOrDigit(c) || c == '_'))
            throw m.Error($"storage key {Describe(t[2])} is not a plain name");
        if (t[3] is not string location) throw m.Error($"storage location {Describe(t[3])} is not a string");
        if (t[4] is not long numel || numel < 0) throw m.Error($"storage size {Describe(t[4])} is not a non-negative integer");
        return new TorchStorageRef(key, dtype, "torch." + type.Name, numel, location);
    }

    public override void Build(PickleMachine m, object? obj, object? state)
    {
        // OrderedDict's state is its instance __dict__ (a state dict's `_metadata` with per-module versions): kept aside.
        if (obj is PyDict d && state is PyDict s)
        {
            foreach (var (k, v) in s)
                if (k is string name) d.Attributes[name] = v;
            return;
        }
        base.Build(m, obj, state);
    }

    private static string Describe(object? v) => PickleMachine.Describe(v);
}
