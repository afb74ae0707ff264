// A data-only reader for the Python pickles that hold CIFAR: it understands the opcodes of
// protocols 0-5 that build plain values (dicts, lists, tuples, numbers, strings, bytes) plus
// exactly four callables, which it never calls but interprets as data: numpy's ndarray
// reconstruction (_reconstruct + BUILD, or _frombuffer), numpy.dtype, and _codecs.encode (how a
// Python 3 pickle of protocol 2 spells bytes). Any other global, or an opcode outside that set,
// is refused with a message naming it: a pickle is a program, and this reader runs none of it.
// Values: byte strings (Python 2 str, bytes) are byte[], text is string, integers long, floats
// double, lists List<object?>, tuples object?[], dicts Dictionary<object, object?> keyed by string
// (byte-string keys are decoded as Latin-1) or long, arrays PickleArray.
using System.Buffers.Binary;
using System.Globalization;
using System.Numerics;
using System.Text;

namespace ResidualEngine.Data.Import;

/// <summary>A numpy array read from a pickle: shape, dtype string (e.g. "u1", "&lt;i8") and raw bytes in C order.</summary>
public sealed class PickleArray
{
    public int[] Shape { get; internal set; } = [];
    public string DType { get; internal set; } = "";
    public bool Fortran { get; internal set; }
    public byte[] Data { get; internal set; } = [];
    public long Elements => Shape.Aggregate(1L, (a, b) => a * b);
}

public static class SafePickle
{
    private sealed record Global(string Module, string Name)
    {
        public override string ToString() => $"{Module}.{Name}";
    }

    private sealed class DType(string code)
    {
        public string Code { get; } = code;
        public char Order { get; set; } = '|';
    }

    private sealed class Mark;

    private static readonly Mark s_mark = new();
    private static readonly HashSet<string> s_numpyCore = ["numpy.core.multiarray", "numpy._core.multiarray"];
    private static readonly HashSet<string> s_numpyNumeric = ["numpy.core.numeric", "numpy._core.numeric"];

    private const int MaxStack = 1 << 20;

