// GEMM and row-vector helpers on the CPU.
// STUB: to be implemented (multi-threaded, SIMD, F32 and F64).
namespace ResidualEngine.Backends.Cpu;

public sealed partial class CpuBackend
{
    public void Gemm(Tensor c, Tensor a, Tensor b, bool transA, bool transB, double alpha, double beta) => throw new NotImplementedException();
    public void AddRowVector(Tensor y, Tensor bias) => throw new NotImplementedException();
    public void SumRows(Tensor y, Tensor x) => throw new NotImplementedException();
}
