// Softmax cross-entropy loss. STUB: signature fixed; to be implemented.
namespace ResidualEngine;

public static partial class Ops
{
    /// <summary>logits (N, K), labels (N) I64 in [0, K) -> mean loss, shape (). Label smoothing as PyTorch's.</summary>
    public static Tensor SoftmaxCrossEntropy(Tensor logits, Tensor labels, double labelSmoothing = 0) => throw new NotImplementedException();
}
