// The small training loop of the experiments: SGD (momentum 0.9, weight decay 1e-4) over a seeded
// DataLoader, learning rate divided by 10 at 50% and 75% of the iterations (He et al.'s CIFAR
// schedule, scaled to the run; optionally a warm-up at a lower rate), and at regular points the training error of the mini-batches
// since the last point (train mode, as the paper's thin curves) and the validation error (eval
// mode), through the shared TrainingStep and Evaluator. No checkpoints: an experiment run is short and is simply re-run.
using System.Diagnostics;
using ResidualEngine.Data;
using ResidualEngine.Nn;
using ResidualEngine.Nn.Optim;
using ResidualEngine.Training;

namespace ResidualEngine.Tools.Experiments;

/// <summary>
/// He et al.'s CIFAR protocol scaled to a budget: SGD (momentum 0.9, weight decay 1e-4) at
/// <paramref name="LearningRate"/>, divided by 10 at 50% and 75% of the iterations (the paper:
/// 32k and 48k of 64k). The length is <see cref="Iterations"/> when set, else whole epochs.
/// </summary>
public sealed record Schedule(int Epochs, int BatchSize, double LearningRate, int EvalPoints, int Seed)
{
    public const double Momentum = 0.9, WeightDecay = 1e-4;

    /// <summary>Total iterations (mini-batches); 0 = <see cref="Epochs"/> whole epochs.</summary>
    public int Iterations { get; init; }
    /// <summary>The first iterations run at <see cref="WarmupLearningRate"/> (He et al. warm ResNet-110 up at 0.01 for ~400 iterations).</summary>
    public int WarmupIterations { get; init; }
    public double WarmupLearningRate { get; init; } = 0.01;
    /// <summary>Validation images used at the intermediate points (0 = all); the last point always uses the whole split.</summary>
    public int EvalImages { get; init; }

    public int TotalIterations(int batchesPerEpoch) => Iterations > 0 ? Iterations : batchesPerEpoch * Epochs;

    /// <summary>The learning rate of iteration <paramref name="iteration"/> (0-based) of <paramref name="total"/>.</summary>
    public double LearningRateAt(int iteration, int total) =>
        iteration < WarmupIterations ? WarmupLearningRate
        : LearningRate * (iteration >= total * 3 / 4 ? 0.01 : iteration >= total / 2 ? 0.1 : 1.0);

    public string Describe(int total, int perEpoch) => FormattableString.Invariant(
        $"{total} iterations of batch {BatchSize} ({total / (double)perEpoch:0.##} epochs), SGD lr {LearningRate} divided by 10 at iterations {total / 2} and {total * 3 / 4}") +
        (WarmupIterations > 0 ? FormattableString.Invariant($" (lr {WarmupLearningRate} for the first {WarmupIterations})") : "") +
        FormattableString.Invariant($", momentum {Momentum}, weight decay {WeightDecay}");
}

/// <summary>One evaluation point: iteration, epoch (fractional), errors in percent, mean training loss, learning rate.
/// TrainError: the mini-batches since the previous point, in train mode (augmented); ValError: eval mode on the
/// validation subset (the whole split at the last point).</summary>
public sealed record CurvePoint(int Iteration, double Epoch, double TrainError, double ValError, double TrainLoss, double LearningRate);

public sealed record TrainRun(string Model, long Parameters, IReadOnlyList<CurvePoint> Curve, double Seconds, int Iterations, int BatchSize)
{
    public CurvePoint Final => Curve[^1];
    public double BestValError => Curve.Min(p => p.ValError);
    public double ImagesPerSecond => Iterations * (double)BatchSize / Seconds;
    /// <summary>The seed the run used (weights and data order).</summary>
    public int Seed { get; init; }
    /// <summary>Seconds spent evaluating (included in <see cref="Seconds"/>).</summary>
    public double EvalSeconds { get; init; }
}

