// Softmax cross-entropy on the CPU, F32 and F64, one thread per row for large batches.
// Numerically stable: log p_k = x_k - (max + log sum exp(x - max)). With label smoothing eps
// (PyTorch's definition) the per-row loss is -(1-eps) log p[label] - eps * mean_k log p_k; the
// batch loss is the mean over rows, summed in double and in row order (deterministic).
using System.Numerics;
using System.Numerics.Tensors;

namespace ResidualEngine.Backends.Cpu;

public sealed unsafe partial class CpuBackend
{
    public void SoftmaxCrossEntropyForward(Tensor loss, Tensor probs, Tensor logits, Tensor labels, double labelSmoothing)
    {
        if (RunCanonical("ooii", true, t => SoftmaxCrossEntropyForward(t[0]!, t[1]!, t[2]!, t[3]!, labelSmoothing), loss, probs, logits, labels)) return; // 16-bit: CpuMixed.cs
        RequireFloat(logits, "SoftmaxCrossEntropyForward");
        var (n, k) = LossDims(logits, labels, "SoftmaxCrossEntropyForward");
        if (logits.DType == DType.F32) SceFwd<float>(loss.Pointer, probs.Pointer, logits.Pointer, labels.Pointer, n, k, labelSmoothing);
        else SceFwd<double>(loss.Pointer, probs.Pointer, logits.Pointer, labels.Pointer, n, k, labelSmoothing);
    }

    public void SoftmaxCrossEntropyBackward(Tensor dLogits, Tensor dLoss, Tensor probs, Tensor labels, double labelSmoothing)
    {
        if (RunCanonical("oiii", true, t => SoftmaxCrossEntropyBackward(t[0]!, t[1]!, t[2]!, t[3]!, labelSmoothing), dLogits, dLoss, probs, labels)) return;
        RequireFloat(dLogits, "SoftmaxCrossEntropyBackward");
        var (n, k) = LossDims(probs, labels, "SoftmaxCrossEntropyBackward");
        if (dLogits.DType == DType.F32) SceBwd<float>(dLogits.Pointer, dLoss.Pointer, probs.Pointer, labels.Pointer, n, k, labelSmoothing);
        else SceBwd<double>(dLogits.Pointer, dLoss.Pointer, probs.Pointer, labels.Pointer, n, k, labelSmoothing);
    }

    private static (int N, int K) LossDims(Tensor logits, Tensor labels, string op)
    {
        if (logits.Rank != 2) throw new ArgumentException($"{op}: logits must be (N, K), got {logits.Shape}");
        if (labels.DType != DType.I64) throw new NotSupportedException($"{op}: labels must be I64, got {labels.DType}");
        int n = logits.Shape[0], k = logits.Shape[1];
        if (labels.Numel != n) throw new ArgumentException($"{op}: {labels.Numel} labels for {n} rows of logits");
        // A bad label would index outside the row: refuse it here as well, whatever the caller checked.
        var ls = new ReadOnlySpan<long>((long*)labels.Pointer, n);
        for (int i = 0; i < n; i++)
            if ((ulong)ls[i] >= (ulong)k) throw new ArgumentException($"{op}: label {ls[i]} at index {i} is out of range [0, {k})");
        return (n, k);
    }

    private static void SceFwd<T>(nint loss, nint probs, nint logits, nint labels, int n, int k, double eps)
        where T : unmanaged, IFloatingPointIeee754<T>, IExponentialFunctions<T>
    {
        var rowLoss = new double[n];
        CpuVec.For(n, 4L * k, r =>
        {
            var x = new ReadOnlySpan<T>((T*)logits + (long)r * k, k);
            var pr = new Span<T>((T*)probs + (long)r * k, k);
            T max = TensorPrimitives.Max<T>(x);
            TensorPrimitives.Subtract(x, max, pr);
            TensorPrimitives.Exp<T>(pr, pr);
            double sum = CpuVec.Sum<T>(pr);
            double logZ = double.CreateTruncating(max) + Math.Log(sum);
            TensorPrimitives.Multiply(pr, T.CreateTruncating(1.0 / sum), pr);
            long label = ((long*)labels)[r];
            double nll = logZ - double.CreateTruncating(x[(int)label]);
            double l = (1 - eps) * nll;
            if (eps != 0) l += eps * (logZ - CpuVec.Sum(x) / k);
            rowLoss[r] = l;
        });
        double total = 0;
        foreach (var l in rowLoss) total += l;
        ((T*)loss)[0] = T.CreateTruncating(total / n);
    }

    private static void SceBwd<T>(nint dLogits, nint dLoss, nint probs, nint labels, int n, int k, double eps)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        double scale = double.CreateTruncating(((T*)dLoss)[0]) / n;
        T ts = T.CreateTruncating(scale), off = T.CreateTruncating(-scale * eps / k);
        T hit = T.CreateTruncating(scale * (1 - eps));
        CpuVec.For(n, 2L * k, r =>
        {
            var pr = new ReadOnlySpan<T>((T*)probs + (long)r * k, k);
            var d = new Span<T>((T*)dLogits + (long)r * k, k);
            CpuVec.Affine(pr, ts, off, d);
            d[(int)((long*)labels)[r]] -= hit;
        });
    }
}
