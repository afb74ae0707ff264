// Dense ops on CUDA: GEMM through cuBLAS (the bias add and its gradient are pointwise ops).
// cuBLAS is column-major. A row-major (r x c) matrix is, read column-major, its transpose (c x r)
// with leading dimension c, so C = op(A) op(B) in row-major is C^T = op(B)^T op(A)^T in column-major:
// we call GEMM with B and A swapped and m = N, n = M. TF32 stays off unless AllowTf32Matmul is set.
// BF16/F16 go through cublasGemmEx with A, B and C in the 16-bit type, CUBLAS_COMPUTE_32F and float
// alpha/beta: a combination the cuBLAS guide's cublasGemmEx table lists for CUBLAS_COMPUTE_32F
// (Atype = Btype = CUDA_R_16BF or CUDA_R_16F, Ctype the same or CUDA_R_32F; scale type CUDA_R_32F).
using ResidualEngine.Native;

namespace ResidualEngine.Backends.Cuda;

public sealed unsafe partial class CudaBackend
{
    public void Gemm(Tensor c, Tensor a, Tensor b, bool transA, bool transB, double alpha, double beta)
    {
        RequireFloat(c, "Gemm");
        if (a.Rank != 2 || b.Rank != 2 || c.Rank != 2)
            throw new ArgumentException($"Gemm needs 2-d tensors, got {a.Shape}, {b.Shape} -> {c.Shape}");
        int m = transA ? a.Shape[1] : a.Shape[0], k = transA ? a.Shape[0] : a.Shape[1];
        int n = transB ? b.Shape[0] : b.Shape[1];
        int kb = transB ? b.Shape[1] : b.Shape[0];
        if (kb != k || c.Shape[0] != m || c.Shape[1] != n)
            throw new ArgumentException($"Gemm shapes do not agree: op(A) {m}x{k}, op(B) {kb}x{n}, C {c.Shape}");
        if (m == 0 || n == 0) return;
        Enter();
        int lda = a.Shape[1], ldb = b.Shape[1], ldc = n;
        var opA = transA ? cublasOperation_t.CUBLAS_OP_T : cublasOperation_t.CUBLAS_OP_N;
        var opB = transB ? cublasOperation_t.CUBLAS_OP_T : cublasOperation_t.CUBLAS_OP_N;
        lock (_libLock)
        {
            var h = Blas(AllowTf32Matmul && c.DType == DType.F32);
            if (c.DType.Is16Bit())
            {
                if (a.DType != c.DType || b.DType != c.DType)
                    throw new ArgumentException($"Gemm: dtypes differ: a {a.DType}, b {b.DType}, c {c.DType}");
                var t = c.DType == DType.BF16 ? cudaDataType.CUDA_R_16BF : cudaDataType.CUDA_R_16F;
                float fa = (float)alpha, fb = (float)beta;
                Cublas.ThrowIfFailed(Cublas.cublasGemmEx(h, opB, opA, n, m, k, &fa, b.Pointer, t, Math.Max(1, ldb), a.Pointer, t,
                    Math.Max(1, lda), &fb, c.Pointer, t, ldc, cublasComputeType_t.CUBLAS_COMPUTE_32F, Cublas.CUBLAS_GEMM_DEFAULT));
            }
            else if (c.DType == DType.F32)
            {
                float fa = (float)alpha, fb = (float)beta;
                Cublas.ThrowIfFailed(Cublas.cublasSgemm_v2(h, opB, opA, n, m, k, &fa, b.Pointer, Math.Max(1, ldb), a.Pointer,
                    Math.Max(1, lda), &fb, c.Pointer, ldc));
            }
            else
            {
                double da = alpha, db = beta;
                Cublas.ThrowIfFailed(Cublas.cublasDgemm_v2(h, opB, opA, n, m, k, &da, b.Pointer, Math.Max(1, ldb), a.Pointer,
                    Math.Max(1, lda), &db, c.Pointer, ldc));
            }
        }
    }

}