public static class ExperimentTrainer
{
    /// <summary>Trains <paramref name="model"/> in place; <paramref name="onStep"/> (optional) runs after every step.</summary>
    public static TrainRun Train(string name, Module model, ExperimentData data, Schedule s, Device device, Action<string>? log = null,
        Action<int>? onStep = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(s);
        using var train = data.TrainLoader(s.BatchSize, s.Seed);
        int evalBatch = Math.Max(s.BatchSize, 100);
        using var val = data.ValLoader(evalBatch, s.EvalImages);
        int perEpoch = train.BatchesPerEpoch, total = s.TotalIterations(perEpoch);
        int every = Math.Max(1, total / Math.Max(1, s.EvalPoints));
        using var sgd = Sgd.ForModule(model, s.LearningRate, Schedule.Momentum, Schedule.WeightDecay);
        var step = new TrainingStep(model, sgd);
        var curve = new List<CurvePoint>();
        var sw = Stopwatch.StartNew();
        var evalTime = new Stopwatch();
        int iteration = 0, wrong = 0, seen = 0;
        double lossSum = 0;
        int lossCount = 0;
        model.Train();
        for (int epoch = 0; iteration < total; epoch++)
        {
            foreach (var batch in train.Epoch(epoch))
            {
                using (batch)
                {
                    using var scope = TensorScope.Begin();
                    var r = step.Run(batch, s.LearningRateAt(iteration, total));
                    wrong += Errors(r.Logits, batch.Labels);
                    seen += batch.Count;
                    double l = r.LossValue();
                    if (double.IsFinite(l)) { lossSum += l; lossCount++; }
                }
                iteration++;
                onStep?.Invoke(iteration);
                if (iteration % every == 0 || iteration == total)
                {
                    evalTime.Start();
                    double valError;
                    if (iteration == total && s.EvalImages > 0 && s.EvalImages < data.ValCount)
                    {
                        using var full = data.ValLoader(evalBatch);
                        valError = Evaluate(model, full);
                    }
                    else valError = Evaluate(model, val);
                    evalTime.Stop();
                    var p = new CurvePoint(iteration, iteration / (double)perEpoch, 100.0 * wrong / Math.Max(1, seen), valError,
                        lossCount > 0 ? lossSum / lossCount : double.NaN, sgd.LearningRate);
                    curve.Add(p);
                    log?.Invoke(FormattableString.Invariant(
                        $"  {name} iter {iteration}/{total} (epoch {p.Epoch:F2}): train error {p.TrainError:F2}%, test error {p.ValError:F2}%{(iteration == total ? " (whole split)" : "")}, loss {p.TrainLoss:F3}, lr {p.LearningRate:G3}, {sw.Elapsed.TotalSeconds:F0} s"));
                    wrong = seen = lossCount = 0;
                    lossSum = 0;
                }
                if (iteration >= total) break;
            }
        }
        return new TrainRun(name, model.ParameterCount(), curve, sw.Elapsed.TotalSeconds, iteration, s.BatchSize)
        {
            Seed = s.Seed,
            EvalSeconds = evalTime.Elapsed.TotalSeconds,
        };
    }

    /// <summary>Top-1 error in percent over a loader (the shared evaluation: eval mode, no gradients); restores training mode.</summary>
    public static double Evaluate(Module model, DataLoader loader)
    {
        var r = Evaluator.Evaluate(model, loader);
        return r.Samples == 0 ? 0 : 100.0 * r.Top1Error;
    }

    /// <summary>Samples whose arg-max logit is not the label (a NaN row counts as wrong).</summary>
    public static int Errors(Tensor logits, Tensor labels)
    {
        ArgumentNullException.ThrowIfNull(logits);
        ArgumentNullException.ThrowIfNull(labels);
        var l = logits.ToFloats();
        var y = labels.ToDoubles();
        int n = logits.Shape[0], k = logits.Shape[1], wrong = 0;
        for (int i = 0; i < n; i++)
        {
            int best = -1;
            float bestValue = float.NegativeInfinity;
            for (int j = 0; j < k; j++)
                if (l[i * k + j] > bestValue) { bestValue = l[i * k + j]; best = j; }
            if (best != (int)y[i]) wrong++;
        }
        return wrong;
    }
}
