// A fake libcublas.so.12 for the GPU emulator: handles, math mode and column-major GEMM exactly as
// cuBLAS documents it (C = alpha op(A) op(B) + beta C, C not read when beta == 0, leading-dimension
// checks returning CUBLAS_STATUS_INVALID_VALUE). It exists to check the engine's row-major mapping
// and argument order, not cuBLAS's numerics.
#include <cstdio>
#include <cstdint>

typedef int cublasStatus_t;
enum { OK = 0, NOT_INITIALIZED = 1, INVALID_VALUE = 7 };
enum { OP_N = 0, OP_T = 1 };

namespace
{
struct Handle { void* stream; int math; };

template <typename T>
cublasStatus_t gemm(void* h, int ta, int tb, int m, int n, int k, const T* alpha, const T* A, int lda, const T* B, int ldb,
                    const T* beta, T* C, int ldc)
{
    if (!h) return NOT_INITIALIZED;
    if ((ta != OP_N && ta != OP_T) || (tb != OP_N && tb != OP_T) || m < 0 || n < 0 || k < 0) return INVALID_VALUE;
    int rowsA = ta == OP_N ? m : k, rowsB = tb == OP_N ? k : n;
    if (lda < (rowsA > 1 ? rowsA : 1) || ldb < (rowsB > 1 ? rowsB : 1) || ldc < (m > 1 ? m : 1)) return INVALID_VALUE;
    for (int j = 0; j < n; j++)
        for (int i = 0; i < m; i++)
        {
            double acc = 0;
            for (int p = 0; p < k; p++)
            {
                double a = ta == OP_N ? A[i + (int64_t)p * lda] : A[p + (int64_t)i * lda];
                double b = tb == OP_N ? B[p + (int64_t)j * ldb] : B[j + (int64_t)p * ldb];
                acc += a * b;
            }
            T& c = C[i + (int64_t)j * ldc];
            c = (T)(*alpha * acc + (*beta == 0 ? 0.0 : (double)*beta * (double)c));
        }
    return OK;
}
}

extern "C" {
cublasStatus_t cublasCreate_v2(void** h) { *h = new Handle{nullptr, 0}; return OK; }
cublasStatus_t cublasDestroy_v2(void* h) { delete (Handle*)h; return OK; }
cublasStatus_t cublasSetStream_v2(void* h, void* s) { if (!h) return NOT_INITIALIZED; ((Handle*)h)->stream = s; return OK; }
cublasStatus_t cublasSetMathMode(void* h, int mode)
{
    if (!h) return NOT_INITIALIZED;
    if (mode != 0 && mode != 1 && mode != 2 && mode != 3 && (mode & ~16) > 3) return INVALID_VALUE;
    ((Handle*)h)->math = mode;
    return OK;
}
cublasStatus_t cublasGetProperty(int type, int* v)
{
    switch (type) { case 0: *v = 12; return OK; case 1: *v = 4; return OK; case 2: *v = 0; return OK; default: return INVALID_VALUE; }
}
cublasStatus_t cublasSgemm_v2(void* h, int ta, int tb, int m, int n, int k, const float* alpha, const float* A, int lda,
                              const float* B, int ldb, const float* beta, float* C, int ldc)
{
    return gemm<float>(h, ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}
cublasStatus_t cublasDgemm_v2(void* h, int ta, int tb, int m, int n, int k, const double* alpha, const double* A, int lda,
                              const double* B, int ldb, const double* beta, double* C, int ldc)
{
    return gemm<double>(h, ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}
}
