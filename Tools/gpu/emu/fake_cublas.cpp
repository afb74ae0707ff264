// A fake libcublas.so.12 for the GPU emulator: handles, math mode and column-major GEMM exactly as
// cuBLAS documents it (C = alpha op(A) op(B) + beta C, C not read when beta == 0, leading-dimension
// checks returning CUBLAS_STATUS_INVALID_VALUE), and cublasGemmEx with the type combinations the
// cuBLAS guide's cublasGemmEx table lists for CUBLAS_COMPUTE_32F (scale type float; Atype = Btype =
// CUDA_R_16F, CUDA_R_16BF or CUDA_R_32F; Ctype the same, or CUDA_R_32F for 16-bit inputs); others
// return CUBLAS_STATUS_NOT_SUPPORTED. It exists to check the engine's row-major mapping and argument
// order, not cuBLAS's numerics (products are summed in double and rounded once into C).
#include <cstdio>
#include <cstdint>
#include <cstring>

typedef int cublasStatus_t;
enum { OK = 0, NOT_INITIALIZED = 1, INVALID_VALUE = 7, NOT_SUPPORTED = 15 };
enum { OP_N = 0, OP_T = 1 };
enum { R_32F = 0, R_64F = 1, R_16F = 2, R_16BF = 14 };          // cudaDataType_t (library_types.h)
enum { COMPUTE_32F = 68, COMPUTE_32F_PEDANTIC = 69, COMPUTE_32F_FAST_TF32 = 77 }; // cublasComputeType_t

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

namespace
{
// Element reads and writes by cudaDataType_t; 16-bit values convert as the GPU does (round to nearest even).
double get(int t, const void* p, int64_t i)
{
    switch (t)
    {
        case R_32F: return ((const float*)p)[i];
        case R_16F: { _Float16 h; std::memcpy(&h, (const char*)p + 2 * i, 2); return (double)h; }
        default: { uint32_t u = (uint32_t)((const uint16_t*)p)[i] << 16; float f; std::memcpy(&f, &u, 4); return f; }
    }
}
void put(int t, void* p, int64_t i, double v)
{
    float f = (float)v;
    switch (t)
    {
        case R_32F: ((float*)p)[i] = f; break;
        case R_16F: { _Float16 h = (_Float16)f; std::memcpy((char*)p + 2 * i, &h, 2); break; }
        default:
        {
            uint32_t u; std::memcpy(&u, &f, 4);
            ((uint16_t*)p)[i] = (u & 0x7fffffffu) > 0x7f800000u ? (uint16_t)((u >> 16) | 0x40u) : (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
        }
    }
}
}

extern "C" {
cublasStatus_t cublasGemmEx(void* h, int ta, int tb, int m, int n, int k, const void* alpha, const void* A, int at, int lda,
                            const void* B, int bt, int ldb, const void* beta, void* C, int ct, int ldc, int compute, int algo)
{
    if (!h) return NOT_INITIALIZED;
    if (compute != COMPUTE_32F && compute != COMPUTE_32F_PEDANTIC && compute != COMPUTE_32F_FAST_TF32) return NOT_SUPPORTED;
    bool ok = at == bt && (at == R_16F || at == R_16BF || at == R_32F) && (ct == at || ct == R_32F);
    if (!ok) return NOT_SUPPORTED;
    if (algo < -1 || algo > 23) return INVALID_VALUE;
    if ((ta != OP_N && ta != OP_T) || (tb != OP_N && tb != OP_T) || m < 0 || n < 0 || k < 0) return INVALID_VALUE;
    int rowsA = ta == OP_N ? m : k, rowsB = tb == OP_N ? k : n;
    if (lda < (rowsA > 1 ? rowsA : 1) || ldb < (rowsB > 1 ? rowsB : 1) || ldc < (m > 1 ? m : 1)) return INVALID_VALUE;
    double a = *(const float*)alpha, b = *(const float*)beta; // CUBLAS_COMPUTE_32F: scale type float
    for (int j = 0; j < n; j++)
        for (int i = 0; i < m; i++)
        {
            double acc = 0;
            for (int p = 0; p < k; p++)
                acc += get(at, A, ta == OP_N ? i + (int64_t)p * lda : p + (int64_t)i * lda)
                     * get(bt, B, tb == OP_N ? p + (int64_t)j * ldb : j + (int64_t)p * ldb);
            int64_t ci = i + (int64_t)j * ldc;
            put(ct, C, ci, a * acc + (b == 0 ? 0.0 : b * get(ct, C, ci)));
        }
    return OK;
}

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