    /// <summary>Parses a whole pickle (up to its STOP) and returns the object it builds.</summary>
    public static object? Load(ReadOnlySpan<byte> bytes, string name)
    {
        var stack = new List<object?>();
        var memo = new Dictionary<long, object?>();
        int pos = 0;
        while (true)
        {
            if (pos >= bytes.Length) throw Error(name, pos, "the pickle ends before its STOP opcode (truncated file?)");
            int at = pos;
            byte op = bytes[pos++];
            switch (op)
            {
                case 0x80: Need(bytes, pos, 1, name); pos++; break;                         // PROTO
                case 0x95: Need(bytes, pos, 8, name); pos += 8; break;                      // FRAME (framing only)
                case (byte)'.':                                                             // STOP
                    if (stack.Count != 1) throw Error(name, at, $"STOP with {stack.Count} values on the stack");
                    return stack[0] is Mark ? throw Error(name, at, "STOP on a mark") : stack[0];
                case (byte)'(': Push(stack, s_mark, name, at); break;                       // MARK
                case (byte)'}': Push(stack, new Dictionary<object, object?>(), name, at); break;
                case (byte)']': Push(stack, new List<object?>(), name, at); break;
                case (byte)')': Push(stack, Array.Empty<object?>(), name, at); break;
                case (byte)'t': Push(stack, PopToMark(stack, name, at).ToArray(), name, at); break;
                case 0x85: Push(stack, new[] { Pop(stack, name, at) }, name, at); break;
                case 0x86: { var b = Pop(stack, name, at); var a = Pop(stack, name, at); Push(stack, new[] { a, b }, name, at); break; }
                case 0x87: { var c = Pop(stack, name, at); var b = Pop(stack, name, at); var a = Pop(stack, name, at); Push(stack, new[] { a, b, c }, name, at); break; }
                case (byte)'l': Push(stack, PopToMark(stack, name, at), name, at); break;   // LIST
                case (byte)'d':                                                             // DICT
                {
                    var items = PopToMark(stack, name, at);
                    var d = new Dictionary<object, object?>();
                    SetItems(d, items, name, at);
                    Push(stack, d, name, at);
                    break;
                }
                case (byte)'a': { var v = Pop(stack, name, at); ListAt(stack, name, at).Add(v); break; }      // APPEND
                case (byte)'e': { var vs = PopToMark(stack, name, at); ListAt(stack, name, at).AddRange(vs); break; } // APPENDS
                case (byte)'s':                                                             // SETITEM
                {
                    var v = Pop(stack, name, at);
                    var k = Pop(stack, name, at);
                    SetItems(DictAt(stack, name, at), [k, v], name, at);
                    break;
                }
                case (byte)'u': { var kv = PopToMark(stack, name, at); SetItems(DictAt(stack, name, at), kv, name, at); break; } // SETITEMS
                case (byte)'J': Need(bytes, pos, 4, name); Push(stack, (long)BinaryPrimitives.ReadInt32LittleEndian(bytes[pos..]), name, at); pos += 4; break;
                case (byte)'K': Need(bytes, pos, 1, name); Push(stack, (long)bytes[pos], name, at); pos += 1; break;
                case (byte)'M': Need(bytes, pos, 2, name); Push(stack, (long)BinaryPrimitives.ReadUInt16LittleEndian(bytes[pos..]), name, at); pos += 2; break;
                case 0x8A:                                                                  // LONG1
                {
                    Need(bytes, pos, 1, name);
                    int n = bytes[pos++];
                    Need(bytes, pos, n, name);
                    var v = new BigInteger(bytes.Slice(pos, n), isUnsigned: false, isBigEndian: false);
                    pos += n;
                    if (v < long.MinValue || v > long.MaxValue) throw Error(name, at, "an integer too large for 64 bits");
                    Push(stack, (long)v, name, at);
                    break;
                }
                case (byte)'I':                                                             // INT (text; 00/01 are booleans)
                {
                    var line = Line(bytes, ref pos, name);
                    Push(stack, line switch
                    {
                        "00" => false,
                        "01" => true,
                        _ => long.TryParse(line, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var v) ? v : throw Error(name, at, $"bad INT '{line}'"),
                    }, name, at);
                    break;
                }
                case (byte)'N': Push(stack, null, name, at); break;
                case 0x88: Push(stack, true, name, at); break;
                case 0x89: Push(stack, false, name, at); break;
                case (byte)'G': Need(bytes, pos, 8, name); Push(stack, BinaryPrimitives.ReadDoubleBigEndian(bytes[pos..]), name, at); pos += 8; break;
                case (byte)'U': { int n = Len1(bytes, ref pos, name); Push(stack, bytes.Slice(pos, n).ToArray(), name, at); pos += n; break; }  // SHORT_BINSTRING
                case (byte)'T': { int n = Len4(bytes, ref pos, name, at); Push(stack, bytes.Slice(pos, n).ToArray(), name, at); pos += n; break; } // BINSTRING
                case (byte)'C': { int n = Len1(bytes, ref pos, name); Push(stack, bytes.Slice(pos, n).ToArray(), name, at); pos += n; break; }  // SHORT_BINBYTES
                case (byte)'B': { int n = Len4(bytes, ref pos, name, at); Push(stack, bytes.Slice(pos, n).ToArray(), name, at); pos += n; break; } // BINBYTES
                case 0x8E: case 0x96: { int n = Len8(bytes, ref pos, name, at); Push(stack, bytes.Slice(pos, n).ToArray(), name, at); pos += n; break; } // BINBYTES8, BYTEARRAY8
                case 0x8C: { int n = Len1(bytes, ref pos, name); Push(stack, Utf8(bytes.Slice(pos, n), name, at), name, at); pos += n; break; }   // SHORT_BINUNICODE
                case (byte)'X': { int n = Len4(bytes, ref pos, name, at); Push(stack, Utf8(bytes.Slice(pos, n), name, at), name, at); pos += n; break; } // BINUNICODE
                case 0x8D: { int n = Len8(bytes, ref pos, name, at); Push(stack, Utf8(bytes.Slice(pos, n), name, at), name, at); pos += n; break; } // BINUNICODE8
                case (byte)'q': Need(bytes, pos, 1, name); memo[bytes[pos++]] = Top(stack, name, at); break;                                    // BINPUT
                case (byte)'r': Need(bytes, pos, 4, name); memo[BinaryPrimitives.ReadUInt32LittleEndian(bytes[pos..])] = Top(stack, name, at); pos += 4; break;
                case (byte)'p': memo[MemoKey(Line(bytes, ref pos, name), name, at)] = Top(stack, name, at); break;                             // PUT
                case 0x94: memo[memo.Count] = Top(stack, name, at); break;                                                                      // MEMOIZE
                case (byte)'h': Need(bytes, pos, 1, name); Push(stack, Get(memo, bytes[pos++], name, at), name, at); break;                     // BINGET
                case (byte)'j': Need(bytes, pos, 4, name); Push(stack, Get(memo, BinaryPrimitives.ReadUInt32LittleEndian(bytes[pos..]), name, at), name, at); pos += 4; break;
                case (byte)'g': Push(stack, Get(memo, MemoKey(Line(bytes, ref pos, name), name, at), name, at), name, at); break;
                case (byte)'c':                                                             // GLOBAL
                {
                    var module = Line(bytes, ref pos, name);
                    var fn = Line(bytes, ref pos, name);
                    Push(stack, Allow(module, fn, name, at), name, at);
                    break;
                }
                case 0x93:                                                                  // STACK_GLOBAL
                {
                    var fn = Pop(stack, name, at) as string ?? throw Error(name, at, "STACK_GLOBAL needs text names");
                    var module = Pop(stack, name, at) as string ?? throw Error(name, at, "STACK_GLOBAL needs text names");
                    Push(stack, Allow(module, fn, name, at), name, at);
                    break;
                }
                case (byte)'R':                                                             // REDUCE
                {
                    var args = Pop(stack, name, at) as object?[] ?? throw Error(name, at, "REDUCE needs an argument tuple");
                    var fn = Pop(stack, name, at) as Global ?? throw Error(name, at, "REDUCE of something that is not an allowed global");
                    Push(stack, Reduce(fn, args, name, at), name, at);
                    break;
                }
                case (byte)'b':                                                             // BUILD
                {
                    var state = Pop(stack, name, at);
                    Build(Top(stack, name, at), state, name, at);
                    break;
                }
                case (byte)'0': Pop(stack, name, at); break;                                // POP
                case (byte)'1': PopToMark(stack, name, at); break;                          // POP_MARK
                case (byte)'2': Push(stack, Top(stack, name, at), name, at); break;         // DUP
                default:
                    throw Error(name, at, $"opcode 0x{op:X2} ('{(op is >= 32 and < 127 ? (char)op : '?')}') is not one a CIFAR data file uses; refusing to interpret it");
            }
        }
    }

