// Shared machinery of optimizers with per-parameter state (AdamW, LARS): parameter groups and
// their checks (OptimizerParams, shared with Sgd), per-parameter state buffers (named, owned, on
// the parameter's device, created zero on its first step), per-parameter step counts (as torch
// keeps them), checkpoint state and ZeroGrad. Each Step hands a parameter, its gradient and its
// state to the rule, which updates them in place with device ops (the pointwise family, Sum): no
// host round trip, so on a GPU a step never waits for the device. Temporaries a rule makes are
// freed after each parameter.
using System.Runtime.InteropServices;
using ResidualEngine.Autograd;

namespace ResidualEngine.Nn.Optim;

public abstract class StatefulOptimizer : IOptimizer
{
    private readonly Tensor[] _params;
    private readonly double[] _weightDecay;
    private readonly Tensor?[][] _state;  // [buffer kind][parameter]
    private readonly long[] _steps;
    private Tensor? _stepsTensor;
    private double _lr;

    protected StatefulOptimizer(IEnumerable<ParamGroup> groups, double lr, IReadOnlyList<string> stateNames)
    {
        ArgumentNullException.ThrowIfNull(groups);
        ArgumentNullException.ThrowIfNull(stateNames);
        var who = GetType().Name;
        OptimizerParams.CheckLr(lr, who);
        _params = OptimizerParams.Flatten(groups, who, out _weightDecay);
        StateNames = stateNames.ToArray();
        _state = StateNames.Select(_ => new Tensor?[_params.Length]).ToArray();
        _steps = new long[_params.Length];
        _lr = lr;
    }

    /// <summary>Names of the per-parameter buffers ("exp_avg", ...): checkpoint entries are "{name}.{paramIndex}".</summary>
    public IReadOnlyList<string> StateNames { get; }
    public IEnumerable<Tensor> Parameters => _params;
    public long StepCount { get; private set; }

    public double LearningRate
    {
        get => _lr;
        set { OptimizerParams.CheckLr(value, GetType().Name); _lr = value; }
    }

    /// <summary>The rule for one parameter: update <paramref name="w"/> and <paramref name="state"/> (the buffers of
    /// <see cref="StateNames"/>, on w's device) in place, with device ops. <paramref name="step"/> counts this parameter's
    /// updates, this one included (1 on the first). Runs without gradient recording, in a scope that frees its temporaries.</summary>
    protected abstract void Update(int index, Tensor w, Tensor g, Tensor[] state, long step, double lr, double weightDecay);

    public void Step()
    {
        using var noGrad = GradMode.NoGrad();
        for (int i = 0; i < _params.Length; i++)
        {
            var p = _params[i];
            if (OptimizerParams.Gradient(p, i, GetType().Name) is not { } grad) continue;
            if (p.DType is not (DType.F32 or DType.F64))
                throw new NotSupportedException($"{GetType().Name}: parameter {p.Describe()}: the update rule runs in F32 or F64 only");
            var state = new Tensor[StateNames.Count];
            for (int k = 0; k < state.Length; k++)
            {
                var buf = _state[k][i] ??= NewBuffer(p, StateNames[k]);
                if (buf.Device != p.Device) buf.MoveTo(p.Device); // the module moved since the last step
                if (buf.Format != p.Format) buf.ConvertFormat(p.Format); // or changed its memory format
                state[k] = buf;
            }
            using (TensorScope.Begin()) Update(i, p, grad, state, ++_steps[i], _lr, _weightDecay[i]);
        }
        StepCount++;
    }

