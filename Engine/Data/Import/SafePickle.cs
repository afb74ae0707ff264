// The numpy policy of the engine's pickle machine (ResidualEngine.Serialization.PickleMachine),
// for the Python pickles that hold CIFAR. Besides plain values it allows exactly four callables,
// which it never calls but interprets as data: numpy's ndarray reconstruction (_reconstruct +
// BUILD, or _frombuffer), numpy.dtype, and _codecs.encode (how a Python 3 pickle of protocol 2
// spells bytes); and the protocol-0 text opcodes (INT, PUT, GET, LIST, DICT) and BYTEARRAY8 that
// old data pickles use. Any other global or opcode is refused with a message naming it: a pickle
// is a program, and this reader runs none of it.
// Values: byte strings (Python 2 str, bytes) are byte[], text is string, integers long, floats
// double, lists List<object?>, tuples object?[], dicts IDictionary<object, object?> (insertion-
// ordered) keyed by string (byte-string keys are decoded as Latin-1) or long, arrays PickleArray.
using System.Globalization;
using System.Text;
using ResidualEngine.Serialization;

namespace ResidualEngine.Data.Import;

/// <summary>A numpy array read from a pickle: shape, dtype string (e.g. "u1", "&lt;i8") and raw bytes in C order.</summary>
public sealed class PickleArray
{
    public int[] Shape { get; internal set; } = [];
    public string DType { get; internal set; } = "";
    public bool Fortran { get; internal set; }
    public byte[] Data { get; internal set; } = [];
    public long Elements => Shape.Aggregate(1L, (a, b) => a * b);

    public override string ToString() => "a numpy array";
}

public static class SafePickle
{
    /// <summary>Parses a whole pickle (up to its STOP) and returns the object it builds.</summary>
    public static object? Load(ReadOnlyMemory<byte> bytes, string name) => PickleMachine.Load(bytes, name, NumpyPolicy.Instance);

    private sealed class DType(string code)
    {
        public string Code { get; } = code;
        public char Order { get; set; } = '|';

        public override string ToString() => "a numpy dtype";
    }

    private sealed class NumpyPolicy : PicklePolicy
    {
        public static readonly NumpyPolicy Instance = new();

        private static readonly HashSet<string> s_numpyCore = ["numpy.core.multiarray", "numpy._core.multiarray"];
        private static readonly HashSet<string> s_numpyNumeric = ["numpy.core.numeric", "numpy._core.numeric"];

        public override string Files => "a CIFAR data file";

        public override Exception Error(string input, string message, int at) =>
            new InvalidDataException($"{input}: not a CIFAR data pickle: {message} (at byte {at})");

        public override bool Accepts(byte op) => op is (byte)'I' or (byte)'p' or (byte)'g' or (byte)'l' or (byte)'d' or 0x96;

        public override object DictKey(PickleMachine m, object? key) => key is byte[] b ? Encoding.Latin1.GetString(b) : base.DictKey(m, key);

        public override PyGlobal Global(PickleMachine m, string module, string fn)
        {
            bool ok = (s_numpyCore.Contains(module) && fn == "_reconstruct")
                || (s_numpyNumeric.Contains(module) && fn == "_frombuffer")
                || (module == "numpy" && fn is "ndarray" or "dtype")
                || (module == "_codecs" && fn == "encode");
            if (!ok) throw m.Error($"it refers to {module}.{fn}, which a CIFAR file never does (a pickle can run code; this reader only reads data)");
            return new PyGlobal(module, fn);
        }

        public override object? Reduce(PickleMachine m, PyGlobal fn, object?[] args)
        {
            switch (fn.Name)
            {
                case "_reconstruct":
                    if (args.Length != 3 || args[0] is not PyGlobal { Name: "ndarray" })
                        throw m.Error("numpy _reconstruct with unexpected arguments");
                    return new PickleArray();
                case "dtype":
                    if (args.Length < 1 || args[0] is not (string or byte[])) throw m.Error("numpy.dtype without a type code");
                    return new DType(args[0] is string s ? s : Encoding.ASCII.GetString((byte[])args[0]!));
                case "encode":
                    if (args is not [string text, string enc] || enc is not ("latin1" or "latin-1"))
                        throw m.Error("_codecs.encode other than (text, 'latin1')");
                    if (text.Any(c => c > 0xFF)) throw m.Error("_codecs.encode of text outside Latin-1");
                    return Encoding.Latin1.GetBytes(text);
                case "_frombuffer":
                    if (args is not [byte[] buf, DType dt, object?[] shape, string order])
                        throw m.Error("numpy _frombuffer with unexpected arguments");
                    var a = new PickleArray { Shape = Shape(m, shape), DType = dt.Order + dt.Code, Fortran = order == "F", Data = buf };
                    CheckSize(m, a);
                    return a;
                default:
                    throw m.Error($"REDUCE calls {fn}, which is not an allowed callable");
            }
        }

        public override void Build(PickleMachine m, object? target, object? state)
        {
            switch (target)
            {
                case DType dt:
                    // (version, byte order, subarray, names, fields, elsize, alignment, flags)
                    if (state is not object?[] { Length: >= 2 } st) throw m.Error("numpy dtype state is not a tuple");
                    var order = st[1] is string s ? s : st[1] is byte[] b ? Encoding.ASCII.GetString(b) : throw m.Error("numpy dtype without byte order");
                    if (order.Length != 1 || order[0] is not ('|' or '<' or '>' or '=')) throw m.Error($"numpy dtype byte order '{order}'");
                    if (st.Length > 3 && st[3] is not null) throw m.Error("structured numpy dtypes are not CIFAR data");
                    dt.Order = order[0];
                    break;
                case PickleArray a:
                    // (version, shape, dtype, is_fortran, raw data)
                    if (state is not object?[] { Length: 5 } t || t[2] is not DType d || t[3] is not bool f)
                        throw m.Error("numpy array state is not (version, shape, dtype, fortran, data)");
                    a.Shape = Shape(m, t[1] as object?[] ?? throw m.Error("numpy array shape is not a tuple"));
                    a.DType = d.Order + d.Code;
                    a.Fortran = f;
                    a.Data = t[4] switch
                    {
                        byte[] raw => raw,
                        string text when text.All(c => c <= 0xFF) => Encoding.Latin1.GetBytes(text),
                        _ => throw m.Error("numpy array of Python objects (not raw numbers) is not CIFAR data"),
                    };
                    CheckSize(m, a);
                    break;
                default:
                    base.Build(m, target, state);
                    break;
            }
        }

        private static int[] Shape(PickleMachine m, object?[] t) =>
            t.Select(v => v is long l && l >= 0 && l <= int.MaxValue ? (int)l : throw m.Error("numpy shape entries must be non-negative integers")).ToArray();

        private static void CheckSize(PickleMachine m, PickleArray a)
        {
            int size = a.DType.Length > 1 && int.TryParse(a.DType.AsSpan(2), NumberStyles.None, CultureInfo.InvariantCulture, out var s) ? s : 0;
            if (size <= 0) throw m.Error($"numpy dtype '{a.DType}' has no element size");
            if (a.Elements * size != a.Data.LongLength)
                throw m.Error($"numpy array of shape ({string.Join(", ", a.Shape)}) and dtype {a.DType} needs {a.Elements * size} bytes, the pickle holds {a.Data.LongLength}");
        }
    }
}
