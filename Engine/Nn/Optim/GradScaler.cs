// Dynamic loss scaling for FP16 training, with torch.cuda.amp.GradScaler's semantics and defaults:
// the loss is multiplied by the scale (initially 2^16) before backward, so small FP16 gradients do
// not flush to zero; before the optimizer step every gradient is multiplied by 1/scale in place
// while one found-inf flag per device records whether any gradient held an infinity or NaN
// (IBackend.UnscaleAndCheck). Step reads that flag (the one host synchronisation per step, as
// PyTorch's `_maybe_opt_step` reads `found_inf.item()`): with an overflow the optimizer step is
// skipped. Update then backs the scale off (x0.5) after an overflow and resets the count of clean
// steps; after 2000 clean steps in a row it grows the scale (x2). BF16 has F32's exponent range and
// needs no scaler (construct it with enabled: false, and every call passes through).
// Per step: ScaleLoss(loss).Backward(); Unscale(opt) (optional: before gradient clipping); Step(opt); Update().
namespace ResidualEngine.Nn.Optim;

public sealed class GradScaler : IDisposable
{
    private readonly Dictionary<Device, Tensor> _foundInf = new();
    private bool _unscaled;
    private bool? _lastFound;

    public GradScaler(double initScale = 65536.0, double growthFactor = 2.0, double backoffFactor = 0.5, int growthInterval = 2000, bool enabled = true)
    {
        if (!(initScale > 0) || double.IsInfinity(initScale)) throw new ArgumentException($"GradScaler: initial scale must be positive and finite, got {initScale}");
        if (!(growthFactor > 1)) throw new ArgumentException($"GradScaler: growth factor must be above 1, got {growthFactor}");
        if (!(backoffFactor > 0 && backoffFactor < 1)) throw new ArgumentException($"GradScaler: backoff factor must be in (0, 1), got {backoffFactor}");
        if (growthInterval < 1) throw new ArgumentException($"GradScaler: growth interval must be at least 1, got {growthInterval}");
        Scale = initScale;
        GrowthFactor = growthFactor;
        BackoffFactor = backoffFactor;
        GrowthInterval = growthInterval;
        Enabled = enabled;
    }

    public bool Enabled { get; }
    /// <summary>The current loss scale (kept as a double; every value it takes from the defaults is a power of two).</summary>
    public double Scale { get; private set; }
    public double GrowthFactor { get; }
    public double BackoffFactor { get; }
    public int GrowthInterval { get; }
    /// <summary>Clean (finite) steps in a row since the last change of the scale.</summary>
    public int GrowthTracker { get; private set; }
    /// <summary>Whether the last Step found an infinity or NaN (and skipped the optimizer step); null before the first.</summary>
    public bool? LastStepSkipped => _lastFound;
    /// <summary>Optimizer steps skipped because of overflows so far.</summary>
    public long SkippedSteps { get; private set; }

    /// <summary>loss * scale as a new handle the caller owns (loss itself, aliased, when disabled).</summary>
    public Tensor ScaleLoss(Tensor loss)
    {
        ArgumentNullException.ThrowIfNull(loss);
        return Enabled ? Ops.Scale(loss, Scale) : loss.Alias();
    }

    /// <summary>Divides every gradient of the optimizer's parameters by the scale, in place, and records non-finite ones.
    /// Call it before anything that reads gradients as true values (clipping); Step calls it when it was not.</summary>
    public void Unscale(IOptimizer optimizer)
    {
        ArgumentNullException.ThrowIfNull(optimizer);
        if (!Enabled) return;
        if (_unscaled) throw new InvalidOperationException("GradScaler.Unscale was already called since the last Update");
        foreach (var f in _foundInf.Values) f.Backend.Fill(f, 0);
        double inv = 1.0 / Scale;
        foreach (var p in optimizer.Parameters)
        {
            if (p.Grad is not { } g) continue;
            if (!_foundInf.TryGetValue(g.Device, out var flag))
            {
                flag = _foundInf[g.Device] = TensorScope.Detach(Tensor.Zeros(Shape.Scalar, DType.F32, g.Device));
                flag.Name = "found_inf";
            }
            g.Backend.UnscaleAndCheck(g, flag, inv);
        }
        _unscaled = true;
    }

    /// <summary>Unscales if needed, then runs the optimizer step unless a gradient overflowed. True when it stepped.</summary>
    public bool Step(IOptimizer optimizer)
    {
        ArgumentNullException.ThrowIfNull(optimizer);
        if (!Enabled)
        {
            optimizer.Step();
            return true;
        }
        if (!_unscaled) Unscale(optimizer);
        bool found = false;
        foreach (var f in _foundInf.Values) found |= f.Item() != 0; // the one read per step (per device)
        _lastFound = found;
        if (found) SkippedSteps++;
        else optimizer.Step();
        return !found;
    }

    /// <summary>Adjusts the scale after a step: x BackoffFactor after an overflow, x GrowthFactor after GrowthInterval clean steps.</summary>
    public void Update()
    {
        if (!Enabled) return;
        if (_lastFound is not { } found) throw new InvalidOperationException("GradScaler.Update needs a Step first");
        if (found)
        {
            Scale *= BackoffFactor;
            GrowthTracker = 0;
        }
        else if (++GrowthTracker == GrowthInterval)
        {
            double grown = Scale * GrowthFactor;
            if (double.IsFinite(grown)) Scale = grown;
            GrowthTracker = 0;
        }
        _unscaled = false;
    }

    /// <summary>Restores the scale, the clean-step count and the skip count (a checkpoint's); the factors and interval stay as constructed.</summary>
    public void LoadState(double scale, int growthTracker, long skippedSteps = 0)
    {
        if (skippedSteps < 0) throw new ArgumentException($"GradScaler.LoadState: skipped steps must not be negative, got {skippedSteps}");
        if (!(scale > 0) || double.IsInfinity(scale)) throw new ArgumentException($"GradScaler.LoadState: scale must be positive and finite, got {scale}");
        if (growthTracker < 0 || growthTracker >= GrowthInterval)
            throw new ArgumentException($"GradScaler.LoadState: growth tracker must be in [0, {GrowthInterval}), got {growthTracker}");
        Scale = scale;
        GrowthTracker = growthTracker;
        SkippedSteps = skippedSteps;
        _unscaled = false;
        _lastFound = null;
    }

    public void Dispose()
    {
        foreach (var f in _foundInf.Values) f.Dispose();
        _foundInf.Clear();
    }
}