    private static InvalidDataException Error(string name, int offset, string what) =>
        new($"{name}: not a CIFAR data pickle: {what} (at byte {offset})");

    private static void Need(ReadOnlySpan<byte> b, int pos, long n, string name)
    {
        if (n < 0 || pos + n > b.Length) throw Error(name, pos, $"truncated: {n} more bytes needed, {b.Length - pos} left");
    }

    private static int Len1(ReadOnlySpan<byte> b, ref int pos, string name)
    {
        Need(b, pos, 1, name);
        int n = b[pos++];
        Need(b, pos, n, name);
        return n;
    }

    private static int Len4(ReadOnlySpan<byte> b, ref int pos, string name, int at)
    {
        Need(b, pos, 4, name);
        long n = BinaryPrimitives.ReadInt32LittleEndian(b[pos..]);
        if (n < 0) throw Error(name, at, $"negative length {n}");
        pos += 4;
        Need(b, pos, n, name);
        return (int)n;
    }

    private static int Len8(ReadOnlySpan<byte> b, ref int pos, string name, int at)
    {
        Need(b, pos, 8, name);
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(b[pos..]);
        pos += 8;
        if (n > (ulong)(b.Length - pos)) throw Error(name, at, $"length {n} runs past the end of the file");
        return (int)n;
    }

