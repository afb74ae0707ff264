// Validation: loss, top-1 and top-5 of a model in eval mode (BN running statistics, no
// gradients). Single centre crop by default; ten-crop (He et al., following Krizhevsky) averages
// the softmax over the four corners and the centre of the resized image and their mirror
// images. Evaluation reads logits to the host once per batch: it is not the hot loop. This is
// the only evaluation: `residual train` (every epoch), `residual eval` and the experiments call it.
// With an autocast type the forward pass runs under Autocast (as timm validates with --amp).
using System.Diagnostics;
using ResidualEngine.Autograd;
using ResidualEngine.Data;
using ResidualEngine.Nn;

namespace ResidualEngine.Training;

public sealed record EvalResult(double Loss, double Top1, double Top5, long Samples, double Seconds)
{
    public double Top1Error => 1 - Top1;
}

public static class Evaluator
{
    /// <summary>Mean cross-entropy and top-1/top-5 accuracy over a loader's epoch 0 (at most <paramref name="maxBatches"/> batches when > 0),
    /// in eval mode without gradients; batches on another device than the model's are moved to it. The model's mode is restored.</summary>
    public static EvalResult Evaluate(Module model, DataLoader loader, int maxBatches = 0, Action<int, int>? progress = null, DType? autocast = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(loader);
        var sw = Stopwatch.StartNew();
        bool wasTraining = model.Training;
        model.Eval();
        double lossSum = 0;
        long top1 = 0, top5 = 0, n = 0;
        int total = maxBatches > 0 ? Math.Min(maxBatches, loader.BatchesPerEpoch) : loader.BatchesPerEpoch, b = 0;
        var device = model.Device;
        try
        {
            using var ng = GradMode.NoGrad();
            foreach (var batch in loader.Epoch(0))
            {
                using (batch)
                {
                    using var scope = TensorScope.Begin();
                    Tensor logits, loss;
                    using (autocast is { } t ? Autocast.Begin(t) : null)
                    {
                        logits = model.Forward(Input(batch.Images, model, device));
                        loss = Ops.SoftmaxCrossEntropy(logits, OnDevice(batch.Labels, device));
                    }
                    var scores = logits.ToFloats();
                    var labels = batch.Labels.ToDoubles();
                    int k = logits.Shape[^1];
                    lossSum += loss.Item() * batch.Count;
                    top1 += StepMeter.TopKCorrect(scores, labels, k, 1);
                    top5 += StepMeter.TopKCorrect(scores, labels, k, Math.Min(5, k));
                    n += batch.Count;
                }
                progress?.Invoke(++b, total);
                if (b >= total) break;
            }
        }
        finally
        {
            model.Train(wasTraining);
        }
        return Result(lossSum, top1, top5, n, sw.Elapsed.TotalSeconds);
    }

    /// <summary>Ten-crop evaluation: one loader per crop over the same samples in the same order (no shuffling).</summary>
    public static EvalResult EvaluateTenCrop(Module model, IReadOnlyList<DataLoader> crops, Action<int, int>? progress = null, DType? autocast = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(crops);
        if (crops.Count == 0) throw new ArgumentException("EvaluateTenCrop: no crop loaders", nameof(crops));
        var sw = Stopwatch.StartNew();
        bool wasTraining = model.Training;
        model.Eval();
        double lossSum = 0;
        long top1 = 0, top5 = 0, n = 0;
        var iters = crops.Select(c => c.Epoch(0).GetEnumerator()).ToList();
        var device = model.Device;
        int total = crops[0].BatchesPerEpoch, b = 0;
        try
        {
            using var ng = GradMode.NoGrad();
            while (true)
            {
                var batches = new List<Batch>();
                foreach (var it in iters) if (it.MoveNext()) batches.Add(it.Current);
                if (batches.Count == 0) break;
                if (batches.Count != iters.Count) throw new InvalidOperationException("ten-crop loaders ran out of batches at different points");
                try
                {
                    using var scope = TensorScope.Begin();
                    int count = batches[0].Count;
                    double[]? mean = null;
                    int k = 0;
                    foreach (var bt in batches)
                    {
                        float[] logits;
                        using (autocast is { } t ? Autocast.Begin(t) : null) logits = model.Forward(Input(bt.Images, model, device)).ToFloats();
                        k = logits.Length / count;
                        mean ??= new double[logits.Length];
                        AddSoftmax(logits, k, mean, 1.0 / batches.Count);
                    }
                    var labels = batches[0].Labels.ToDoubles();
                    var scores = Array.ConvertAll(mean!, x => (float)x);
                    for (int i = 0; i < count; i++)
                        lossSum += -Math.Log(Math.Max(mean![i * k + (int)labels[i]], 1e-30));
                    top1 += StepMeter.TopKCorrect(scores, labels, k, 1);
                    top5 += StepMeter.TopKCorrect(scores, labels, k, Math.Min(5, k));
                    n += count;
                }
                finally
                {
                    foreach (var bt in batches) bt.Dispose();
                }
                progress?.Invoke(++b, total);
            }
        }
        finally
        {
            foreach (var it in iters) it.Dispose();
            model.Train(wasTraining);
        }
        return Result(lossSum, top1, top5, n, sw.Elapsed.TotalSeconds);
    }

