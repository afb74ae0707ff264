// Convolution on the CPU.
// STUB: to be implemented (multi-threaded, SIMD, F32 and F64).
namespace ResidualEngine.Backends.Cpu;

public sealed partial class CpuBackend
{
    public void ConvForward(Tensor y, Tensor x, Tensor w, Tensor? bias, Conv2dParams p) => throw new NotImplementedException();
    public void ConvBackwardData(Tensor dX, Tensor dY, Tensor w, Conv2dParams p) => throw new NotImplementedException();
    public void ConvBackwardFilter(Tensor dW, Tensor dY, Tensor x, Conv2dParams p) => throw new NotImplementedException();
    public void ConvBackwardBias(Tensor dB, Tensor dY) => throw new NotImplementedException();
}