    private static string Line(ReadOnlySpan<byte> b, ref int pos, string name)
    {
        int end = b[pos..].IndexOf((byte)'\n');
        if (end < 0 || end > 256) throw Error(name, pos, "a text argument without its end of line");
        var s = Encoding.ASCII.GetString(b.Slice(pos, end));
        pos += end + 1;
        return s;
    }

    private static string Utf8(ReadOnlySpan<byte> b, string name, int at)
    {
        try { return new UTF8Encoding(false, true).GetString(b); }
        catch (DecoderFallbackException) { throw Error(name, at, "text that is not UTF-8"); }
    }

    private static long MemoKey(string s, string name, int at) =>
        long.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out var k) ? k : throw Error(name, at, $"bad memo key '{s}'");

    private static object? Get(Dictionary<long, object?> memo, long key, string name, int at) =>
        memo.TryGetValue(key, out var v) ? v : throw Error(name, at, $"memo entry {key} was never stored");

    private static void Push(List<object?> stack, object? v, string name, int at)
    {
        if (stack.Count >= MaxStack) throw Error(name, at, "stack deeper than any data file needs");
        stack.Add(v);
    }

    private static object? Pop(List<object?> stack, string name, int at)
    {
        var v = Top(stack, name, at);
        if (v is Mark) throw Error(name, at, "a value was expected but found a mark");
        stack.RemoveAt(stack.Count - 1);
        return v;
    }

    private static object? Top(List<object?> stack, string name, int at) =>
        stack.Count > 0 ? stack[^1] : throw Error(name, at, "stack underflow");

    private static List<object?> PopToMark(List<object?> stack, string name, int at)
    {
        int m = stack.FindLastIndex(v => v is Mark);
        if (m < 0) throw Error(name, at, "no mark to pop to");
        var items = stack.GetRange(m + 1, stack.Count - m - 1);
        stack.RemoveRange(m, stack.Count - m);
        return items;
    }

    private static List<object?> ListAt(List<object?> stack, string name, int at) =>
        Top(stack, name, at) as List<object?> ?? throw Error(name, at, "APPEND to something that is not a list");

    private static Dictionary<object, object?> DictAt(List<object?> stack, string name, int at) =>
        Top(stack, name, at) as Dictionary<object, object?> ?? throw Error(name, at, "SETITEM on something that is not a dict");

    private static void SetItems(Dictionary<object, object?> d, List<object?> kv, string name, int at)
    {
        if (kv.Count % 2 != 0) throw Error(name, at, "odd number of dict items");
        for (int i = 0; i < kv.Count; i += 2)
            d[kv[i] switch
            {
                string s => s,
                byte[] b => Encoding.Latin1.GetString(b),
                long l => l,
                _ => throw Error(name, at, $"dict key of type {kv[i]?.GetType().Name ?? "None"}"),
            }] = kv[i + 1];
    }

    private static Global Allow(string module, string fn, string name, int at)
    {
        bool ok = (s_numpyCore.Contains(module) && fn == "_reconstruct")
            || (s_numpyNumeric.Contains(module) && fn == "_frombuffer")
            || (module == "numpy" && fn is "ndarray" or "dtype")
            || (module == "_codecs" && fn == "encode");
        if (!ok) throw Error(name, at, $"it refers to {module}.{fn}, which a CIFAR file never does (a pickle can run code; this reader only reads data)");
        return new Global(module, fn);
    }

    private static object Reduce(Global fn, object?[] args, string name, int at)
    {
        switch (fn.Name)
        {
            case "_reconstruct":
                if (args.Length != 3 || args[0] is not Global { Name: "ndarray" })
                    throw Error(name, at, "numpy _reconstruct with unexpected arguments");
                return new PickleArray();
            case "dtype":
                if (args.Length < 1 || args[0] is not (string or byte[])) throw Error(name, at, "numpy.dtype without a type code");
                return new DType(args[0] is string s ? s : Encoding.ASCII.GetString((byte[])args[0]!));
            case "encode":
                if (args is not [string text, string enc] || enc is not ("latin1" or "latin-1"))
                    throw Error(name, at, "_codecs.encode other than (text, 'latin1')");
                if (text.Any(c => c > 0xFF)) throw Error(name, at, "_codecs.encode of text outside Latin-1");
                return Encoding.Latin1.GetBytes(text);
            case "_frombuffer":
                if (args is not [byte[] buf, DType dt, object?[] shape, string order])
                    throw Error(name, at, "numpy _frombuffer with unexpected arguments");
                var a = new PickleArray { Shape = Shape(shape, name, at), DType = dt.Order + dt.Code, Fortran = order == "F", Data = buf };
                CheckSize(a, name, at);
                return a;
            default:
                throw Error(name, at, $"call of {fn}");
        }
    }

    private static void Build(object? target, object? state, string name, int at)
    {
        switch (target)
        {
            case DType dt:
                // (version, byte order, subarray, names, fields, elsize, alignment, flags)
                if (state is not object?[] { Length: >= 2 } st) throw Error(name, at, "numpy dtype state is not a tuple");
                var order = st[1] is string s ? s : st[1] is byte[] b ? Encoding.ASCII.GetString(b) : throw Error(name, at, "numpy dtype without byte order");
                if (order.Length != 1 || order[0] is not ('|' or '<' or '>' or '=')) throw Error(name, at, $"numpy dtype byte order '{order}'");
                if (st.Length > 3 && st[3] is not null) throw Error(name, at, "structured numpy dtypes are not CIFAR data");
                dt.Order = order[0];
                break;
            case PickleArray a:
                // (version, shape, dtype, is_fortran, raw data)
                if (state is not object?[] { Length: 5 } t || t[2] is not DType d || t[3] is not bool f)
                    throw Error(name, at, "numpy array state is not (version, shape, dtype, fortran, data)");
                a.Shape = Shape(t[1] as object?[] ?? throw Error(name, at, "numpy array shape is not a tuple"), name, at);
                a.DType = d.Order + d.Code;
                a.Fortran = f;
                a.Data = t[4] switch
                {
                    byte[] raw => raw,
                    string text when text.All(c => c <= 0xFF) => Encoding.Latin1.GetBytes(text),
                    _ => throw Error(name, at, "numpy array of Python objects (not raw numbers) is not CIFAR data"),
                };
                CheckSize(a, name, at);
                break;
            default:
                throw Error(name, at, $"BUILD on a {target?.GetType().Name ?? "None"}");
        }
    }

    private static int[] Shape(object?[] t, string name, int at) =>
        t.Select(v => v is long l && l >= 0 && l <= int.MaxValue ? (int)l : throw Error(name, at, "numpy shape entries must be non-negative integers")).ToArray();

    private static void CheckSize(PickleArray a, string name, int at)
    {
        int size = a.DType.Length > 1 && int.TryParse(a.DType.AsSpan(2), NumberStyles.None, CultureInfo.InvariantCulture, out var s) ? s : 0;
        if (size <= 0) throw Error(name, at, $"numpy dtype '{a.DType}' has no element size");
        if (a.Elements * size != a.Data.LongLength)
            throw Error(name, at, $"numpy array of shape ({string.Join(", ", a.Shape)}) and dtype {a.DType} needs {a.Elements * size} bytes, the pickle holds {a.Data.LongLength}");
    }
}