    private static void Write(Tensor t, double[] v)
    {
        if (t.Format != MemoryFormat.Contiguous)
        {
            // v is in logical order; a channels-last tensor stores it transposed.
            using var tmp = Tensor.FromDoubles(v, t.Shape, t.DType, t.Device);
            t.CopyFrom(tmp);
            return;
        }
        switch (t.DType)
        {
            case DType.F64: t.Backend.CopyFromHost(t, MemoryMarshal.AsBytes(v.AsSpan())); break;
            case DType.F32: t.Backend.CopyFromHost(t, MemoryMarshal.AsBytes(Array.ConvertAll(v, x => (float)x).AsSpan())); break;
            default:
                using (var tmp = Tensor.FromDoubles(v, t.Shape, t.DType, t.Device)) t.Backend.Copy(t, tmp);
                break;
        }
    }

    private static Tensor NewBuffer(Tensor p, string kind)
    {
        // In the parameter's memory format: the update rules combine them element for element.
        var b = TensorScope.Detach(Tensor.Empty(p.Shape, p.DType, p.Device, p.Format));
        b.Backend.Fill(b, 0);
        b.Name = (p.Name ?? "param") + "." + kind;
        return b;
    }

    public void ZeroGrad() => OptimizerParams.ZeroGrad(_params);

    /// <summary>"{state}.{i}" buffers that exist, plus "steps" (F64, one count per parameter).</summary>
    public IReadOnlyList<(string Name, Tensor Buffer)> StateTensors()
    {
        var list = new List<(string, Tensor)>();
        for (int k = 0; k < StateNames.Count; k++)
            for (int i = 0; i < _params.Length; i++)
                if (_state[k][i] is { } b) list.Add(($"{StateNames[k]}.{i}", b));
        _stepsTensor ??= TensorScope.Detach(Tensor.Zeros(new Shape(_params.Length), DType.F64, Device.Cpu));
        Write(_stepsTensor, Array.ConvertAll(_steps, s => (double)s));
        list.Add(("steps", _stepsTensor));
        return list;
    }

    public void LoadState(IReadOnlyDictionary<string, Tensor> state, long stepCount)
    {
        ArgumentNullException.ThrowIfNull(state);
        var who = GetType().Name;
        if (stepCount < 0) throw new ArgumentException($"{who}.LoadState: step count must not be negative, got {stepCount}");
        var incoming = StateNames.Select(_ => new Tensor?[_params.Length]).ToArray();
        long[]? steps = null;
        foreach (var (name, t) in state)
        {
            if (t is null || t.IsDisposed) throw new ArgumentException($"{who}.LoadState: '{name}' is null or disposed");
            if (name == "steps")
            {
                if (t.Numel != _params.Length) throw new ArgumentException($"{who}.LoadState: 'steps' has {t.Numel} entries for {_params.Length} parameters");
                steps = Array.ConvertAll(t.ToDoubles(), d => (long)d);
                continue;
            }
            int dot = name.LastIndexOf('.');
            int k = dot > 0 ? StateNames.ToList().IndexOf(name[..dot]) : -1;
            if (k < 0 || !int.TryParse(name.AsSpan(dot + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int i))
                throw new ArgumentException($"{who}.LoadState: unexpected state entry '{name}' (this optimizer keeps {string.Join(", ", StateNames)})");
            OptimizerParams.CheckStateEntry(who, name, t, i, _params);
            incoming[k][i] = t;
        }
        for (int k = 0; k < StateNames.Count; k++)
            for (int i = 0; i < _params.Length; i++)
            {
                _state[k][i]?.Dispose();
                _state[k][i] = null;
                if (incoming[k][i] is { } src)
                {
                    var buf = _state[k][i] = NewBuffer(_params[i], StateNames[k]);
                    Write(buf, src.ToDoubles());
                }
            }
        Array.Clear(_steps);
        if (steps is not null) steps.CopyTo(_steps, 0);
        StepCount = stepCount;
    }

    public void Dispose()
    {
        foreach (var kind in _state)
            for (int i = 0; i < kind.Length; i++)
            {
                kind[i]?.Dispose();
                kind[i] = null;
            }
        _stepsTensor?.Dispose();
        _stepsTensor = null;
        GC.SuppressFinalize(this);
    }
}
