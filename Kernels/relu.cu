// Elementwise kernels: ReLU forward/backward, the residual add + ReLU, add, mul, axpby, sigmoid
// forward/backward, row scaling forward/backward, fill and dtype casts. Semantics are those of
// Engine/Backends/IBackend.cs; outputs may alias inputs, so no pointer is __restrict__.
// Gradient rules: relu dX = dY where y > 0; sigmoid dX = dY * y * (1 - y);
// scale_rows dX = dY * s[row], dS[row] = sum_i dY * x.
#include "common.cuh"

// NaN propagates through ReLU, as in PyTorch and the CPU backend (TensorPrimitives.Max).
template <typename T> __device__ __forceinline__ T relu1(T v) { return (v > T(0) || is_nan(v)) ? v : T(0); }

template <typename T> __device__ __forceinline__ T sigmoid1(T v);
template <> __device__ __forceinline__ float sigmoid1(float v) { return 1.0f / (1.0f + expf(-v)); }
template <> __device__ __forceinline__ double sigmoid1(double v) { return 1.0 / (1.0 + exp(-v)); }

#define ELEMENTWISE(sfx, T)                                                                            \
extern "C" __global__ void relu_forward_##sfx(T* y, const T* x, i64 n)                                \
{                                                                                                      \
    GRID_STRIDE(i, n) y[i] = relu1(x[i]);                                                              \
}                                                                                                      \
extern "C" __global__ void relu_backward_##sfx(T* dx, const T* dy, const T* y, i64 n)                 \
{                                                                                                      \
    GRID_STRIDE(i, n) dx[i] = y[i] > T(0) ? dy[i] : T(0);                                              \
}                                                                                                      \
extern "C" __global__ void add_##sfx(T* y, const T* a, const T* b, i64 n)                             \
{                                                                                                      \
    GRID_STRIDE(i, n) y[i] = a[i] + b[i];                                                              \
}                                                                                                      \
extern "C" __global__ void add_relu_##sfx(T* y, const T* a, const T* b, i64 n)                        \
{                                                                                                      \
    GRID_STRIDE(i, n) y[i] = relu1(a[i] + b[i]);                                                       \
}                                                                                                      \
extern "C" __global__ void mul_##sfx(T* y, const T* a, const T* b, i64 n)                             \
{                                                                                                      \
    GRID_STRIDE(i, n) y[i] = a[i] * b[i];                                                              \
}                                                                                                      \
/* y = alpha * x + beta * y; with beta == 0 the old y is not read (it may hold NaN). */               \
extern "C" __global__ void axpby_##sfx(T* y, T alpha, const T* x, T beta, i64 n)                      \
{                                                                                                      \
    if (beta == T(0)) { GRID_STRIDE(i, n) y[i] = alpha * x[i]; }                                       \
    else { GRID_STRIDE(i, n) y[i] = alpha * x[i] + beta * y[i]; }                                      \
}                                                                                                      \
extern "C" __global__ void sigmoid_forward_##sfx(T* y, const T* x, i64 n)                             \
{                                                                                                      \
    GRID_STRIDE(i, n) y[i] = sigmoid1(x[i]);                                                           \
}                                                                                                      \
extern "C" __global__ void sigmoid_backward_##sfx(T* dx, const T* dy, const T* y, i64 n)              \
{                                                                                                      \
    GRID_STRIDE(i, n) { T v = y[i]; dx[i] = dy[i] * v * (T(1) - v); }                                  \
}                                                                                                      \
/* x viewed as (m, inner): y[r, i] = x[r, i] * s[r]. */                                               \
extern "C" __global__ void scale_rows_forward_##sfx(T* y, const T* x, const T* s, i64 m, i64 inner)   \
{                                                                                                      \
    GRID_STRIDE(i, m * inner) y[i] = x[i] * s[i / inner];                                              \
}                                                                                                      \
/* One block per row r: dX[r, :] = dY[r, :] * s[r] and dS[r] = sum dY[r, :] * x[r, :].              \
   Either output may be null. */                                                                       \
extern "C" __global__ void scale_rows_backward_##sfx(T* dx, T* ds, const T* dy, const T* x,           \
                                                      const T* s, i64 m, i64 inner)                    \
{                                                                                                      \
    for (i64 r = blockIdx.x; r < m; r += gridDim.x)                                                    \
    {                                                                                                  \
        const i64 base = r * inner;                                                                    \
        const T sr = s[r];                                                                             \
        double acc = 0.0;                                                                              \
        for (i64 i = threadIdx.x; i < inner; i += blockDim.x)                                          \
        {                                                                                              \
            T g = dy[base + i];                                                                        \
            if (ds) acc += (double)g * (double)x[base + i];                                            \
            if (dx) dx[base + i] = g * sr;                                                             \
        }                                                                                              \
        if (ds)                                                                                        \
        {                                                                                              \
            double total = block_sum(acc);                                                             \
            if (threadIdx.x == 0) ds[r] = (T)total;                                                    \
        }                                                                                              \
    }                                                                                                  \
}                                                                                                      \
extern "C" __global__ void fill_##sfx(T* y, T value, i64 n)                                           \
{                                                                                                      \
    GRID_STRIDE(i, n) y[i] = value;                                                                    \
}

FOR_FLOAT_TYPES(ELEMENTWISE)

// 8-byte integer fill (1-, 2- and 4-byte fills use cuMemsetD8/16/32 on the host side).
extern "C" __global__ void fill_i64(i64* y, i64 value, i64 n)
{
    GRID_STRIDE(i, n) y[i] = value;
}

__device__ __forceinline__ double load_as_double(const void* p, int type, i64 i)
{
    switch (type)
    {
        case DT_F32: return (double)((const float*)p)[i];
        case DT_F64: return ((const double*)p)[i];
        case DT_F16: return (double)half_to_float(((const u16*)p)[i]);
        case DT_BF16: return (double)bf16_to_float(((const u16*)p)[i]);
        case DT_I64: return (double)((const i64*)p)[i];
        case DT_I32: return (double)((const int*)p)[i];
        case DT_U8: return (double)((const unsigned char*)p)[i];
        default: return quiet_nan();
    }
}

__device__ __forceinline__ void store_from_double(void* p, int type, i64 i, double v)
{
    switch (type)
    {
        case DT_F32: ((float*)p)[i] = (float)v; break;
        case DT_F64: ((double*)p)[i] = v; break;
        case DT_F16: ((u16*)p)[i] = float_to_half((float)v); break;
        case DT_BF16: ((u16*)p)[i] = float_to_bf16((float)v); break;
        case DT_I64: ((i64*)p)[i] = (i64)v; break;
        case DT_I32: ((int*)p)[i] = (int)v; break;
        case DT_U8: ((unsigned char*)p)[i] = (unsigned char)v; break;
        default: break;
    }
}

// dst = (dstType) src for any pair of element types, through double (as the CPU backend does).
// Casts are not on hot paths; one kernel with a uniform switch keeps the kernel count small.
extern "C" __global__ void cast(void* dst, int dstType, const void* src, int srcType, i64 n)
{
    GRID_STRIDE(i, n) store_from_double(dst, dstType, i, load_as_double(src, srcType, i));
}
