// Base of every layer and network. Parameters, buffers and child modules are registered by
// name in order, so names compose as in PyTorch's state_dict ("layer1.0.conv1.weight").
// Parameters are leaf tensors with RequiresGrad; buffers (running stats) are not trained.
// A module owns its tensors: Dispose frees them.
// Tensors live in named slots: ToDType replaces a slot's tensor with a converted one, so a
// module that needs its tensors at Forward time reads them through GetParameter/GetBuffer
// (a lookup in a list of a few entries) instead of caching the object in a field.
using ResidualEngine.Autograd;

namespace ResidualEngine.Nn;

public abstract class Module : IDisposable
{
    private readonly List<Slot> _params = new();
    private readonly List<Slot> _buffers = new();
    private readonly List<(string Name, Module Module)> _children = new();

    public bool Training { get; private set; } = true;

    /// <summary>Computes the module's output; records autograd nodes when grad mode is on. The result is a
    /// new handle the caller owns (never <paramref name="x"/> itself); x is never disposed. Implementations
    /// free their intermediates as soon as they are dead (Tensor.Then), under grad and under no-grad.</summary>
    public abstract Tensor Forward(Tensor x);

    protected T RegisterModule<T>(string name, T module) where T : Module
    {
        ArgumentNullException.ThrowIfNull(module);
        CheckName(name);
        _children.Add((name, module));
        return module;
    }

    /// <summary>Registers a trainable tensor; it leaves any scope and requires grad from now on.</summary>
    protected Tensor RegisterParameter(string name, Tensor t)
    {
        ArgumentNullException.ThrowIfNull(t);
        CheckName(name);
        TensorScope.Detach(t);
        t.RequiresGrad = true;
        t.Name ??= name;
        _params.Add(new Slot(name, t));
        return t;
    }

    /// <summary>Registers state that is saved but not trained (BN running statistics).</summary>
    protected Tensor RegisterBuffer(string name, Tensor t)
    {
        ArgumentNullException.ThrowIfNull(t);
        CheckName(name);
        TensorScope.Detach(t);
        t.Name ??= name;
        _buffers.Add(new Slot(name, t));
        return t;
    }

    /// <summary>The current tensor of this module's own parameter <paramref name="name"/>.</summary>
    protected Tensor GetParameter(string name) => Find(_params, name, "parameter");

    /// <summary>The current tensor of this module's own buffer <paramref name="name"/>.</summary>
    protected Tensor GetBuffer(string name) => Find(_buffers, name, "buffer");

    private Tensor Find(List<Slot> slots, string name, string what)
    {
        foreach (var s in slots) if (s.Name == name) return s.Tensor;
        throw new ArgumentException($"{GetType().Name} has no {what} named '{name}'");
    }

    private void CheckName(string name)
    {
        if (string.IsNullOrEmpty(name) || name.Contains('.', StringComparison.Ordinal))
            throw new ArgumentException($"invalid member name '{name}'");
        if (_params.Any(p => p.Name == name) || _buffers.Any(b => b.Name == name) || _children.Any(c => c.Name == name))
            throw new ArgumentException($"member '{name}' is registered twice in {GetType().Name}");
    }

    public IEnumerable<(string Name, Module Module)> Children() => _children;

    /// <summary>This module and every descendant, depth first, with dotted names ("" for this one).</summary>
    public IEnumerable<(string Name, Module Module)> NamedModules(string prefix = "")
    {
        yield return (prefix, this);
        foreach (var (n, m) in _children)
            foreach (var x in m.NamedModules(prefix.Length == 0 ? n : prefix + "." + n)) yield return x;
    }

    public IEnumerable<(string Name, Tensor Tensor)> NamedParameters(string prefix = "")
    {
        foreach (var p in _params) yield return (Join(prefix, p.Name), p.Tensor);
        foreach (var (n, m) in _children)
            foreach (var x in m.NamedParameters(Join(prefix, n))) yield return x;
    }

    public IEnumerable<(string Name, Tensor Tensor)> NamedBuffers(string prefix = "")
    {
        foreach (var b in _buffers) yield return (Join(prefix, b.Name), b.Tensor);
        foreach (var (n, m) in _children)
            foreach (var x in m.NamedBuffers(Join(prefix, n))) yield return x;
    }

    public IEnumerable<Tensor> Parameters() => NamedParameters().Select(p => p.Tensor);

    public long ParameterCount() => Parameters().Sum(p => p.Numel);

    private static string Join(string prefix, string name) => prefix.Length == 0 ? name : prefix + "." + name;

