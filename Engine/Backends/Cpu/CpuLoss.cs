// Softmax cross-entropy on the CPU.
// STUB: to be implemented (multi-threaded, SIMD, F32 and F64).
namespace ResidualEngine.Backends.Cpu;

public sealed partial class CpuBackend
{
    public void SoftmaxCrossEntropyForward(Tensor loss, Tensor probs, Tensor logits, Tensor labels, double labelSmoothing) => throw new NotImplementedException();
    public void SoftmaxCrossEntropyBackward(Tensor dLogits, Tensor dLoss, Tensor probs, Tensor labels, double labelSmoothing) => throw new NotImplementedException();
}
