// Learning-rate schedules: a pure function of the position in training (epoch, step in epoch)
// plus, for the plateau schedule, the validation errors reported so far. Every schedule can warm
// up linearly per step from ~0 (lr * (step + 1) / warmupSteps). Mutable state is a flat map of
// finite doubles so a checkpoint can store it as JSON. The trainer asks LearningRate() before
// every step and calls OnValidation() once per epoch.
namespace ResidualEngine.Nn.Optim;

public abstract class LrSchedule
{
    protected LrSchedule(double baseLr, int warmupEpochs)
    {
        if (!(baseLr >= 0) || double.IsInfinity(baseLr)) throw new ArgumentException($"{GetType().Name}: base learning rate must be >= 0 and finite, got {baseLr}");
        if (warmupEpochs < 0) throw new ArgumentException($"{GetType().Name}: warmup epochs must not be negative, got {warmupEpochs}");
        BaseLr = baseLr;
        WarmupEpochs = warmupEpochs;
    }

    public double BaseLr { get; }
    public int WarmupEpochs { get; }

    /// <summary>"step", "plateau" or "cosine".</summary>
    public abstract string Kind { get; }

    /// <summary>The learning rate for step <paramref name="stepInEpoch"/> (0-based) of epoch <paramref name="epoch"/> (0-based).</summary>
    public abstract double LearningRate(int epoch, int stepInEpoch, int stepsPerEpoch);

    /// <summary>Reports the validation error after an epoch (only the plateau schedule uses it).</summary>
    public virtual void OnValidation(double valError) { }

    /// <summary>The mutable state, for checkpoints (empty for schedules that depend on the position only).</summary>
    public virtual IReadOnlyDictionary<string, double> State() => new Dictionary<string, double>();

    /// <summary>Restores what State() returned; unknown or missing keys are rejected.</summary>
    public virtual void LoadState(IReadOnlyDictionary<string, double> state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (state.Count > 0) throw new ArgumentException($"{GetType().Name}.LoadState: unexpected state keys {string.Join(", ", state.Keys)}");
    }

    /// <summary>Validates a position and returns the global step index.</summary>
    protected long GlobalStep(int epoch, int stepInEpoch, int stepsPerEpoch)
    {
        if (stepsPerEpoch <= 0) throw new ArgumentException($"{GetType().Name}: stepsPerEpoch must be positive, got {stepsPerEpoch}");
        if (epoch < 0) throw new ArgumentException($"{GetType().Name}: epoch must not be negative, got {epoch}");
        if (stepInEpoch < 0 || stepInEpoch >= stepsPerEpoch)
            throw new ArgumentException($"{GetType().Name}: stepInEpoch must be in [0, {stepsPerEpoch}), got {stepInEpoch}");
        return (long)epoch * stepsPerEpoch + stepInEpoch;
    }

    /// <summary>(step + 1) / warmupSteps during the warmup epochs, else 1.</summary>
    protected double WarmupFactor(int epoch, int stepInEpoch, int stepsPerEpoch)
    {
        long step = GlobalStep(epoch, stepInEpoch, stepsPerEpoch);
        long warm = (long)WarmupEpochs * stepsPerEpoch;
        return step < warm ? (step + 1) / (double)warm : 1.0;
    }

    /// <summary>Builds a schedule from command-line style arguments (kind: step | plateau | cosine, any case).
    /// step: drops by 10x at the epochs in <paramref name="steps"/> (default: half and three quarters of
    /// <paramref name="epochs"/>, He et al.'s CIFAR recipe); plateau: drops by 10x after 10 epochs without
    /// improvement (<paramref name="steps"/> unused); cosine: decays to 0 over <paramref name="epochs"/>.</summary>
    public static LrSchedule Create(string kind, double baseLr, int epochs, int[]? steps, int warmupEpochs) =>
        Create(kind, baseLr, epochs, steps, warmupEpochs, patience: 10);

