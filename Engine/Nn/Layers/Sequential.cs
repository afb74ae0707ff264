// A chain of modules applied in order; children are named "0", "1", ... so state-dict keys
// read "layer1.0.conv1.weight" and "downsample.0.weight", as torch.nn.Sequential.
namespace ResidualEngine.Nn;

public sealed class Sequential : Module
{
    private readonly List<Module> _layers = new();

    public Sequential(params Module[] layers)
    {
        ArgumentNullException.ThrowIfNull(layers);
        foreach (var m in layers) Add(m);
    }

    public Sequential(IEnumerable<Module> layers) : this(layers?.ToArray() ?? throw new ArgumentNullException(nameof(layers))) { }

    /// <summary>Appends a module under the next index.</summary>
    public Sequential Add(Module module)
    {
        RegisterModule(_layers.Count.ToString(System.Globalization.CultureInfo.InvariantCulture), module);
        _layers.Add(module);
        return this;
    }

    public int Count => _layers.Count;
    public Module this[int index] => _layers[index];
    public IReadOnlyList<Module> Layers => _layers;

    /// <summary>Each layer's output is disposed once the next layer has consumed it; the caller owns the result
    /// (a new handle even when the chain is empty).</summary>
    public override Tensor Forward(Tensor x)
    {
        if (_layers.Count == 0) return x.Alias();
        var y = _layers[0].Forward(x);
        for (int i = 1; i < _layers.Count; i++) y = y.Then(_layers[i].Forward);
        return y;
    }

    public override Shape Trace(Shape input, ShapeTrace trace)
    {
        foreach (var m in _layers) input = m.Trace(input, trace);
        return input;
    }

    public override string ToString() => $"Sequential({_layers.Count})";
}
