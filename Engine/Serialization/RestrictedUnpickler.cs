// A pickle reader that executes nothing. Python's pickle is a small stack machine whose REDUCE
// calls any importable function, which is why loading an untrusted .pth with pickle runs code.
// This one interprets the opcodes that torch.save's state dicts use (protocols 2 to 5), builds
// plain values (None, bool, int, float, str, bytes, tuple, list, dict), and "calls" only an
// allow-list of globals, each of which it implements itself: collections.OrderedDict and
// torch._utils' tensor rebuilders, which produce a TorchTensorRef description (no data is read
// here). Storage types (torch.FloatStorage, ...) may only appear inside persistent ids. Every
// other global, opcode or construct is rejected with a message naming it, and the machine has
// caps on its input size, stack, memo and container sizes. Used by TorchZipReader.
using System.Buffers.Binary;
using System.Numerics;
using System.Text;

namespace ResidualEngine.Serialization;

/// <summary>A file in PyTorch's format that is malformed, hostile or uses something we do not read; the message names it.</summary>
public sealed class TorchFormatException(string message) : FormatException(message);

/// <summary>A Python tuple (immutable, positional).</summary>
internal sealed record PyTuple(object?[] Items);

/// <summary>A module-level name the pickle referred to (only allow-listed ones get this far).</summary>
internal sealed record PyGlobal(string Module, string Name)
{
    public override string ToString() => $"{Module}.{Name}";
}

/// <summary>A Python dict (insertion-ordered, as Python's); keys are strings or integers. Attributes set by BUILD are kept apart.</summary>
internal sealed class PyDict
{
    public OrderedDictionary<object, object?> Items { get; } = new();
    public Dictionary<string, object?> Attributes { get; } = new(StringComparer.Ordinal);
}

/// <summary>A storage named by a persistent id: ('storage', torch.XStorage, key, location, numel).</summary>
internal sealed record TorchStorageRef(string Key, DType DType, string StorageType, long Numel, string Location);

/// <summary>A tensor as torch._utils._rebuild_tensor_v2 describes it: a view (offset, sizes, strides) of a storage.</summary>
internal sealed record TorchTensorRef(TorchStorageRef Storage, long Offset, long[] Size, long[] Stride);

internal sealed class RestrictedUnpickler
{
    public const int MaxStack = 1_000_000;
    public const int MaxMemo = 1_000_000;
    public const int MaxContainer = 10_000_000;
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

    private static readonly object s_mark = new();

    private readonly byte[] _data;
    private readonly string _what;
    private int _pos;
    private readonly List<object?> _stack = new();
    private readonly List<int> _marks = new();
    private readonly Dictionary<long, object?> _memo = new();

    private RestrictedUnpickler(byte[] data, string what)
    {
        _data = data;
        _what = what;
    }

    /// <summary>Interprets one pickle and returns the value it builds. <paramref name="what"/> names the input in errors.</summary>
    public static object? Load(byte[] data, string what)
    {
        ArgumentNullException.ThrowIfNull(data);
        return new RestrictedUnpickler(data, what).Run();
    }

    private TorchFormatException Error(string message) => new($"{_what}: {message} (at byte {_pos} of the pickle)");

