// The small training loop of the experiments: SGD (momentum 0.9, weight decay 1e-4) over a seeded
// DataLoader, learning rate divided by 10 at 50% and 75% of the iterations (He et al.'s CIFAR
// schedule, scaled to the run), and at regular points the training error of the mini-batches
// since the last point (train mode, as the paper's thin curves) and the validation error (eval
// mode), through the shared TrainingStep and Evaluator. No checkpoints: an experiment run is short and is simply re-run.
using System.Diagnostics;
using ResidualEngine.Data;
using ResidualEngine.Nn;
using ResidualEngine.Nn.Optim;
using ResidualEngine.Training;

namespace ResidualEngine.Tools.Experiments;

public sealed record Schedule(int Epochs, int BatchSize, double LearningRate, int EvalPoints, int Seed)
{
    public const double Momentum = 0.9, WeightDecay = 1e-4;
}

/// <summary>One evaluation point: iteration, epoch (fractional), errors in percent, mean training loss, learning rate.</summary>
public sealed record CurvePoint(int Iteration, double Epoch, double TrainError, double ValError, double TrainLoss, double LearningRate);

public sealed record TrainRun(string Model, long Parameters, IReadOnlyList<CurvePoint> Curve, double Seconds, int Iterations, int BatchSize)
{
    public CurvePoint Final => Curve[^1];
    public double BestValError => Curve.Min(p => p.ValError);
    public double ImagesPerSecond => Iterations * (double)BatchSize / Seconds;
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
        using var val = data.ValLoader(Math.Max(s.BatchSize, 100));
        int perEpoch = train.BatchesPerEpoch, total = perEpoch * s.Epochs;
        int every = Math.Max(1, total / Math.Max(1, s.EvalPoints));
        using var sgd = Sgd.ForModule(model, s.LearningRate, Schedule.Momentum, Schedule.WeightDecay);
        var step = new TrainingStep(model, sgd);
        var curve = new List<CurvePoint>();
        var sw = Stopwatch.StartNew();
        int iteration = 0, wrong = 0, seen = 0;
        double lossSum = 0;
        int lossCount = 0;
        model.Train();
        for (int epoch = 0; epoch < s.Epochs; epoch++)
        {
            foreach (var batch in train.Epoch(epoch))
            {
                using (batch)
                {
                    double lr = s.LearningRate * (iteration >= total * 3 / 4 ? 0.01 : iteration >= total / 2 ? 0.1 : 1.0);
                    using var scope = TensorScope.Begin();
                    var r = step.Run(batch, lr);
                    wrong += Errors(r.Logits, batch.Labels);
                    seen += batch.Count;
                    double l = r.LossValue();
                    if (double.IsFinite(l)) { lossSum += l; lossCount++; }
                }
                iteration++;
                onStep?.Invoke(iteration);
                if (iteration % every == 0 || iteration == total)
                {
                    double valError = Evaluate(model, val);
                    var p = new CurvePoint(iteration, iteration / (double)perEpoch, 100.0 * wrong / Math.Max(1, seen), valError,
                        lossCount > 0 ? lossSum / lossCount : double.NaN, sgd.LearningRate);
                    curve.Add(p);
                    log?.Invoke(FormattableString.Invariant(
                        $"  {name} iter {iteration}/{total} (epoch {p.Epoch:F2}): train error {p.TrainError:F1}%, val error {p.ValError:F1}%, loss {p.TrainLoss:F3}, lr {p.LearningRate:G3}, {sw.Elapsed.TotalSeconds:F0} s"));
                    wrong = seen = lossCount = 0;
                    lossSum = 0;
                }
            }
        }
        return new TrainRun(name, model.ParameterCount(), curve, sw.Elapsed.TotalSeconds, iteration, s.BatchSize);
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