    /// <summary>As the other overload, with the plateau schedule's patience (in epochs).</summary>
    public static LrSchedule Create(string kind, double baseLr, int epochs, int[]? steps, int warmupEpochs, int patience)
    {
        ArgumentNullException.ThrowIfNull(kind);
        if (epochs <= 0) throw new ArgumentException($"LrSchedule.Create: epochs must be positive, got {epochs}");
        switch (kind.Trim().ToLowerInvariant())
        {
            case "step":
                var ms = steps is { Length: > 0 } ? steps : [Math.Max(1, epochs / 2), Math.Max(1, epochs * 3 / 4)];
                return new StepLr(baseLr, ms, 0.1, warmupEpochs);
            case "plateau":
                return new PlateauLr(baseLr, patience: patience, warmupEpochs: warmupEpochs);
            case "cosine":
                return new CosineLr(baseLr, epochs, warmupEpochs);
            default:
                throw new ArgumentException($"LrSchedule.Create: unknown schedule '{kind}' (expected step, plateau or cosine)");
        }
    }

    public override string ToString() => $"{Kind}(base lr {BaseLr}, warmup {WarmupEpochs} epochs)";
}

/// <summary>lr = base * gamma^(number of milestones &lt;= epoch), as torch's MultiStepLR (a milestone listed twice counts twice).</summary>
public sealed class StepLr : LrSchedule
{
    private readonly int[] _milestones;

    public StepLr(double baseLr, IEnumerable<int> milestones, double gamma = 0.1, int warmupEpochs = 0) : base(baseLr, warmupEpochs)
    {
        ArgumentNullException.ThrowIfNull(milestones);
        _milestones = milestones.Order().ToArray();
        if (_milestones.Any(m => m < 0)) throw new ArgumentException($"StepLr: milestones must not be negative, got [{string.Join(", ", _milestones)}]");
        if (!(gamma > 0) || double.IsInfinity(gamma)) throw new ArgumentException($"StepLr: gamma must be positive and finite, got {gamma}");
        Gamma = gamma;
    }

    public IReadOnlyList<int> Milestones => _milestones;
    public double Gamma { get; }
    public override string Kind => "step";

    public override double LearningRate(int epoch, int stepInEpoch, int stepsPerEpoch)
    {
        double w = WarmupFactor(epoch, stepInEpoch, stepsPerEpoch);
        int drops = _milestones.Count(m => m <= epoch);
        return BaseLr * Math.Pow(Gamma, drops) * w;
    }
}

/// <summary>Linear warmup per step, then a cosine from base to minLr per step over the remaining epochs.</summary>
public sealed class CosineLr : LrSchedule
{
    public CosineLr(double baseLr, int totalEpochs, int warmupEpochs = 0, double minLr = 0) : base(baseLr, warmupEpochs)
    {
        if (totalEpochs <= 0) throw new ArgumentException($"CosineLr: total epochs must be positive, got {totalEpochs}");
        if (warmupEpochs >= totalEpochs) throw new ArgumentException($"CosineLr: warmup ({warmupEpochs} epochs) must be shorter than training ({totalEpochs} epochs)");
        if (!(minLr >= 0 && minLr <= baseLr)) throw new ArgumentException($"CosineLr: minLr must be in [0, base lr {baseLr}], got {minLr}");
        TotalEpochs = totalEpochs;
        MinLr = minLr;
    }

    public int TotalEpochs { get; }
    public double MinLr { get; }
    public override string Kind => "cosine";

    public override double LearningRate(int epoch, int stepInEpoch, int stepsPerEpoch)
    {
        long step = GlobalStep(epoch, stepInEpoch, stepsPerEpoch);
        long warm = (long)WarmupEpochs * stepsPerEpoch;
        if (step < warm) return BaseLr * (step + 1) / warm;
        long decay = (long)TotalEpochs * stepsPerEpoch - warm;
        double t = Math.Min(1.0, (step - warm) / (double)decay);
        return MinLr + (BaseLr - MinLr) * 0.5 * (1 + Math.Cos(Math.PI * t));
    }
}
