// Pooling on the CPU.
// STUB: to be implemented (multi-threaded, SIMD, F32 and F64).
namespace ResidualEngine.Backends.Cpu;

public sealed partial class CpuBackend
{
    public void MaxPoolForward(Tensor y, Tensor indices, Tensor x, Pool2dParams p) => throw new NotImplementedException();
    public void MaxPoolBackward(Tensor dX, Tensor dY, Tensor indices, Pool2dParams p) => throw new NotImplementedException();
    public void AvgPoolForward(Tensor y, Tensor x, Pool2dParams p) => throw new NotImplementedException();
    public void AvgPoolBackward(Tensor dX, Tensor dY, Pool2dParams p) => throw new NotImplementedException();
    public void GlobalAvgPoolForward(Tensor y, Tensor x) => throw new NotImplementedException();
    public void GlobalAvgPoolBackward(Tensor dX, Tensor dY) => throw new NotImplementedException();
}
