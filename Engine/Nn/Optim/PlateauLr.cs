// Reduce-on-plateau schedule, as torch's ReduceLROnPlateau in mode "min" with threshold_mode
// "rel": an error counts as an improvement when it is below best * (1 - threshold); after more
// than `patience` epochs without one the rate is multiplied by `factor` (not below minLr, and not
// at all when the change would be under 1e-8), then `cooldown` epochs pass before counting again.
// This is He et al.'s "divide by 10 when the error plateaus".
namespace ResidualEngine.Nn.Optim;

public sealed class PlateauLr : LrSchedule
{
    private const double MinChange = 1e-8; // PyTorch's eps
    private double _lr;
    private double _best;
    private bool _hasBest;
    private int _badEpochs;
    private int _cooldownLeft;

    public PlateauLr(double baseLr, double factor = 0.1, int patience = 10, double threshold = 1e-4,
        double minLr = 0, int cooldown = 0, int warmupEpochs = 0) : base(baseLr, warmupEpochs)
    {
        if (!(factor > 0 && factor < 1)) throw new ArgumentException($"PlateauLr: factor must be in (0, 1), got {factor}");
        if (patience < 0) throw new ArgumentException($"PlateauLr: patience must not be negative, got {patience}");
        if (!(threshold >= 0 && threshold < 1)) throw new ArgumentException($"PlateauLr: threshold must be in [0, 1), got {threshold}");
        if (!(minLr >= 0) || double.IsInfinity(minLr)) throw new ArgumentException($"PlateauLr: minLr must be >= 0 and finite, got {minLr}");
        if (cooldown < 0) throw new ArgumentException($"PlateauLr: cooldown must not be negative, got {cooldown}");
        Factor = factor;
        Patience = patience;
        Threshold = threshold;
        MinLr = minLr;
        Cooldown = cooldown;
        _lr = baseLr;
    }

    public double Factor { get; }
    public int Patience { get; }
    public double Threshold { get; }
    public double MinLr { get; }
    public int Cooldown { get; }
    public override string Kind => "plateau";

    /// <summary>The rate after the reductions so far (before any warmup factor).</summary>
    public double CurrentLr => _lr;

    public override double LearningRate(int epoch, int stepInEpoch, int stepsPerEpoch) =>
        _lr * WarmupFactor(epoch, stepInEpoch, stepsPerEpoch);

    public override void OnValidation(double valError)
    {
        // The first best is +infinity, as in PyTorch; NaN never improves (every comparison is false).
        if (valError < (_hasBest ? _best * (1 - Threshold) : double.PositiveInfinity))
        {
            _best = valError;
            _hasBest = true;
            _badEpochs = 0;
        }
        else _badEpochs++;

        if (_cooldownLeft > 0)
        {
            _cooldownLeft--;
            _badEpochs = 0;
        }

        if (_badEpochs > Patience)
        {
            double next = Math.Max(_lr * Factor, MinLr);
            if (_lr - next > MinChange) _lr = next;
            _cooldownLeft = Cooldown;
            _badEpochs = 0;
        }
    }

    private static readonly string[] Keys = ["lr", "best", "has_best", "num_bad_epochs", "cooldown_counter"];

    public override IReadOnlyDictionary<string, double> State() => new Dictionary<string, double>
    {
        ["lr"] = _lr,
        // "No best yet" is a flag rather than +infinity so the state stays JSON-friendly.
        ["best"] = _hasBest ? _best : 0,
        ["has_best"] = _hasBest ? 1 : 0,
        ["num_bad_epochs"] = _badEpochs,
        ["cooldown_counter"] = _cooldownLeft,
    };

    public override void LoadState(IReadOnlyDictionary<string, double> state)
    {
        ArgumentNullException.ThrowIfNull(state);
        var unknown = state.Keys.Except(Keys).ToList();
        if (unknown.Count > 0) throw new ArgumentException($"PlateauLr.LoadState: unexpected state keys {string.Join(", ", unknown)}");
        var missing = Keys.Where(k => !state.ContainsKey(k)).ToList();
        if (missing.Count > 0) throw new ArgumentException($"PlateauLr.LoadState: missing state keys {string.Join(", ", missing)}");
        double lr = state["lr"], bad = state["num_bad_epochs"], cool = state["cooldown_counter"];
        if (!(lr >= 0) || double.IsInfinity(lr)) throw new ArgumentException($"PlateauLr.LoadState: invalid lr {lr}");
        if (!(bad >= 0 && bad <= int.MaxValue && bad == Math.Floor(bad))) throw new ArgumentException($"PlateauLr.LoadState: invalid num_bad_epochs {bad}");
        if (!(cool >= 0 && cool <= int.MaxValue && cool == Math.Floor(cool))) throw new ArgumentException($"PlateauLr.LoadState: invalid cooldown_counter {cool}");
        _lr = lr;
        _hasBest = state["has_best"] != 0;
        _best = _hasBest ? state["best"] : 0;
        _badEpochs = (int)bad;
        _cooldownLeft = (int)cool;
    }
}
