// The arithmetic contract every backend fulfils. Ops validate arguments and allocate outputs;
// a backend only computes. All tensors are contiguous, on this backend's device, and share
// one floating dtype unless a parameter says otherwise (labels are I64, pooling indices I32).
// Names follow the convention: outputs first, gradients prefixed d: (dX, dW, dY, X, W).
using ResidualEngine.Pointwise;

namespace ResidualEngine.Backends;

public interface IBackend
{
    Device Device { get; }

    // ---- memory ----
    Storage Allocate(long bytes);
    void CopyFromHost(Tensor dst, ReadOnlySpan<byte> src);
    void CopyToHost(Tensor src, Span<byte> dst);
    /// <summary>dst = src, same device and dtype.</summary>
    void Copy(Tensor dst, Tensor src);
    /// <summary>dst = (dst.DType) src, same device.</summary>
    void Cast(Tensor dst, Tensor src);
    void Fill(Tensor dst, double value);
    /// <summary>Waits for all queued work (a no-op on the CPU).</summary>
    void Synchronize();

    // ---- the pointwise family (Engine/Ops/Pointwise): one generic path per arity ----
    // y may alias an input exactly. Every op of the family runs through these; none has a member of its own.
    /// <summary>y = TOp(x; alpha, beta).</summary>
    void Map<TOp>(Tensor y, Tensor x, double alpha, double beta) where TOp : struct, IUnaryOp;
    /// <summary>y = TOp(a, b; alpha, beta) with element i of a using b[(i / bc.Inner) % bc.Period].</summary>
    void Map<TOp>(Tensor y, Tensor a, Tensor b, Broadcast bc, double alpha, double beta) where TOp : struct, IBinaryOp;
    /// <summary>y = TOp(a, b, c; alpha, beta), all of one shape.</summary>
    void Map<TOp>(Tensor y, Tensor a, Tensor b, Tensor c, double alpha, double beta) where TOp : struct, ITernaryOp;
    /// <summary>y[k] = sum of x[i] over every i with (i / bc.Inner) % bc.Period == k (y has bc.Period
    /// elements): the full sum, column sums, per-channel sums, per-row sums.</summary>
    void SumTo(Tensor y, Tensor x, Broadcast bc);

    // ---- convolution: x (N, C, H, W), w (K, C/groups, R, S), y (N, K, P, Q) ----
    void ConvForward(Tensor y, Tensor x, Tensor w, Tensor? bias, Conv2dParams p);
    void ConvBackwardData(Tensor dX, Tensor dY, Tensor w, Conv2dParams p);
    void ConvBackwardFilter(Tensor dW, Tensor dY, Tensor x, Conv2dParams p);

    // ---- fused forward paths (each has a default made of the calls above, so a backend need not
    // implement them; the CPU backend does them in one pass) ----
    /// <summary>
    /// y = act(conv(x, w) + bias + residual), act = ReLU when <paramref name="relu"/>; bias (K) and
    /// residual (y's shape) are optional. With <paramref name="prepared"/> (from this backend's
    /// <see cref="PrepareConvWeights"/> for w's shape and p), w supplies only its shape: its data is not read.
    /// </summary>
    void ConvForwardFused(Tensor y, Tensor x, Tensor w, Tensor? bias, Tensor? residual, bool relu, Conv2dParams p, PreparedConvWeights? prepared)
    {
        if (prepared is not null) throw new ArgumentException($"{GetType().Name} prepares no convolution weights");
        ConvForward(y, x, w, bias, p);
        if (residual is not null)
        {
            if (relu) Map<AddRelu>(y, y, residual, Broadcast.Same(y), 0, 0);
            else Map<Add>(y, y, residual, Broadcast.Same(y), 0, 0);
        }
        else if (relu) Map<Relu>(y, y, 0, 0);
    }

    /// <summary>A backend-specific form of w (K, C/groups, R, S) for repeated ConvForwardFused calls
    /// (the CPU backend packs it for its GEMM once), or null when the backend has none.</summary>
    PreparedConvWeights? PrepareConvWeights(Tensor w, Conv2dParams p) => null;

    // ---- batch norm over (N, H, W) per channel; gamma, beta, running stats, saved stats: (C) ----
    /// <summary>Normalises with batch statistics, saves mean and 1/sqrt(var + eps) (biased var),
    /// and updates running stats: r = (1 - momentum) r + momentum * stat, with the unbiased variance.</summary>
    void BatchNormForwardTraining(Tensor y, Tensor x, Tensor gamma, Tensor beta, Tensor runningMean, Tensor runningVar,
        Tensor saveMean, Tensor saveInvStd, double momentum, double eps);
    void BatchNormForwardInference(Tensor y, Tensor x, Tensor gamma, Tensor beta, Tensor runningMean, Tensor runningVar, double eps);
    void BatchNormBackward(Tensor dX, Tensor dGamma, Tensor dBeta, Tensor dY, Tensor x, Tensor gamma, Tensor saveMean, Tensor saveInvStd);

