// The one pickle interpreter of the engine; it executes nothing. Python's pickle is a small stack
// machine whose REDUCE calls any importable function, which is why unpickling an untrusted file
// runs code. This machine interprets the data-building opcodes of protocols 2 to 5 and builds
// plain values: None, bool, long, double, string, byte[], tuples (object?[]), lists
// (List<object?>) and dicts (PyDict, insertion-ordered, keys string or long). Everything that
// would touch Python objects — which globals may be named, what REDUCE, BUILD and persistent ids
// mean, a few optional opcodes — is decided by a PicklePolicy, which implements each allowed
// callable itself. Every other opcode is refused by name, and the machine caps its stack, memo and
// container sizes. Policies: TorchPicklePolicy (torch.save state dicts, TorchZipReader) and
// ResidualEngine.Data's SafePickle (numpy arrays in CIFAR batches).
using System.Buffers.Binary;
using System.Globalization;
using System.Numerics;
using System.Text;

namespace ResidualEngine.Serialization;

/// <summary>A module-level name the pickle referred to (only ones the policy allows get this far).</summary>
internal sealed record PyGlobal(string Module, string Name)
{
    public override string ToString() => $"{Module}.{Name}";
}

/// <summary>A Python dict (insertion-ordered, as Python's); keys are strings or integers. Attributes set by BUILD are kept apart.</summary>
internal sealed class PyDict : OrderedDictionary<object, object?>
{
    public Dictionary<string, object?> Attributes { get; } = new(StringComparer.Ordinal);
}

/// <summary>What one kind of file may contain: its globals and their meaning, and how errors read.</summary>
internal abstract class PicklePolicy
{
    /// <summary>What the files are, for "... does not need it" (e.g. "a PyTorch state dict").</summary>
    public abstract string Files { get; }

    /// <summary>The exception for a refused input; <paramref name="input"/> names it, <paramref name="at"/> is the byte offset.</summary>
    public abstract Exception Error(string input, string message, int at);

    /// <summary>Opcodes outside the binary core that these files use (protocol-0 text forms, BINPERSID, BYTEARRAY8).</summary>
    public virtual bool Accepts(byte op) => false;

    /// <summary>GLOBAL / STACK_GLOBAL: the allowed name, or an error from <see cref="PickleMachine.Error"/>.</summary>
    public abstract PyGlobal Global(PickleMachine m, string module, string name);

    /// <summary>REDUCE of an allowed global with a tuple of arguments.</summary>
    public abstract object? Reduce(PickleMachine m, PyGlobal f, object?[] args);

    /// <summary>BUILD: sets <paramref name="state"/> on the object on top of the stack.</summary>
    public virtual void Build(PickleMachine m, object? obj, object? state) =>
        throw m.Error($"BUILD of {PickleMachine.Describe(obj)} with {PickleMachine.Describe(state)} is not supported");

    /// <summary>BINPERSID (only reached when <see cref="Accepts"/> takes 'Q').</summary>
    public virtual object? PersistentLoad(PickleMachine m, object? pid) => throw m.Error("persistent ids are not supported");

    /// <summary>A Python 2 str (SHORT_BINSTRING, BINSTRING): Latin-1 text or raw bytes, as the files mean it.</summary>
    public virtual object ByteString(byte[] b) => b;

    /// <summary>A dict key as stored; strings and integers by default.</summary>
    public virtual object DictKey(PickleMachine m, object? key) =>
        key is string or long ? key : throw m.Error($"dict key {PickleMachine.Describe(key)} is not a string or integer");
}

internal sealed class PickleMachine
{
    public const int MaxStack = 1_000_000;
    public const int MaxMemo = 1_000_000;
    public const int MaxContainer = 10_000_000;

    private static readonly object s_mark = new();

    private readonly ReadOnlyMemory<byte> _data;
    private readonly string _input;
    private readonly PicklePolicy _policy;
    private int _pos;
    private readonly List<object?> _stack = new();
    private readonly List<int> _marks = new();
    private readonly Dictionary<long, object?> _memo = new();

    private PickleMachine(ReadOnlyMemory<byte> data, string input, PicklePolicy policy)
    {
        _data = data;
        _input = input;
        _policy = policy;
    }

    /// <summary>Interprets one pickle (up to its STOP) under <paramref name="policy"/>; <paramref name="input"/> names it in errors.</summary>
    public static object? Load(ReadOnlyMemory<byte> data, string input, PicklePolicy policy) => new PickleMachine(data, input, policy).Run();

    /// <summary>The policy's exception for <paramref name="message"/> at the current position.</summary>
    public Exception Error(string message) => _policy.Error(_input, message, _pos);

