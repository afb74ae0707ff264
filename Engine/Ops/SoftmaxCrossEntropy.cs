// Softmax cross-entropy loss with mean reduction and PyTorch's label smoothing. Gradient rule:
// dLogits = dLoss * (softmax(logits) - target) / N, with target = (1 - eps) * onehot(label) + eps / K.
// The softmax is saved by the forward pass; dLoss stays a device tensor (no host read). Any float
// type; under Autocast 16-bit logits are widened to F32 first (PyTorch's fp32 list).
using ResidualEngine.Autograd;

namespace ResidualEngine;

public static partial class Ops
{
    /// <summary>logits (N, K), labels (N) I64 in [0, K) -> mean loss, shape (). Label smoothing as PyTorch's.</summary>
    public static Tensor SoftmaxCrossEntropy(Tensor logits, Tensor labels, double labelSmoothing = 0)
    {
        const string op = "SoftmaxCrossEntropy";
        Check.Float(op, logits, "logits");
        if (Autocast.Current is not null && logits.DType.Is16Bit())
        {
            using var wide = Autocast.ToF32(logits);
            return SoftmaxCrossEntropy(wide, labels, labelSmoothing);
        }
        Check.Rank(op, logits, "logits", 2);
        Check.NotDisposed(op, labels, "labels");
        Check.SameDevice(op, logits, "logits", labels, "labels");
        if (labels.DType != DType.I64) throw new ArgumentException($"{op}: labels must be I64 class indices, got {labels.DType}");
        int n = logits.Shape[0], k = logits.Shape[1];
        if (labels.Rank != 1 || labels.Shape[0] != n)
            throw new ArgumentException($"{op}: labels must have shape ({n},) for logits {logits.Shape}, got {labels.Shape}");
        if (n == 0) throw new ArgumentException($"{op}: empty batch, logits {logits.Shape}");
        if (k == 0) throw new ArgumentException($"{op}: no classes, logits {logits.Shape}");
        if (!(labelSmoothing >= 0 && labelSmoothing <= 1))
            throw new ArgumentException($"{op}: labelSmoothing must be between 0.0 and 1.0, got {labelSmoothing}");
        // Host tensors are checked here for a clear message; device backends guard their own kernels.
        if (labels.Device.Type == DeviceType.Cpu)
        {
            var ls = labels.Span<long>();
            for (int i = 0; i < ls.Length; i++)
                if (ls[i] < 0 || ls[i] >= k)
                    throw new ArgumentException($"{op}: label {ls[i]} at index {i} is out of range [0, {k})");
        }

        var loss = NewLike(logits, Shape.Scalar);
        var probs = NewLike(logits);
        logits.Backend.SoftmaxCrossEntropyForward(loss, probs, logits, labels, labelSmoothing);
        if (GradMode.ShouldRecord(logits)) loss.GradFn = new SoftmaxCrossEntropyNode(logits, labels, probs, labelSmoothing);
        else probs.Dispose();
        return loss;
    }

    private sealed class SoftmaxCrossEntropyNode : Node
    {
        private readonly Tensor _probs;  // (N, K) softmax of the logits
        private readonly Tensor _labels; // (N) I64
        private readonly double _smoothing;

        public SoftmaxCrossEntropyNode(Tensor logits, Tensor labels, Tensor probs, double smoothing) : base(logits)
        {
            _probs = Own(probs);
            _labels = Save(labels);
            _smoothing = smoothing;
        }

        public override string Name => "SoftmaxCrossEntropy";

        protected internal override Tensor?[] Backward(Tensor dY)
        {
            var dLogits = NewLike(_probs);
            dY.Backend.SoftmaxCrossEntropyBackward(dLogits, dY, _probs, _labels, _smoothing);
            return [dLogits];
        }
    }
}