    private object? Run()
    {
        while (true)
        {
            if (_pos >= _data.Length) throw Error("the pickle ends without a STOP opcode (truncated)");
            byte op = _data[_pos++];
            switch (op)
            {
                case 0x80: // PROTO
                    int proto = ReadByte();
                    if (proto > 5) throw Error($"pickle protocol {proto} is newer than 5");
                    break;
                case 0x95: ReadBytes(8); break; // FRAME: a length hint only
                case (byte)'.': // STOP
                    if (_stack.Count != 1 || _marks.Count != 0) throw Error($"STOP with {_stack.Count} values on the stack (expected 1)");
                    return _stack[0];
                case (byte)'(': _marks.Add(_stack.Count); Push(s_mark); break;
                case (byte)'}': Push(new PyDict()); break;
                case (byte)']': Push(new List<object?>()); break;
                case (byte)')': Push(new PyTuple([])); break;
                case (byte)'t': Push(new PyTuple(PopToMark().ToArray())); break;
                case 0x85: Push(new PyTuple([Pop()])); break;
                case 0x86: { var b = Pop(); var a = Pop(); Push(new PyTuple([a, b])); break; }
                case 0x87: { var c = Pop(); var b = Pop(); var a = Pop(); Push(new PyTuple([a, b, c])); break; }
                case (byte)'X': Push(Utf8(ReadLength(4))); break;
                case 0x8c: Push(Utf8(ReadByte())); break;
                case 0x8d: Push(Utf8(ReadLength(8))); break;
                case (byte)'U': Push(Encoding.Latin1.GetString(ReadBytes(ReadByte()))); break;
                case (byte)'T': Push(Encoding.Latin1.GetString(ReadBytes(ReadLength(4)))); break;
                case (byte)'C': Push(ReadBytes(ReadByte())); break;
                case (byte)'B': Push(ReadBytes(ReadLength(4))); break;
                case 0x8e: Push(ReadBytes(ReadLength(8))); break;
                case (byte)'J': Push((long)BinaryPrimitives.ReadInt32LittleEndian(ReadBytes(4))); break;
                case (byte)'K': Push((long)ReadByte()); break;
                case (byte)'M': Push((long)BinaryPrimitives.ReadUInt16LittleEndian(ReadBytes(2))); break;
                case 0x8a: Push(Long(ReadBytes(ReadByte()))); break;
                case 0x8b: Push(Long(ReadBytes(ReadLength(4)))); break;
                case (byte)'G': Push(BinaryPrimitives.ReadDoubleBigEndian(ReadBytes(8))); break;
                case 0x88: Push(true); break;
                case 0x89: Push(false); break;
                case (byte)'N': Push(null); break;
                case (byte)'q': Memo(ReadByte()); break;
                case (byte)'r': Memo(BinaryPrimitives.ReadUInt32LittleEndian(ReadBytes(4))); break;
                case 0x94: Memo(_memo.Count); break;
                case (byte)'h': Push(Recall(ReadByte())); break;
                case (byte)'j': Push(Recall(BinaryPrimitives.ReadUInt32LittleEndian(ReadBytes(4)))); break;
                case (byte)'0': Pop(); break;
                case (byte)'2': Push(Peek()); break;
                case (byte)'1': PopToMark(); break;
                case (byte)'c': Push(Global(ReadLine(), ReadLine())); break;
                case 0x93:
                {
                    var name = Pop() as string;
                    var module = Pop() as string;
                    if (name is null || module is null) throw Error("STACK_GLOBAL needs two strings");
                    Push(Global(module, name));
                    break;
                }
                case (byte)'R': { var args = Pop(); var f = Pop(); Push(Call(f, args)); break; }
                case (byte)'b': { var state = Pop(); Build(Peek(), state); break; }
                case (byte)'s': { var v = Pop(); var k = Pop(); SetItem(Peek(), k, v); break; }
                case (byte)'u':
                {
                    var items = PopToMark();
                    if (items.Count % 2 != 0) throw Error("SETITEMS with an odd number of values");
                    var d = Peek();
                    for (int i = 0; i < items.Count; i += 2) SetItem(d, items[i], items[i + 1]);
                    break;
                }
                case (byte)'a': { var v = Pop(); Append(Peek(), v); break; }
                case (byte)'e': { var items = PopToMark(); foreach (var v in items) Append(Peek(), v); break; }
                case (byte)'Q': Push(PersistentLoad(Pop())); break;
                default:
                    throw Error($"pickle opcode {OpName(op)} is not supported: a PyTorch state dict does not need it, and this reader runs no code");
            }
        }
    }

    private static string OpName(byte op) => op switch
    {
        (byte)'i' => "INST ('i', creates an instance of any class)",
        (byte)'o' => "OBJ ('o', creates an instance of any class)",
        0x81 => "NEWOBJ (0x81, creates an instance of any class)",
        0x92 => "NEWOBJ_EX (0x92, creates an instance of any class)",
        (byte)'P' => "PERSID ('P', text persistent id)",
        0x82 or 0x83 or 0x84 => $"EXT (0x{op:x2}, extension registry)",
        0x8f => "EMPTY_SET (0x8f)",
        0x90 => "ADDITEMS (0x90)",
        0x91 => "FROZENSET (0x91)",
        0x96 => "BYTEARRAY8 (0x96)",
        0x97 => "NEXT_BUFFER (0x97, out-of-band data)",
        0x98 => "READONLY_BUFFER (0x98)",
        (byte)'I' or (byte)'L' or (byte)'F' or (byte)'S' or (byte)'V' or (byte)'p' or (byte)'g' or (byte)'l' or (byte)'d' =>
            $"'{(char)op}' (a text-mode protocol-0 opcode)",
        _ => $"0x{op:x2}",
    };

    // ---- the stack ----

    private void Push(object? v)
    {
        if (_stack.Count >= MaxStack) throw Error($"the stack grows beyond {MaxStack} values");
        _stack.Add(v);
    }

    private object? Pop()
    {
        if (_stack.Count == 0 || (_marks.Count > 0 && _stack.Count <= _marks[^1] + 1 && ReferenceEquals(_stack[^1], s_mark)))
            throw Error("an opcode pops from an empty stack (or across a MARK)");
        var v = _stack[^1];
        _stack.RemoveAt(_stack.Count - 1);
        return v;
    }