    private object? Run()
    {
        while (true)
        {
            if (_pos >= _data.Length) throw Error("the pickle ends without a STOP opcode (truncated)");
            byte op = _data.Span[_pos++];
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
                case (byte)')': Push(Array.Empty<object?>()); break;
                case (byte)'t': Push(PopToMark().ToArray()); break;
                case 0x85: Push(new[] { Pop() }); break;
                case 0x86: { var b = Pop(); var a = Pop(); Push(new[] { a, b }); break; }
                case 0x87: { var c = Pop(); var b = Pop(); var a = Pop(); Push(new[] { a, b, c }); break; }
                case (byte)'X': Push(Utf8(ReadLength(4))); break;
                case 0x8c: Push(Utf8(ReadByte())); break;
                case 0x8d: Push(Utf8(ReadLength(8))); break;
                case (byte)'U': Push(_policy.ByteString(ReadBytes(ReadByte()))); break;
                case (byte)'T': Push(_policy.ByteString(ReadBytes(ReadLength(4)))); break;
                case (byte)'C': Push(ReadBytes(ReadByte())); break;
                case (byte)'B': Push(ReadBytes(ReadLength(4))); break;
                case 0x8e: Push(ReadBytes(ReadLength(8))); break;
                case 0x96 when _policy.Accepts(op): Push(ReadBytes(ReadLength(8))); break; // BYTEARRAY8, as bytes
                case (byte)'J': Push((long)BinaryPrimitives.ReadInt32LittleEndian(ReadBytes(4))); break;
                case (byte)'K': Push((long)ReadByte()); break;
                case (byte)'M': Push((long)BinaryPrimitives.ReadUInt16LittleEndian(ReadBytes(2))); break;
                case 0x8a: Push(Long(ReadBytes(ReadByte()))); break;
                case 0x8b: Push(Long(ReadBytes(ReadLength(4)))); break;
                case (byte)'I' when _policy.Accepts(op): Push(TextInt(ReadLine())); break; // INT (text; 00/01 are booleans)
                case (byte)'G': Push(BinaryPrimitives.ReadDoubleBigEndian(ReadBytes(8))); break;
                case 0x88: Push(true); break;
                case 0x89: Push(false); break;
                case (byte)'N': Push(null); break;
                case (byte)'q': Memo(ReadByte()); break;
                case (byte)'r': Memo(BinaryPrimitives.ReadUInt32LittleEndian(ReadBytes(4))); break;
                case (byte)'p' when _policy.Accepts(op): Memo(MemoKey(ReadLine())); break; // PUT (text)
                case 0x94: Memo(_memo.Count); break;
                case (byte)'h': Push(Recall(ReadByte())); break;
                case (byte)'j': Push(Recall(BinaryPrimitives.ReadUInt32LittleEndian(ReadBytes(4)))); break;
                case (byte)'g' when _policy.Accepts(op): Push(Recall(MemoKey(ReadLine()))); break; // GET (text)
                case (byte)'0': Pop(); break;
                case (byte)'2': Push(Peek()); break;
                case (byte)'1': PopToMark(); break;
                case (byte)'c': { var module = ReadLine(); Push(_policy.Global(this, module, ReadLine())); break; }
                case 0x93:
                {
                    var name = Pop() as string;
                    var module = Pop() as string;
                    if (name is null || module is null) throw Error("STACK_GLOBAL needs two strings");
                    Push(_policy.Global(this, module, name));
                    break;
                }
                case (byte)'R':
                {
                    var args = Pop();
                    var f = Pop();
                    if (f is not PyGlobal g) throw Error($"REDUCE calls {Describe(f)}, which is not an allowed callable");
                    if (args is not object?[] a) throw Error($"REDUCE of {g} needs a tuple of arguments, got {Describe(args)}");
                    Push(_policy.Reduce(this, g, a));
                    break;
                }
                case (byte)'b': { var state = Pop(); _policy.Build(this, Peek(), state); break; }
                case (byte)'s': { var v = Pop(); var k = Pop(); SetItem(Peek(), k, v); break; }
                case (byte)'u': { var items = PopToMark(); SetItems(Peek(), items); break; }
                case (byte)'d' when _policy.Accepts(op): { var items = PopToMark(); var d = new PyDict(); SetItems(d, items); Push(d); break; } // DICT
                case (byte)'l' when _policy.Accepts(op): Push(PopToMark()); break; // LIST
                case (byte)'a': { var v = Pop(); Append(Peek(), v); break; }
                case (byte)'e': { var items = PopToMark(); foreach (var v in items) Append(Peek(), v); break; }
                case (byte)'Q' when _policy.Accepts(op): Push(_policy.PersistentLoad(this, Pop())); break;
                default:
                    throw Error($"pickle opcode {OpName(op)} is not supported: {_policy.Files} does not need it, and this reader runs no code");
            }
        }
    }

    private static string OpName(byte op) => op switch
    {
        (byte)'i' => "INST (0x69 'i', creates an instance of any class)",
        (byte)'o' => "OBJ (0x6f 'o', creates an instance of any class)",
        0x81 => "NEWOBJ (0x81, creates an instance of any class)",
        0x92 => "NEWOBJ_EX (0x92, creates an instance of any class)",
        (byte)'P' => "PERSID (0x50 'P', text persistent id)",
        (byte)'Q' => "BINPERSID (0x51 'Q', persistent id)",
        0x82 or 0x83 or 0x84 => $"EXT (0x{op:x2}, extension registry)",
        0x8f => "EMPTY_SET (0x8f)",
        0x90 => "ADDITEMS (0x90)",
        0x91 => "FROZENSET (0x91)",
        0x96 => "BYTEARRAY8 (0x96)",
        0x97 => "NEXT_BUFFER (0x97, out-of-band data)",
        0x98 => "READONLY_BUFFER (0x98)",
        (byte)'I' or (byte)'L' or (byte)'F' or (byte)'S' or (byte)'V' or (byte)'p' or (byte)'g' or (byte)'l' or (byte)'d' =>
            $"'{(char)op}' (0x{op:x2}, a text-mode protocol-0 opcode)",
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
        return _data.Span[_pos++];
    }

    private byte[] ReadBytes(long n)
    {
        if (n < 0 || n > _data.Length - _pos) throw Error($"truncated: a value claims {n} bytes but only {_data.Length - _pos} remain");
        var b = _data.Span.Slice(_pos, (int)n).ToArray();
        _pos += (int)n;
        return b;
    }

    private long ReadLength(int bytes)
    {
        var b = ReadBytes(bytes);
        ulong n = bytes == 4 ? BinaryPrimitives.ReadUInt32LittleEndian(b) : BinaryPrimitives.ReadUInt64LittleEndian(b);
        if (n > (ulong)(_data.Length - _pos)) throw Error($"truncated: a value claims {n} bytes but only {_data.Length - _pos} remain");
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
        int end = _data.Span[_pos..].IndexOf((byte)'\n');
        if (end < 0 || end > 256) throw Error("a text argument (GLOBAL's module or name, a text number) is not a short line");
        var s = Encoding.ASCII.GetString(_data.Span.Slice(_pos, end));
        _pos += end + 1;
        return s;
    }

    private object Long(byte[] le)
    {
        if (le.Length == 0) return 0L;
        if (le.Length > 8) throw Error($"an integer of {le.Length} bytes is too large for 64 bits");
        return (long)new BigInteger(le, isUnsigned: false, isBigEndian: false);
    }

    private object TextInt(string line) => line switch
    {
        "00" => false,
        "01" => true,
        _ => long.TryParse(line, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var v) ? v : throw Error($"bad INT '{line}'"),
    };

    private long MemoKey(string s) =>
        long.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out var k) ? k : throw Error($"bad memo key '{s}'");

    // ---- containers ----

    private void SetItems(object? target, List<object?> items)
    {
        if (items.Count % 2 != 0) throw Error("SETITEMS with an odd number of values");
        for (int i = 0; i < items.Count; i += 2) SetItem(target, items[i], items[i + 1]);
    }

    /// <summary>d[key] = value with the policy's key rule and the container cap.</summary>
    public void SetItem(object? target, object? key, object? value)
    {
        if (target is not PyDict d) throw Error($"SETITEM on {Describe(target)}, not a dict");
        var k = _policy.DictKey(this, key);
        if (d.Count >= MaxContainer && !d.ContainsKey(k)) throw Error($"a dict grows beyond {MaxContainer} entries");
        d[k] = value;
    }

    private void Append(object? target, object? value)
    {
        if (target is not List<object?> l) throw Error($"APPEND to {Describe(target)}, not a list");
        if (l.Count >= MaxContainer) throw Error($"a list grows beyond {MaxContainer} items");
        l.Add(value);
    }

    /// <summary>A short description of a value for messages; policy types describe themselves by ToString.</summary>
    public static string Describe(object? v) => v switch
    {
        null => "None",
        string s => $"'{(s.Length > 40 ? s[..40] + "…" : s)}'",
        long or double or bool => Convert.ToString(v, CultureInfo.InvariantCulture)!,
        byte[] b => $"bytes[{b.Length}]",
        object?[] t => $"a tuple of {t.Length}",
        List<object?> l => $"a list of {l.Count}",
        PyDict d => $"a dict of {d.Count}",
        _ => v.ToString() ?? v.GetType().Name,
    };
}
