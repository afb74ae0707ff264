// Batch normalisation on the CPU.
// STUB: to be implemented (multi-threaded, SIMD, F32 and F64).
namespace ResidualEngine.Backends.Cpu;

public sealed partial class CpuBackend
{
    public void BatchNormForwardTraining(Tensor y, Tensor x, Tensor gamma, Tensor beta, Tensor runningMean, Tensor runningVar,
        Tensor saveMean, Tensor saveInvStd, double momentum, double eps) => throw new NotImplementedException();
    public void BatchNormForwardInference(Tensor y, Tensor x, Tensor gamma, Tensor beta, Tensor runningMean, Tensor runningVar, double eps) => throw new NotImplementedException();
    public void BatchNormBackward(Tensor dX, Tensor dGamma, Tensor dBeta, Tensor dY, Tensor x, Tensor gamma, Tensor saveMean, Tensor saveInvStd) => throw new NotImplementedException();
}
