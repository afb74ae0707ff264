// --model-ema: an exponential moving average of the weights and buffers, with the semantics of
// torchvision's reference recipe (references/classification: utils.ExponentialMovingAverage, an
// AveragedModel with use_buffers=True, and how train.py drives it):
//   - the decay is adjusted as train.py does: alpha = min(1, (1 - decay) * batch * steps / epochs)
//     (one process), decay' = 1 - alpha, so the average's horizon is independent of those;
//   - after the optimizer step of every batch whose index in its epoch is a multiple of `steps`,
//     each parameter and floating-point buffer (BN's running statistics) becomes
//     decay' * ema + (1 - decay') * value, in float32 with both factors rounded to float32 as torch
//     rounds Python scalars; the first update (n_averaged = 0) copies instead;
//   - during the warm-up epochs (epoch < --lr-warmup-epochs) n_averaged is reset after every
//     update, so the average keeps copying the weights until the warm-up is over.
// One difference: torch also "averages" BN's integer batch counter (in float, truncated back);
// we copy it. Nothing reads it (our BN momentum is fixed), and a copy keeps it meaningful.
// The update is one in-place Axpby of the pointwise family per tensor, on the model's device: no
// host round trip. The average lives in a second model of the same architecture (Shadow), which
// evaluation uses as it is; checkpoints hold its state under "model_ema." plus n_averaged.
using ResidualEngine.Nn;
using ResidualEngine.Pointwise;

namespace ResidualEngine.Training;

public sealed class ModelEma : ITrainingHook, IDisposable
{
    /// <summary>The name, under the checkpoint's "model_ema." prefix, of the update counter.</summary>
    public const string CounterName = "n_averaged";

    private readonly Module _model;
    private readonly (Tensor Ema, Tensor Model)[] _pairs;

    /// <param name="model">The model being trained.</param>
    /// <param name="shadow">A model of the same architecture that holds the average (owned by this object from now on); starts as a copy.</param>
    /// <param name="decay">The decay per update, already adjusted (see <see cref="AdjustedDecay"/>).</param>
    /// <param name="everySteps">Update after the batches whose index in the epoch is a multiple of this.</param>
    /// <param name="warmupEpochs">Epochs during which the average copies the weights.</param>
    public ModelEma(Module model, Module shadow, double decay, int everySteps = 1, int warmupEpochs = 0)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(shadow);
        if (!(decay >= 0 && decay <= 1)) throw new ArgumentException($"ModelEma: decay must be in [0, 1], got {decay}", nameof(decay));
        if (everySteps < 1) throw new ArgumentException($"ModelEma: everySteps must be at least 1, got {everySteps}", nameof(everySteps));
        if (warmupEpochs < 0) throw new ArgumentException($"ModelEma: warmupEpochs must be >= 0, got {warmupEpochs}", nameof(warmupEpochs));
        var own = model.StateDict();
        var avg = shadow.StateDict();
        if (!own.Keys.SequenceEqual(avg.Keys, StringComparer.Ordinal) || own.Any(kv => avg[kv.Key].Shape != kv.Value.Shape || avg[kv.Key].Device != kv.Value.Device))
            throw new ArgumentException("ModelEma: the shadow model must have the model's tensors (names, shapes and device)");
        _model = model;
        Shadow = shadow;
        Decay = decay;
        EverySteps = everySteps;
        WarmupEpochs = warmupEpochs;
        _pairs = own.Select(kv => (avg[kv.Key], kv.Value)).ToArray();
        shadow.LoadStateDict(own);
        shadow.Eval();
    }

    /// <summary>The averaged model (evaluation mode).</summary>
    public Module Shadow { get; }
    public double Decay { get; }
    public int EverySteps { get; }
    public int WarmupEpochs { get; }

    /// <summary>torch's n_averaged: updates since the average last copied the weights.</summary>
    public long Averaged { get; private set; }

    /// <summary>The epoch being trained, from 0 (set by the training loop; decides the warm-up).</summary>
    public int Epoch { get; set; }

    /// <summary>torchvision's train.py: decay' = 1 - min(1, (1 - decay) * worldSize * batchSize * steps / epochs).</summary>
    public static double AdjustedDecay(double decay, int batchSize, int steps, int epochs, int worldSize = 1)
    {
        if (!(decay >= 0 && decay <= 1)) throw new ArgumentException($"ModelEma: decay must be in [0, 1], got {decay}", nameof(decay));
        if (batchSize < 1 || steps < 1 || epochs < 1 || worldSize < 1)
            throw new ArgumentException($"ModelEma: batch size, steps, epochs and world size must be positive, got {batchSize}, {steps}, {epochs}, {worldSize}");
        double adjust = (double)worldSize * batchSize * steps / epochs;
        return 1.0 - Math.Min(1.0, (1.0 - decay) * adjust);
    }

    /// <summary>After the optimizer step: updates when the batch's index in its epoch (else the step count) is a multiple of <see cref="EverySteps"/>.</summary>
    public void AfterOptimizerStep(StepContext step)
    {
        ArgumentNullException.ThrowIfNull(step);
        AfterBatch(step.BatchIndex >= 0 ? step.BatchIndex : step.StepIndex);
    }

    /// <summary>What follows the optimizer step of batch <paramref name="index"/> of the epoch: an update when it is a multiple of <see cref="EverySteps"/>.</summary>
    public void AfterBatch(long index)
    {
        if (index < 0) throw new ArgumentOutOfRangeException(nameof(index), index, "batch index must be >= 0");
        if (index % EverySteps == 0) Update();
    }

    /// <summary>One update of the average from the model's current tensors.</summary>
    public void Update()
    {
        foreach (var (ema, value) in _pairs)
        {
            if (ema.Device != value.Device) ema.MoveTo(value.Device); // the model moved since
            if (Averaged == 0 || !ema.DType.IsFloat()) ema.Backend.Copy(ema, value);
            else ema.Backend.Map<Axpby>(ema, ema, value, Broadcast.Same(ema), Decay, 1.0 - Decay);
        }
        Averaged++;
        if (Epoch < WarmupEpochs) Averaged = 0;
    }

    /// <summary>The average's tensors by state-dict name plus the counter (F64 scalar on the CPU), for a checkpoint.</summary>
    public IReadOnlyList<(string Name, Tensor Tensor)> StateTensors()
    {
        var list = Shadow.StateDict().Select(kv => (kv.Key, kv.Value)).ToList();
        _counter ??= TensorScope.Detach(Tensor.Zeros(Shape.Scalar, DType.F64, Device.Cpu));
        _counter.Backend.Fill(_counter, Averaged);
        list.Add((CounterName, _counter));
        return list;
    }

    private Tensor? _counter;

    /// <summary>Restores what <see cref="StateTensors"/> returned (names without the checkpoint prefix).</summary>
    public void LoadState(IReadOnlyDictionary<string, Tensor> state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (!state.TryGetValue(CounterName, out var counter) || counter.Numel != 1)
            throw new ArgumentException($"ModelEma: the saved average has no '{CounterName}' counter");
        var weights = state.Where(kv => kv.Key != CounterName).ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);
        Shadow.LoadStateDict(weights);
        Averaged = (long)counter.Item();
    }

    public void Dispose()
    {
        _counter?.Dispose();
        _counter = null;
        Shadow.Dispose();
    }
}