    /// <summary>Parameters and buffers in PyTorch's state_dict order (per module: parameters, then buffers, then children).</summary>
    public OrderedDictionary<string, Tensor> StateDict()
    {
        var d = new OrderedDictionary<string, Tensor>(StringComparer.Ordinal);
        AddState(d, "");
        return d;
    }

    private void AddState(OrderedDictionary<string, Tensor> d, string prefix)
    {
        foreach (var p in _params) d.Add(Join(prefix, p.Name), p.Tensor);
        foreach (var b in _buffers) d.Add(Join(prefix, b.Name), b.Tensor);
        foreach (var (n, m) in _children) m.AddState(d, Join(prefix, n));
    }

    /// <summary>
    /// Copies values from a state dict into this module's tensors. Every name, shape and dtype is
    /// checked first; all missing, unexpected and mismatched entries are reported in one error.
    /// With strict = false, missing and unexpected names are allowed but mismatched shapes are not.
    /// </summary>
    public void LoadStateDict(IReadOnlyDictionary<string, Tensor> state, bool strict = true)
    {
        ArgumentNullException.ThrowIfNull(state);
        var own = StateDict();
        // BN's batch counter may be absent: checkpoints from before PyTorch 0.4.1 (such as the
        // original torchvision ResNet weights) lack it, and PyTorch loads them strictly too.
        var missing = own.Keys.Where(k => !state.ContainsKey(k) && !IsOptionalKey(k)).ToList();
        var unexpected = state.Keys.Where(k => !own.ContainsKey(k)).ToList();
        var mismatched = new List<string>();
        foreach (var (k, t) in own)
        {
            if (!state.TryGetValue(k, out var src)) continue;
            if (src.Shape != t.Shape) mismatched.Add($"{k}: expected shape {t.Shape}, got {src.Shape}");
            else if (src.DType != t.DType && !(src.DType.IsFloat() && t.DType.IsFloat()))
                mismatched.Add($"{k}: expected dtype {t.DType}, got {src.DType}");
        }
        if (mismatched.Count > 0 || (strict && (missing.Count > 0 || unexpected.Count > 0)))
        {
            // Lenient loads fail on mismatches only, so only those are the error's message.
            var parts = new List<string>();
            if (missing.Count > 0 && strict) parts.Add($"missing keys ({missing.Count}): {string.Join(", ", missing)}");
            if (unexpected.Count > 0 && strict) parts.Add($"unexpected keys ({unexpected.Count}): {string.Join(", ", unexpected)}");
            if (mismatched.Count > 0) parts.Add($"mismatched entries ({mismatched.Count}): {string.Join("; ", mismatched)}");
            throw new StateDictException($"cannot load state dict into {GetType().Name}: " + string.Join(" | ", parts), missing, unexpected, mismatched);
        }
        using var scope = TensorScope.Begin();
        using var ng = GradMode.NoGrad();
        foreach (var (k, t) in own)
        {
            if (!state.TryGetValue(k, out var src)) continue;
            t.CopyFrom(src);
        }
        NotifyStateChanged();
    }

    private static bool IsOptionalKey(string key) =>
        key == "num_batches_tracked" || key.EndsWith(".num_batches_tracked", StringComparison.Ordinal);

    /// <summary>Switches this module and its descendants to training (true) or evaluation mode.</summary>
    public Module Train(bool on = true)
    {
        foreach (var (_, m) in NamedModules()) m.Training = on;
        return this;
    }

    public Module Eval() => Train(false);

    /// <summary>Moves every parameter and buffer to a device in place.</summary>
    public Module To(Device device)
    {
        foreach (var (_, t) in NamedParameters()) t.MoveTo(device);
        foreach (var (_, t) in NamedBuffers()) t.MoveTo(device);
        NotifyStateChanged();
        return this;
    }

    /// <summary>
    /// Stores every 4-d parameter and buffer in <paramref name="format"/> (channels-last: convolution weights
    /// become K x R x S x C, as cuDNN's NHWC filters), in place: the tensor objects stay the same, so an
    /// optimizer made before keeps working (its buffers follow at the next step). Inputs must then come in
    /// the same format (the data loader's Format option converts them once per batch); an op given mixed
    /// formats names both tensors. Checkpoints are written in logical (NCHW) order either way.
    /// </summary>
    public Module To(MemoryFormat format)
    {
        foreach (var (_, t) in NamedParameters()) if (t.Rank == 4) t.ConvertFormat(format);
        foreach (var (_, t) in NamedBuffers()) if (t.Rank == 4) t.ConvertFormat(format);
        MemoryFormat = format;
        NotifyStateChanged();
        return this;
    }

