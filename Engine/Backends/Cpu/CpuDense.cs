// GEMM and row-vector helpers on the CPU (Linear layers and anything else dense). Gemm hands
// off to the blocked, threaded kernel in CpuGemm.cs; the row helpers use TensorPrimitives.
using System.Numerics.Tensors;

namespace ResidualEngine.Backends.Cpu;

public sealed unsafe partial class CpuBackend
{
    public void Gemm(Tensor c, Tensor a, Tensor b, bool transA, bool transB, double alpha, double beta)
    {
        // 16-bit: F32 GEMM on widened copies (as cublasGemmEx with CUBLAS_COMPUTE_32F), rounded into c (CpuMixed.cs).
        if (RunCanonical(beta == 0 ? "oii" : "bii", true, t => Gemm(t[0]!, t[1]!, t[2]!, transA, transB, alpha, beta), c, a, b)) return;
        RequireFloat(c, "Gemm");
        if (a.Rank != 2 || b.Rank != 2 || c.Rank != 2)
            throw new ArgumentException($"Gemm: expected 2-d tensors, got a {a.Describe()}, b {b.Describe()}, c {c.Describe()}");
        if (a.DType != c.DType || b.DType != c.DType)
            throw new ArgumentException($"Gemm: dtypes differ: a {a.DType}, b {b.DType}, c {c.DType}");
        int m = transA ? a.Shape[1] : a.Shape[0], k = transA ? a.Shape[0] : a.Shape[1];
        int kb = transB ? b.Shape[1] : b.Shape[0], n = transB ? b.Shape[0] : b.Shape[1];
        if (k != kb || c.Shape[0] != m || c.Shape[1] != n)
            throw new ArgumentException(
                $"Gemm: op(a) is {m}x{k} and op(b) is {kb}x{n} (transA {transA}, transB {transB}), which cannot produce c of shape {c.Shape}");
        int lda = a.Shape[1], ldb = b.Shape[1];
        if (c.DType == DType.F32)
            CpuGemm.Gemm(m, n, k, (float*)a.Pointer, lda, transA, (float*)b.Pointer, ldb, transB, (float*)c.Pointer, n, (float)alpha, (float)beta, Threads);
        else
            CpuGemm.Gemm(m, n, k, (double*)a.Pointer, lda, transA, (double*)b.Pointer, ldb, transB, (double*)c.Pointer, n, alpha, beta, Threads);
    }

}
