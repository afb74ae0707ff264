// Learning-rate schedules: a pure function of the position in training (epoch, step in epoch)
// plus, for the plateau schedule, the validation errors reported so far. Names follow torch's
// (StepLR, MultiStepLR, CosineAnnealingLR, ExponentialLR, ReduceLROnPlateau). Every schedule can
// warm up per step over its first epochs, as torchvision's reference script does with LinearLR or
// ConstantLR: linear multiplies the rate by decay + (1 - decay) * step / warmupSteps (torch's
// LinearLR with start_factor = decay, evaluated per step; decay 0, which torch refuses, ramps as
// (step + 1) / warmupSteps instead so that no step has a zero rate), constant by decay until the
// warm-up ends. Mutable state is a flat map of
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

    /// <summary>How the warm-up epochs scale the rate (see the file's comment).</summary>
    public WarmupMethod WarmupMethod { get; init; } = WarmupMethod.Linear;

    /// <summary>The warm-up's starting factor (torchvision's --lr-warmup-decay); in [0, 1].</summary>
    public double WarmupDecay
    {
        get => _warmupDecay;
        init
        {
            if (!(value >= 0 && value <= 1)) throw new ArgumentException($"{GetType().Name}: warm-up decay must be in [0, 1], got {value}");
            _warmupDecay = value;
        }
    }

    private readonly double _warmupDecay;

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

    /// <summary>The warm-up factor (see the file's comment) during the warm-up epochs, else 1.</summary>
    protected double WarmupFactor(int epoch, int stepInEpoch, int stepsPerEpoch)
    {
        long step = GlobalStep(epoch, stepInEpoch, stepsPerEpoch);
        long warm = (long)WarmupEpochs * stepsPerEpoch;
        if (step >= warm) return 1.0;
        if (WarmupMethod == WarmupMethod.Constant) return WarmupDecay;
        return WarmupDecay > 0 ? WarmupDecay + (1 - WarmupDecay) * step / warm : (step + 1) / (double)warm;
    }

    /// <summary>Builds a schedule from command-line style arguments (kind: step | plateau | cosine, any case).
    /// step: drops by 10x at the epochs in <paramref name="steps"/> (default: half and three quarters of
    /// <paramref name="epochs"/>, He et al.'s CIFAR recipe); plateau: drops by 10x after 10 epochs without
    /// improvement (<paramref name="steps"/> unused); cosine: decays to 0 over <paramref name="epochs"/>.</summary>
    public static LrSchedule Create(string kind, double baseLr, int epochs, int[]? steps, int warmupEpochs) =>
        Create(kind, baseLr, epochs, steps, warmupEpochs, patience: 10);

    /// <summary>As the other overload, with the plateau schedule's patience (in epochs).</summary>
    public static LrSchedule Create(string kind, double baseLr, int epochs, int[]? steps, int warmupEpochs, int patience) =>
        Create(new LrScheduleSpec(kind, baseLr, epochs, warmupEpochs) { Milestones = steps, Patience = patience });

    /// <summary>Builds a schedule by name: torch's steplr (every StepSize epochs after the warm-up, by Gamma), multisteplr or step (at the
    /// Milestones, default half and three quarters of the epochs, He et al.'s CIFAR recipe), cosineannealinglr or cosine
    /// (to MinLr over the epochs after the warm-up), exponentiallr (Gamma per epoch), plateau (by Gamma after Patience
    /// epochs without improvement).</summary>
    public static LrSchedule Create(LrScheduleSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        if (spec.Epochs <= 0) throw new ArgumentException($"LrSchedule.Create: epochs must be positive, got {spec.Epochs}");
        int epochs = spec.Epochs, warm = spec.WarmupEpochs;
        LrSchedule s = (spec.Kind ?? throw new ArgumentNullException(nameof(spec))).Trim().ToLowerInvariant() switch
        {
            "steplr" => spec.StepSize > 0
                ? new StepLr(spec.BaseLr, Enumerable.Range(1, Math.Max(1, epochs / spec.StepSize)).Select(i => warm + i * spec.StepSize), spec.Gamma, warm) { WarmupMethod = spec.WarmupMethod, WarmupDecay = spec.WarmupDecay }
                : throw new ArgumentException($"LrSchedule.Create: steplr needs a step size of at least 1 epoch, got {spec.StepSize}"),
            "step" or "multisteplr" => new StepLr(spec.BaseLr, spec.Milestones is { Length: > 0 } ms ? ms : [Math.Max(1, epochs / 2), Math.Max(1, epochs * 3 / 4)], spec.Gamma, warm)
                { WarmupMethod = spec.WarmupMethod, WarmupDecay = spec.WarmupDecay },
            "plateau" or "reducelronplateau" => new PlateauLr(spec.BaseLr, factor: spec.Gamma, patience: spec.Patience, warmupEpochs: warm)
                { WarmupMethod = spec.WarmupMethod, WarmupDecay = spec.WarmupDecay },
            "cosine" or "cosineannealinglr" => new CosineLr(spec.BaseLr, epochs, warm, spec.MinLr) { WarmupMethod = spec.WarmupMethod, WarmupDecay = spec.WarmupDecay },
            "exponentiallr" => new ExponentialLr(spec.BaseLr, spec.Gamma, warm) { WarmupMethod = spec.WarmupMethod, WarmupDecay = spec.WarmupDecay },
            _ => throw new ArgumentException($"LrSchedule.Create: unknown schedule '{spec.Kind}' (expected steplr, multisteplr, cosineannealinglr, exponentiallr or plateau; step and cosine are accepted too)"),
        };
        return s;
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

/// <summary>Warm-up, then a cosine from base to minLr per step over the remaining epochs (torch's CosineAnnealingLR with
/// T_max = epochs - warm-up, evaluated per step rather than per epoch).</summary>
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
        if (step < warm) return BaseLr * WarmupFactor(epoch, stepInEpoch, stepsPerEpoch);
        long decay = (long)TotalEpochs * stepsPerEpoch - warm;
        double t = Math.Min(1.0, (step - warm) / (double)decay);
        return MinLr + (BaseLr - MinLr) * 0.5 * (1 + Math.Cos(Math.PI * t));
    }
}