    /// <summary>The memory format the last <see cref="To(MemoryFormat)"/> chose for this module's 4-d tensors (NCHW by default).</summary>
    public MemoryFormat MemoryFormat
    {
        get => _format;
        private set
        {
            foreach (var (_, m) in NamedModules()) m._format = value;
        }
    }

    private MemoryFormat _format = MemoryFormat.Contiguous;

    /// <summary>
    /// Converts every floating-point parameter and buffer to <paramref name="dtype"/> (integer
    /// buffers such as BN's num_batches_tracked keep theirs), e.g. F64 for gradient checks.
    /// The converted tensors are new objects that replace the old ones (which are disposed), so
    /// convert before handing parameters to an optimizer.
    /// </summary>
    public Module ToDType(DType dtype)
    {
        if (!dtype.IsFloat()) throw new ArgumentException($"ToDType: {dtype} is not a floating-point dtype", nameof(dtype));
        foreach (var (_, m) in NamedModules())
        {
            foreach (var s in m._params) s.Convert(dtype, trainable: true);
            foreach (var s in m._buffers) s.Convert(dtype, trainable: false);
        }
        NotifyStateChanged();
        return this;
    }

    /// <summary>The dtype of the first floating-point parameter (F32 for a module without any).</summary>
    public DType ParameterDType => Parameters().Select(p => p.DType).DefaultIfEmpty(DType.F32).First();

    /// <summary>The device of the first parameter or buffer (the CPU for a module without any).</summary>
    public Device Device => NamedParameters().Concat(NamedBuffers()).Select(p => p.Tensor.Device).DefaultIfEmpty(Device.Cpu).First();

    /// <summary>Called on every module of the tree after its tensors were loaded, moved or converted,
    /// so a module that mirrors state on the host (BN's batch counter) can refresh it.</summary>
    protected virtual void OnStateChanged() { }

    private void NotifyStateChanged()
    {
        foreach (var (_, m) in NamedModules()) m.OnStateChanged();
    }

    /// <summary>
    /// Propagates an input shape through the module without computing anything and adds the
    /// multiply-accumulates of its convolutions and linear layers to <paramref name="trace"/>
    /// (the convention behind the usual "GMACs" figures). Used for model summaries.
    /// </summary>
    public virtual Shape Trace(Shape input, ShapeTrace trace) =>
        throw new NotSupportedException($"{GetType().Name} does not support shape tracing");

    /// <summary>Drops every parameter's gradient (set to none, as PyTorch's default).</summary>
    public void ZeroGrad()
    {
        foreach (var p in Parameters()) { p.Grad?.Dispose(); p.Grad = null; }
    }

    public Tensor this[Tensor x] => Forward(x);

    public virtual void Dispose()
    {
        foreach (var p in _params) p.Tensor.Dispose();
        foreach (var b in _buffers) b.Tensor.Dispose();
        foreach (var (_, m) in _children) m.Dispose();
        GC.SuppressFinalize(this);
    }
}

/// <summary>A registered parameter or buffer: a name and the tensor that currently fills it.</summary>
internal sealed class Slot(string name, Tensor tensor)
{
    public string Name { get; } = name;
    public Tensor Tensor { get; private set; } = tensor;

    public void Convert(DType dtype, bool trainable)
    {
        var old = Tensor;
        if (!old.DType.IsFloat() || old.DType == dtype) return;
        Tensor converted;
        using (GradMode.NoGrad()) converted = TensorScope.Detach(old.To(dtype));
        converted.Name = old.Name;
        if (trainable) converted.RequiresGrad = old.RequiresGrad;
        Tensor = converted;
        old.Dispose();
    }
}

/// <summary>Accumulates multiply-accumulate counts during <see cref="Module.Trace"/>.</summary>
public sealed class ShapeTrace
{
    public long Macs { get; private set; }

    public void AddMacs(long macs)
    {
        if (macs < 0) throw new ArgumentOutOfRangeException(nameof(macs), macs, "MAC counts cannot be negative");
        Macs = checked(Macs + macs);
    }
}

/// <summary>A state dict that does not fit a module; lists every offending key.</summary>
public sealed class StateDictException(string message, IReadOnlyList<string> missing, IReadOnlyList<string> unexpected, IReadOnlyList<string> mismatched)
    : FormatException(message)
{
    public IReadOnlyList<string> Missing { get; } = missing;
    public IReadOnlyList<string> Unexpected { get; } = unexpected;
    public IReadOnlyList<string> Mismatched { get; } = mismatched;
}