    private static Tensor OnDevice(Tensor t, Device device) => t.Device == device ? t : t.To(device);

    /// <summary>Images on the model's device and in its memory format (a channels-last model's loader makes NHWC batches already).</summary>
    private static Tensor Input(Tensor t, Module model, Device device)
    {
        var x = OnDevice(t, device);
        return x.Rank == 4 && x.Format != model.MemoryFormat ? x.To(model.MemoryFormat) : x;
    }

    private static EvalResult Result(double lossSum, long top1, long top5, long n, double seconds) =>
        n == 0 ? new EvalResult(double.NaN, double.NaN, double.NaN, 0, seconds)
               : new EvalResult(lossSum / n, (double)top1 / n, (double)top5 / n, n, seconds);

    /// <summary>Adds weight * softmax(row) to <paramref name="acc"/> for every row of (rows, k) logits.</summary>
    internal static void AddSoftmax(float[] logits, int k, double[] acc, double weight)
    {
        for (int r = 0; r < logits.Length / k; r++)
        {
            double max = double.NegativeInfinity;
            for (int c = 0; c < k; c++) max = Math.Max(max, logits[r * k + c]);
            double sum = 0;
            for (int c = 0; c < k; c++) sum += Math.Exp(logits[r * k + c] - max);
            for (int c = 0; c < k; c++) acc[r * k + c] += weight * Math.Exp(logits[r * k + c] - max) / sum;
        }
    }
}

/// <summary>
/// One of the ten crops: the image resized (short side to size * 256/224), then a size x size
/// crop at a corner (0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right) or the centre (4);
/// 5..9 are the same crops mirrored.
/// </summary>
public sealed class TenCropTransform : ITransform
{
    private readonly EvalTransform _resize;

    public TenCropTransform(int size, int crop, Normalization? normalization = null)
    {
        if (crop is < 0 or > 9) throw new ArgumentException($"TenCropTransform: crop must be 0..9, got {crop}", nameof(crop));
        _resize = new EvalTransform(size, normalization ?? Normalization.ImageNet);
        Crop = crop;
    }

    public int OutputSize => _resize.OutputSize;
    public int Crop { get; }

    public void Apply(IImageSource image, Random rng, Span<float> destination)
    {
        ArgumentNullException.ThrowIfNull(image);
        var (rw, rh, centre) = _resize.Geometry(image.Width, image.Height);
        int s = OutputSize;
        var (x, y) = (Crop % 5) switch
        {
            0 => (0, 0),
            1 => (rw - s, 0),
            2 => (0, rh - s),
            3 => (rw - s, rh - s),
            _ => (centre.X, centre.Y),
        };
        var img = image.Decode(rw, rh);
        var g = new ResampleGeometry(0, 0, img.Width, img.Height, rw, rh, x, y, s, s, Crop >= 5);
        TrainTransform.Render(img, g, _resize.Normalization, destination);
    }
}