    /// <summary>y = act(BN(x) + residual) with batch statistics (as BatchNormForwardTraining), act = ReLU
    /// when <paramref name="relu"/>, residual (x's shape) optional: one pass over the activation.</summary>
    void BatchNormActForwardTraining(Tensor y, Tensor x, Tensor gamma, Tensor beta, Tensor runningMean, Tensor runningVar,
        Tensor saveMean, Tensor saveInvStd, double momentum, double eps, Tensor? residual, bool relu)
    {
        BatchNormForwardTraining(y, x, gamma, beta, runningMean, runningVar, saveMean, saveInvStd, momentum, eps);
        if (residual is not null)
        {
            if (relu) Map<AddRelu>(y, y, residual, Broadcast.Same(y), 0, 0);
            else Map<Add>(y, y, residual, Broadcast.Same(y), 0, 0);
        }
        else if (relu) Map<Relu>(y, y, 0, 0);
    }

    /// <summary>
    /// Backward of y = act(BN(x) + residual): g = relu ? (y &gt; 0 ? dY : 0) : dY; dResidual = g (when
    /// not null); dX, dGamma, dBeta as BatchNormBackward of g. y is the saved output (read only when relu).
    /// </summary>
    void BatchNormActBackward(Tensor dX, Tensor dGamma, Tensor dBeta, Tensor? dResidual, Tensor dY, Tensor y, Tensor x,
        Tensor gamma, Tensor saveMean, Tensor saveInvStd, bool relu)
    {
        if (!relu)
        {
            if (dResidual is not null) Copy(dResidual, dY);
            BatchNormBackward(dX, dGamma, dBeta, dY, x, gamma, saveMean, saveInvStd);
            return;
        }
        var g = dResidual ?? Tensor.Empty(dY.Shape, dY.DType, dY.Device);
        try
        {
            Map<ReluBackward>(g, dY, y, Broadcast.Same(dY), 0, 0);
            BatchNormBackward(dX, dGamma, dBeta, g, x, gamma, saveMean, saveInvStd);
        }
        finally
        {
            if (dResidual is null) g.Dispose();
        }
    }

    // ---- pooling: x (N, C, H, W), y (N, C, P, Q) ----
    /// <summary>indices (I32, shape of y) hold the argmax's offset h * W + w inside its plane.</summary>
    void MaxPoolForward(Tensor y, Tensor indices, Tensor x, Pool2dParams p);
    void MaxPoolBackward(Tensor dX, Tensor dY, Tensor indices, Pool2dParams p);
    void AvgPoolForward(Tensor y, Tensor x, Pool2dParams p);
    void AvgPoolBackward(Tensor dX, Tensor dY, Pool2dParams p);
    /// <summary>y (N, C, 1, 1) = mean over H, W.</summary>
    void GlobalAvgPoolForward(Tensor y, Tensor x);
    void GlobalAvgPoolBackward(Tensor dX, Tensor dY);

    // ---- dense ----
    /// <summary>C = alpha * op(A) op(B) + beta * C for 2-d row-major tensors.</summary>
    void Gemm(Tensor c, Tensor a, Tensor b, bool transA, bool transB, double alpha, double beta);

    // ---- loss: logits (N, K), labels (N) I64 ----
    /// <summary>loss (one element) = mean over N of cross-entropy with label smoothing eps:
    /// -(1-eps) log p[label] - eps/K sum_k log p[k]. probs (N, K) receives the softmax.</summary>
    void SoftmaxCrossEntropyForward(Tensor loss, Tensor probs, Tensor logits, Tensor labels, double labelSmoothing);
    /// <summary>dLogits = dLoss * (probs - target) / N with the smoothed target.</summary>
    void SoftmaxCrossEntropyBackward(Tensor dLogits, Tensor dLoss, Tensor probs, Tensor labels, double labelSmoothing);

    // ---- option-A shortcut: y (N, K, ceil(H/stride), ceil(W/stride)), x (N, C, H, W), K >= C ----
    /// <summary>y[:, padBefore + c] = x[:, c, ::stride, ::stride]; every other channel is zero.</summary>
    void ShortcutAForward(Tensor y, Tensor x, int stride, int padBefore);
    void ShortcutABackward(Tensor dX, Tensor dY, int stride, int padBefore);

    // ---- optimizer ----
    /// <summary>One fused SGD step on a parameter, as torch.optim.SGD:
    /// g = grad + wd * param; buf = firstStep ? g : momentum * buf + (1 - dampening) * g;
    /// step = nesterov ? g + momentum * buf : buf (or g when momentum is 0); param -= lr * step.</summary>
    void SgdUpdate(Tensor param, Tensor grad, Tensor? momentumBuffer, double lr, double momentum, double dampening,
        double weightDecay, bool nesterov, bool firstStep);
}
