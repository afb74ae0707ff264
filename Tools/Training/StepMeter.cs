// Reading the loss is the caller's choice: a training step only hands its loss and logits over
// (as views that keep their storage alive), and the meter copies them to the host every
// LogEvery steps, or when the epoch ends, a checkpoint is due or a stop is asked for. On a GPU
// that is one synchronisation per window instead of one per step. The meter keeps two sets of
// sums: the epoch's (for the end-of-epoch row) and the current window's (for the logged row);
// both go into checkpoints so a resumed run continues them exactly. In data-parallel training the
// pending steps' sums (loss x samples, correct, samples) are added over ranks by Reduce before they
// are used, so every rank holds the same numbers (those of the global batches) and reaches the same
// verdict on a non-finite loss at the same step.
namespace ResidualEngine.Training;

/// <summary>The result of reading pending steps: the first non-finite loss, if any.</summary>
public readonly record struct FlushResult(int Steps, long? NonFiniteStep, double NonFiniteValue);

public sealed class StepMeter : IDisposable
{
    private readonly List<Pending> _pending = new();

    private sealed record Pending(long GlobalStep, Tensor Loss, Tensor Logits, Tensor Labels, int Count) : IDisposable
    {
        public void Dispose()
        {
            Loss.Dispose();
            Logits.Dispose();
            Labels.Dispose();
        }
    }

    public EpochSums Epoch { get; set; } = new();
    public EpochSums Window { get; set; } = new();
    /// <summary>Optimizer steps in the current window (for the logged row).</summary>
    public int WindowSteps { get; set; }
    public int PendingCount => _pending.Count;

    /// <summary>Sums an array over every rank (in place); null in a single process.</summary>
    public Action<double[]>? Reduce { get; set; }

    /// <summary>Hands over one step's outputs; views of them are kept (owned by the meter) until the next flush.</summary>
    public void Add(long globalStep, Tensor loss, Tensor logits, Tensor labels, int count)
    {
        ArgumentNullException.ThrowIfNull(loss);
        ArgumentNullException.ThrowIfNull(logits);
        ArgumentNullException.ThrowIfNull(labels);
        _pending.Add(new Pending(globalStep,
            TensorScope.Detach(loss.Detach()), TensorScope.Detach(logits.Detach()), TensorScope.Detach(labels.Detach()), count));
    }

    /// <summary>Copies pending values to the host and adds them to the sums, stopping at the first non-finite loss.</summary>
    public FlushResult Flush()
    {
        try
        {
            // Per pending step: loss x samples, correct, samples (added over ranks when reducing).
            var v = new double[3 * _pending.Count];
            for (int i = 0; i < _pending.Count; i++)
            {
                var p = _pending[i];
                double loss = p.Loss.Item();
                v[3 * i] = loss * p.Count;
                v[3 * i + 1] = double.IsFinite(loss) ? TopKCorrect(p.Logits, p.Labels, 1) : 0;
                v[3 * i + 2] = p.Count;
            }
            Reduce?.Invoke(v);
            int n = 0;
            for (int i = 0; i < _pending.Count; i++)
            {
                double lossSum = v[3 * i], samples = v[3 * i + 2];
                if (!double.IsFinite(lossSum)) return new FlushResult(n, _pending[i].GlobalStep, lossSum / samples);
                long correct = (long)v[3 * i + 1];
                foreach (var s in new[] { Epoch, Window })
                {
                    s.LossSum += lossSum;
                    s.Correct += correct;
                    s.Samples += (long)samples;
                }
                WindowSteps++;
                n++;
            }
            return new FlushResult(n, null, 0);
        }
        finally
        {
            foreach (var p in _pending) p.Dispose();
            _pending.Clear();
        }
    }

    /// <summary>Starts a new logging window (after a row was written).</summary>
    public void ResetWindow()
    {
        Window = new EpochSums();
        WindowSteps = 0;
    }

    /// <summary>Samples whose label is among the k highest logits (ties go to the lower class index, as torch.topk on CPU).</summary>
    public static long TopKCorrect(Tensor logits, Tensor labels, int k)
    {
        ArgumentNullException.ThrowIfNull(logits);
        ArgumentNullException.ThrowIfNull(labels);
        return TopKCorrect(logits.ToFloats(), labels.ToDoubles(), logits.Shape[^1], k);
    }

    public static long TopKCorrect(ReadOnlySpan<float> scores, ReadOnlySpan<double> labels, int classes, int k)
    {
        if (classes < 1) throw new ArgumentException($"TopKCorrect: classes must be positive, got {classes}", nameof(classes));
        if (scores.Length != labels.Length * classes)
            throw new ArgumentException($"TopKCorrect: {scores.Length} scores do not match {labels.Length} labels x {classes} classes");
        long correct = 0;
        for (int i = 0; i < labels.Length; i++)
        {
            var row = scores.Slice(i * classes, classes);
            int label = (int)labels[i];
            if ((uint)label >= (uint)classes) throw new ArgumentException($"TopKCorrect: label {label} outside 0..{classes - 1}");
            float mine = row[label];
            // Rank of the true class: how many classes beat it (ties with a lower index count as beating it).
            int better = 0;
            for (int c = 0; c < classes && better < k; c++)
                if (row[c] > mine || (row[c] == mine && c < label) || float.IsNaN(row[c])) better++;
            if (better < k && !float.IsNaN(mine)) correct++;
        }
        return correct;
    }

    public void Dispose()
    {
        foreach (var p in _pending) p.Dispose();
        _pending.Clear();
    }
}