    private object? Peek()
    {
        if (_stack.Count == 0 || ReferenceEquals(_stack[^1], s_mark)) throw Error("an opcode needs a value on the stack");
        return _stack[^1];
    }

    private List<object?> PopToMark()
    {
        if (_marks.Count == 0) throw Error("an opcode needs a MARK that is not there");
        int m = _marks[^1];
        _marks.RemoveAt(_marks.Count - 1);
        var items = _stack.GetRange(m + 1, _stack.Count - m - 1);
        _stack.RemoveRange(m, _stack.Count - m);
        return items;
    }

    private void Memo(long index)
    {
        if (_memo.Count >= MaxMemo && !_memo.ContainsKey(index)) throw Error($"the memo grows beyond {MaxMemo} entries");
        _memo[index] = Peek();
    }

    private object? Recall(long index) =>
        _memo.TryGetValue(index, out var v) ? v : throw Error($"memo entry {index} is read before it is written");

    // ---- reading ----

    private int ReadByte()
    {
        if (_pos >= _data.Length) throw Error("the pickle is truncated");
        return _data[_pos++];
    }

    private byte[] ReadBytes(long n)
    {
        if (n < 0 || n > _data.Length - _pos) throw Error($"a value claims {n} bytes but only {_data.Length - _pos} remain");
        var b = _data.AsSpan(_pos, (int)n).ToArray();
        _pos += (int)n;
        return b;
    }

    private long ReadLength(int bytes)
    {
        var b = ReadBytes(bytes);
        ulong n = bytes == 4 ? BinaryPrimitives.ReadUInt32LittleEndian(b) : BinaryPrimitives.ReadUInt64LittleEndian(b);
        if (n > (ulong)(_data.Length - _pos)) throw Error($"a value claims {n} bytes but only {_data.Length - _pos} remain");
        return (long)n;
    }

    private string Utf8(long n)
    {
        var b = ReadBytes(n);
        try
        {
            return new UTF8Encoding(false, true).GetString(b);
        }
        catch (DecoderFallbackException)
        {
            throw Error("a string is not valid UTF-8");
        }
    }

    private string ReadLine()
    {
        int end = Array.IndexOf(_data, (byte)'\n', _pos);
        if (end < 0 || end - _pos > 256) throw Error("GLOBAL's module or name is not a short line");
        var s = Encoding.ASCII.GetString(_data, _pos, end - _pos);
        _pos = end + 1;
        return s;
    }

    private object Long(byte[] le)
    {
        if (le.Length == 0) return 0L;
        if (le.Length > 8) throw Error($"an integer of {le.Length} bytes is too large");
        var v = new BigInteger(le, isUnsigned: false, isBigEndian: false);
        return (long)v;
    }

    // ---- objects ----

    private PyGlobal Global(string module, string name)
    {
        var full = $"{module}.{name}";
        if (module == "torch" && s_storageTypes.ContainsKey(name)) return new PyGlobal(module, name);
        if (s_callables.Contains(full)) return new PyGlobal(module, name);
        if (module == "torch" && name.EndsWith("Storage", StringComparison.Ordinal))
            throw Error($"storage type '{full}' is not supported (supported: {string.Join(", ", s_storageTypes.Keys.Select(k => "torch." + k))})");
        throw Error($"pickle global '{full}' is not allowed: only tensors in (Ordered)dicts are read " +
            $"(allowed: {string.Join(", ", s_callables)} and torch storage types); this reader never imports or runs code");
    }

