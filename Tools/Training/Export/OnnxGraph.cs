// A small builder of ONNX graphs: nodes with typed attributes, initializers copied from our
// tensors (float32, little-endian raw data), constant int64 inputs, unique value names. The
// exporter describes the network through it; it knows nothing about networks.
using Google.Protobuf;
using ResidualEngine.Training.Export.Proto;

namespace ResidualEngine.Training.Export;

internal sealed class OnnxGraph
{
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);
    private readonly HashSet<string> _initializers = new(StringComparer.Ordinal);

    public GraphProto Graph { get; } = new();

    /// <summary>A value name not used yet, based on <paramref name="hint"/>.</summary>
    public string Fresh(string hint)
    {
        var name = hint.Length == 0 ? "v" : hint;
        for (int i = 1; !_names.Add(name); i++) name = $"{hint}_{i}";
        return name;
    }

    /// <summary>A float32 initializer holding a copy of <paramref name="t"/> (any device, any float dtype), under its state-dict name.</summary>
    public string Weight(string name, Tensor t)
    {
        ArgumentNullException.ThrowIfNull(t);
        if (_initializers.Contains(name)) return name;
        if (!t.DType.IsFloat()) throw new NotSupportedException($"ONNX export: tensor '{name}' is {t.DType}, not floating point");
        var floats = t.ToFloats();
        var bytes = new byte[floats.Length * 4];
        Buffer.BlockCopy(floats, 0, bytes, 0, bytes.Length);
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("ONNX export needs a little-endian machine");
        var p = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Float, RawData = ByteString.CopyFrom(bytes) };
        for (int i = 0; i < t.Rank; i++) p.Dims.Add(t.Shape[i]);
        Add(p);
        return name;
    }

    /// <summary>A scalar float32 constant.</summary>
    public string Scalar(string hint, float value)
    {
        var p = new TensorProto { Name = Fresh(hint), DataType = (int)TensorProto.Types.DataType.Float };
        p.FloatData.Add(value);
        Add(p);
        return p.Name;
    }

    /// <summary>A 1-D int64 constant (the shape-like inputs of Slice and Pad).</summary>
    public string Ints(string hint, params long[] values)
    {
        var p = new TensorProto { Name = Fresh(hint), DataType = (int)TensorProto.Types.DataType.Int64 };
        p.Dims.Add(values.Length);
        p.Int64Data.Add(values);
        Add(p);
        return p.Name;
    }

    private void Add(TensorProto p)
    {
        _names.Add(p.Name);
        _initializers.Add(p.Name);
        Graph.Initializer.Add(p);
    }

    /// <summary>Adds a node and returns its (single) output's name.</summary>
    public string Node(string opType, string name, IEnumerable<string> inputs, params AttributeProto[] attributes)
    {
        var output = Fresh(name);
        var n = new NodeProto { OpType = opType, Name = output };
        n.Input.Add(inputs);
        n.Output.Add(output);
        n.Attribute.Add(attributes);
        Graph.Node.Add(n);
        return output;
    }

    public static AttributeProto IntAttr(string name, long v) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = v };

    public static AttributeProto FloatAttr(string name, float v) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = v };

    public static AttributeProto IntsAttr(string name, params long[] v)
    {
        var a = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        a.Ints.Add(v);
        return a;
    }

    /// <summary>A float32 tensor value with the given dimensions (a string is a symbolic dimension such as "batch").</summary>
    public static ValueInfoProto Value(string name, params object[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (var d in dims)
            shape.Dim.Add(d is string s ? new TensorShapeProto.Types.Dimension { DimParam = s } : new TensorShapeProto.Types.Dimension { DimValue = Convert.ToInt64(d, System.Globalization.CultureInfo.InvariantCulture) });
        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float, Shape = shape } },
        };
    }
}
