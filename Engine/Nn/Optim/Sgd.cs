// Stochastic gradient descent with momentum, dampening, Nesterov and weight decay, as
// torch.optim.SGD. Each parameter is updated by one fused backend call (IBackend.SgdUpdate) on
// its own device, with no host synchronisation. Momentum buffers are created on a parameter's
// first step (they start as the gradient, undamped) and belong to the optimizer (Dispose frees them).
namespace ResidualEngine.Nn.Optim;

/// <summary>A set of parameters sharing hyper-parameters (e.g. BN and bias without weight decay).</summary>
public sealed record ParamGroup(IReadOnlyList<Tensor> Parameters, double WeightDecay);

public sealed class Sgd : IOptimizer
{
    private readonly ParamGroup[] _groups;
    private readonly Tensor[] _params;        // every parameter, in group order
    private readonly double[] _weightDecay;   // per parameter, from its group
    private readonly Tensor?[] _buffers;      // momentum buffers, same order; null until the first step
    private double _lr;

    public Sgd(IEnumerable<ParamGroup> groups, double lr, double momentum = 0, double dampening = 0, bool nesterov = false)
    {
        ArgumentNullException.ThrowIfNull(groups);
        OptimizerParams.CheckLr(lr, "Sgd");
        if (!(momentum >= 0)) throw new ArgumentException($"Sgd: invalid momentum value {momentum} (must be >= 0)");
        if (double.IsNaN(dampening) || double.IsInfinity(dampening)) throw new ArgumentException($"Sgd: invalid dampening value {dampening}");
        if (nesterov && (momentum <= 0 || dampening != 0))
            throw new ArgumentException($"Sgd: Nesterov momentum requires a momentum > 0 and zero dampening (got momentum {momentum}, dampening {dampening})");
        _groups = groups.ToArray();
        _params = OptimizerParams.Flatten(_groups, "Sgd", out _weightDecay);
        _buffers = new Tensor?[_params.Length];
        _lr = lr;
        Momentum = momentum;
        Dampening = dampening;
        Nesterov = nesterov;
    }

    /// <summary>SGD over a module's parameters with the paper's defaults. With <paramref name="noBnWeightDecay"/>,
    /// parameters of rank &lt;= 1 (BN weights and biases, every bias) form a second group without weight decay.</summary>
    public static Sgd ForModule(Module m, double lr, double momentum = 0.9, double weightDecay = 1e-4, bool nesterov = false, bool noBnWeightDecay = false)
    {
        ArgumentNullException.ThrowIfNull(m);
        return new Sgd(GroupsOf(m, weightDecay, noBnWeightDecay), lr, momentum, 0, nesterov);
    }

    /// <summary>A module's parameters as one group with <paramref name="weightDecay"/>, or with <paramref name="noBnWeightDecay"/>
    /// two: rank &gt; 1 with it, rank &lt;= 1 (BN weights and biases, every bias) without.</summary>
    public static IReadOnlyList<ParamGroup> GroupsOf(Module m, double weightDecay, bool noBnWeightDecay)
    {
        ArgumentNullException.ThrowIfNull(m);
        var all = m.Parameters().ToList();
        if (!noBnWeightDecay) return [new ParamGroup(all, weightDecay)];
        var decay = all.Where(p => p.Rank > 1).ToList();
        var noDecay = all.Where(p => p.Rank <= 1).ToList();
        var groups = new List<ParamGroup>();
        if (decay.Count > 0) groups.Add(new ParamGroup(decay, weightDecay));
        if (noDecay.Count > 0) groups.Add(new ParamGroup(noDecay, 0));
        return groups;
    }

    public IReadOnlyList<ParamGroup> Groups => _groups;
    public IEnumerable<Tensor> Parameters => _params;
    public double Momentum { get; }
    public double Dampening { get; }
    public bool Nesterov { get; }

    /// <summary>Number of Step() calls so far (restored by LoadState).</summary>
    public long StepCount { get; private set; }

    public double LearningRate
    {
        get => _lr;
        set { OptimizerParams.CheckLr(value, "Sgd"); _lr = value; }
    }