/// <summary>lr = base * gamma^epoch, as torch's ExponentialLR stepped once per epoch.</summary>
public sealed class ExponentialLr : LrSchedule
{
    public ExponentialLr(double baseLr, double gamma, int warmupEpochs = 0) : base(baseLr, warmupEpochs)
    {
        if (!(gamma > 0 && gamma <= 1)) throw new ArgumentException($"ExponentialLr: gamma must be in (0, 1], got {gamma}");
        Gamma = gamma;
    }

    public double Gamma { get; }
    public override string Kind => "exponential";

    /// <summary>After the warm-up the exponent counts from the warm-up's end, as torch's SequentialLR restarts the main scheduler.</summary>
    public override double LearningRate(int epoch, int stepInEpoch, int stepsPerEpoch) =>
        BaseLr * Math.Pow(Gamma, Math.Max(0, epoch - WarmupEpochs)) * WarmupFactor(epoch, stepInEpoch, stepsPerEpoch);
}

public enum WarmupMethod { Linear, Constant }

/// <summary>What LrSchedule.Create builds: the schedule's name and every knob any schedule takes (unused ones are ignored).</summary>
public sealed record LrScheduleSpec(string Kind, double BaseLr, int Epochs, int WarmupEpochs = 0)
{
    public int[]? Milestones { get; init; }
    public int StepSize { get; init; }
    public double Gamma { get; init; } = 0.1;
    public double MinLr { get; init; }
    public int Patience { get; init; } = 10;
    public WarmupMethod WarmupMethod { get; init; } = WarmupMethod.Linear;
    public double WarmupDecay { get; init; }
}