    private object? Call(object? f, object? args)
    {
        if (f is not PyGlobal g || !s_callables.Contains(g.ToString()))
            throw Error($"REDUCE calls {Describe(f)}, which is not an allowed callable");
        if (args is not PyTuple t) throw Error($"REDUCE of {g} needs a tuple of arguments, got {Describe(args)}");
        var a = t.Items;
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
                        if (p is not PyTuple { Items.Length: 2 } kv) throw Error("OrderedDict's argument must be a list of (key, value) pairs");
                        SetItem(d, kv.Items[0], kv.Items[1]);
                    }
                    return d;
                }
                throw Error($"OrderedDict called with {a.Length} arguments");
            }
            case "torch._utils._rebuild_tensor_v2":
            case "torch._utils._rebuild_tensor":
                if (a.Length < 4) throw Error($"{g} needs (storage, offset, size, stride, ...), got {a.Length} arguments");
                if (a.Length > 4 && a[4] is not bool) throw Error($"{g}: requires_grad must be a bool");
                if (a.Length > 5 && !(a[5] is PyDict { Items.Count: 0 }))
                    throw Error($"{g}: tensors with backward hooks are not supported");
                if (a.Length > 7) throw Error($"{g}: {a.Length} arguments (at most 7 expected)");
                return Tensor(a[0], a[1], a[2], a[3], g.ToString());
            case "torch._utils._rebuild_parameter":
            case "torch._utils._rebuild_parameter_with_state":
                if (a.Length < 3 || a[0] is not TorchTensorRef data) throw Error($"{g} needs (tensor, requires_grad, hooks, ...)");
                if (!(a[2] is PyDict { Items.Count: 0 })) throw Error($"{g}: parameters with backward hooks are not supported");
                return data;
            default:
                throw Error($"REDUCE of {g} is not supported");
        }
    }

    private TorchTensorRef Tensor(object? storage, object? offset, object? size, object? stride, string who)
    {
        if (storage is not TorchStorageRef s) throw Error($"{who}: the first argument must be a storage, got {Describe(storage)}");
        if (offset is not long off || off < 0) throw Error($"{who}: the storage offset must be a non-negative integer, got {Describe(offset)}");
        var sz = Longs(size, who, "size");
        var st = Longs(stride, who, "stride");
        if (sz.Length != st.Length) throw Error($"{who}: size has {sz.Length} dimensions but stride has {st.Length}");
        if (sz.Length > MaxRank) throw Error($"{who}: {sz.Length} dimensions (at most {MaxRank})");
        return new TorchTensorRef(s, off, sz, st);
    }

    private long[] Longs(object? v, string who, string what)
    {
        if (v is not PyTuple t) throw Error($"{who}: {what} must be a tuple, got {Describe(v)}");
        var r = new long[t.Items.Length];
        for (int i = 0; i < r.Length; i++)
        {
            if (t.Items[i] is not long x || x < 0) throw Error($"{who}: {what}[{i}] must be a non-negative integer, got {Describe(t.Items[i])}");
            r[i] = x;
        }
        return r;
    }

    private TorchStorageRef PersistentLoad(object? pid)
    {
        if (pid is not PyTuple { Items.Length: 5 } t || t.Items[0] is not "storage")
            throw Error($"persistent id {Describe(pid)} is not a storage reference ('storage', type, key, location, numel)");
        if (t.Items[1] is not PyGlobal { Module: "torch" } type || !s_storageTypes.TryGetValue(type.Name, out var dtype))
            throw Error($"storage of type {Describe(t.Items[1])} is not supported");
        if (t.Items[2] is not string key || key.Length == 0 || key.Length > 64 || !key.All(c => char.IsAsciiLetterOrDigit(c) || c == '_'))
            throw Error($"storage key {Describe(t.Items[2])} is not a plain name");
        if (t.Items[3] is not string location) throw Error($"storage location {Describe(t.Items[3])} is not a string");
        if (t.Items[4] is not long numel || numel < 0) throw Error($"storage size {Describe(t.Items[4])} is not a non-negative integer");
        return new TorchStorageRef(key, dtype, "torch." + type.Name, numel, location);
    }

    private void Build(object? obj, object? state)
    {
        // OrderedDict's state is its instance __dict__ (a state dict's `_metadata` with per-module versions): kept aside.
        if (obj is PyDict d && state is PyDict s)
        {
            foreach (var (k, v) in s.Items)
                if (k is string name) d.Attributes[name] = v;
            return;
        }
        throw Error($"BUILD of {Describe(obj)} with {Describe(state)} is not supported");
    }

    private void SetItem(object? target, object? key, object? value)
    {
        if (target is not PyDict d) throw Error($"SETITEM on {Describe(target)}, not a dict");
        if (key is not (string or long)) throw Error($"dict key {Describe(key)} is not a string or integer");
        if (d.Items.Count >= MaxContainer && !d.Items.ContainsKey(key)) throw Error($"a dict grows beyond {MaxContainer} entries");
        d.Items[key] = value;
    }

    private void Append(object? target, object? value)
    {
        if (target is not List<object?> l) throw Error($"APPEND to {Describe(target)}, not a list");
        if (l.Count >= MaxContainer) throw Error($"a list grows beyond {MaxContainer} items");
        l.Add(value);
    }

    internal static string Describe(object? v) => v switch
    {
        null => "None",
        string s => $"'{(s.Length > 40 ? s[..40] + "…" : s)}'",
        long or double or bool => Convert.ToString(v, System.Globalization.CultureInfo.InvariantCulture)!,
        byte[] b => $"bytes[{b.Length}]",
        PyTuple t => $"a tuple of {t.Items.Length}",
        List<object?> l => $"a list of {l.Count}",
        PyDict d => $"a dict of {d.Items.Count}",
        PyGlobal g => g.ToString(),
        TorchTensorRef => "a tensor",
        TorchStorageRef s => $"a {s.StorageType}",
        _ => v.GetType().Name,
    };
}