    /// <summary>One update of every parameter that has a gradient; parameters without one are skipped.</summary>
    public void Step()
    {
        for (int i = 0; i < _params.Length; i++)
        {
            var p = _params[i];
            if (OptimizerParams.Gradient(p, i, "Sgd") is not { } g) continue;
            Tensor? buf = null;
            bool first = false;
            if (Momentum != 0)
            {
                buf = _buffers[i];
                if (buf is null)
                {
                    buf = _buffers[i] = NewBuffer(p);
                    first = true;
                }
                else
                {
                    if (buf.Device != p.Device) buf.MoveTo(p.Device); // the module moved since the last step
                    if (buf.Format != p.Format) buf.ConvertFormat(p.Format); // or changed its memory format
                }
            }
            if (g.Format != p.Format)
                throw new InvalidOperationException($"Sgd: gradient {g.Describe()} and parameter {p.Describe()} differ in memory format");
            p.Backend.SgdUpdate(p, g, buf, _lr, Momentum, Dampening, _weightDecay[i], Nesterov, first);
        }
        StepCount++;
    }

    /// <summary>Drops every parameter's gradient (set to none, as PyTorch's default).</summary>
    public void ZeroGrad() => OptimizerParams.ZeroGrad(_params);

    /// <summary>Momentum buffers for a checkpoint, named "momentum.{paramIndex}" (index over all groups in order);
    /// only buffers that exist are listed. The tensors are the optimizer's own: copy them to keep them.</summary>
    public IReadOnlyList<(string Name, Tensor Buffer)> StateTensors()
    {
        var list = new List<(string, Tensor)>();
        for (int i = 0; i < _buffers.Length; i++)
            if (_buffers[i] is { } b) list.Add(($"momentum.{i}", b));
        return list;
    }

    /// <summary>Replaces the optimizer state with a checkpoint's: momentum buffers (copied onto each parameter's
    /// device and dtype; parameters without an entry start afresh) and the step count.</summary>
    public void LoadState(IReadOnlyDictionary<string, Tensor> state, long stepCount)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (stepCount < 0) throw new ArgumentException($"Sgd.LoadState: step count must not be negative, got {stepCount}");
        var incoming = new Tensor?[_params.Length];
        foreach (var (name, t) in state)
        {
            const string prefix = "momentum.";
            if (!name.StartsWith(prefix, StringComparison.Ordinal)
                || !int.TryParse(name.AsSpan(prefix.Length), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int i))
                throw new ArgumentException($"Sgd.LoadState: unexpected state entry '{name}'");
            OptimizerParams.CheckStateEntry("Sgd", name, t, i, _params);
            if (!t.DType.IsFloat()) throw new ArgumentException($"Sgd.LoadState: '{name}' is {t.DType}, not floating-point");
            if (Momentum == 0) throw new ArgumentException($"Sgd.LoadState: '{name}' is a momentum buffer but this optimizer has no momentum");
            incoming[i] = t;
        }
        for (int i = 0; i < _params.Length; i++)
        {
            var src = incoming[i];
            if (src is null)
            {
                _buffers[i]?.Dispose();
                _buffers[i] = null;
                continue;
            }
            var p = _params[i];
            var buf = _buffers[i] ??= NewBuffer(p);
            if (buf.Device != p.Device) buf.MoveTo(p.Device);
            if (buf.Format != p.Format) buf.ConvertFormat(p.Format);
            buf.CopyFrom(src);
        }
        StepCount = stepCount;
    }

    private static Tensor NewBuffer(Tensor p)
    {
        var b = TensorScope.Detach(Tensor.EmptyLike(p));
        b.Name = p.Name is null ? "momentum" : p.Name + ".momentum";
        return b;
    }

    /// <summary>Frees the momentum buffers (parameters belong to their module).</summary>
    public void Dispose()
    {
        for (int i = 0; i < _buffers.Length; i++)
        {
            _buffers[i]?.Dispose();
            _buffers[i] = null;
        }
    }
}
