// Softmax cross-entropy on CUDA (Kernels/loss.cu). The forward writes the softmax and a per-row
// loss in double to a scratch buffer, then reduce.cu's sum_finalize writes the mean into `loss` on
// the device: no host synchronisation. The backward reads dLoss from device memory.
// Gradient rule: dLogits = dLoss * (probs - target) / N, target = (1 - eps) onehot + eps / K.
namespace ResidualEngine.Backends.Cuda;

public sealed unsafe partial class CudaBackend
{
    public void SoftmaxCrossEntropyForward(Tensor loss, Tensor probs, Tensor logits, Tensor labels, double labelSmoothing)
    {
        Enter();
        var name = CudaKernels.SoftmaxXentForward.For(logits.DType, "SoftmaxCrossEntropyForward");
        RequireLabels(labels, "SoftmaxCrossEntropyForward");
        int n = logits.Shape[0], k = logits.Shape[1];
        using var rows = TakeScratch((long)Math.Max(n, 1) * sizeof(double));
        nint pp = probs.Pointer, pr = rows.Pointer, pl = logits.Pointer, plab = labels.Pointer;
        double eps = labelSmoothing;
        void** a = stackalloc void*[] { &pp, &pr, &pl, &plab, &n, &k, &eps };
        if (n > 0) LaunchRows(CudaKernels.SoftmaxXentForward.File, name, n, Threads, a);
        FinishSum(loss, pr, n, n == 0 ? double.NaN : 1.0 / n);
    }

    public void SoftmaxCrossEntropyBackward(Tensor dLogits, Tensor dLoss, Tensor probs, Tensor labels, double labelSmoothing)
    {
        Enter();
        var name = CudaKernels.SoftmaxXentBackward.For(dLogits.DType, "SoftmaxCrossEntropyBackward");
        RequireLabels(labels, "SoftmaxCrossEntropyBackward");
        int n = dLogits.Shape[0], k = dLogits.Shape[1];
        nint pd = dLogits.Pointer, pdl = dLoss.Pointer, pp = probs.Pointer, plab = labels.Pointer;
        double eps = labelSmoothing;
        void** a = stackalloc void*[] { &pd, &pdl, &pp, &plab, &n, &k, &eps };
        Launch1D(CudaKernels.SoftmaxXentBackward.File, name, (long)n * k, a);
    }

    private static void RequireLabels(Tensor labels, string op)
    {
        if (labels.DType != DType.I64) throw new NotSupportedException($"{op} on CUDA needs I64 labels, not {labels.DType}");
    }
}
