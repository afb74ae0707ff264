// Shared helpers for every kernel file: integer types, the grid-stride loop, block reductions,
// fp16/bf16 storage and conversions, and NCHW/NHWC addressing. Self-contained on purpose: NVRTC
// compiles it with no CUDA headers (only libnvrtc is needed at run time), so the types and
// conversions are written out here.
#pragma once

typedef long long i64;
typedef unsigned long long u64;
typedef unsigned int u32;
typedef unsigned short u16;

// Element-type codes, identical to the C# DType enum (Engine/Tensors/DType.cs).
#define DT_F32 0
#define DT_F64 1
#define DT_F16 2
#define DT_BF16 3
#define DT_I64 4
#define DT_I32 5
#define DT_U8 6

// Storage of the 16-bit floats: two distinct 2-byte structs (both hold a u16), so that load_c and
// store_c below can overload on them. They are only ever stored and loaded; arithmetic is in float.
struct bf16s { u16 bits; };
struct f16s { u16 bits; };

// Every float kernel exists as NAME_f32, NAME_f64, NAME_bf16 and NAME_f16. A file defines its kernels
// in a macro taking (suffix, storage type T, compute type C) and expands it with FOR_FLOAT_TYPES; the
// kernel body reads elements with load_c (T -> C) and writes them with store_c (C -> T, rounding to
// nearest even), and computes in C: float for f32 and the 16-bit types, double for f64.
#define FOR_FLOAT_TYPES(M) M(f32, float, float) M(f64, double, double) M(bf16, bf16s, float) M(f16, f16s, float)

// The pointwise table (pointwise.cu): the same element types as (suffix, storage type, compute type).
#define FOR_POINTWISE_TYPES(M, name) \
    M(name, f32, float, float) M(name, f64, double, double) M(name, bf16, bf16s, float) M(name, f16, f16s, float)

// 64-bit grid-stride loop: any grid size covers any n.
#define GRID_STRIDE(i, n) \
    for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < (i64)(n); i += (i64)blockDim.x * gridDim.x)

__device__ __forceinline__ double neg_inf() { return __longlong_as_double((long long)0xfff0000000000000ULL); }
__device__ __forceinline__ double quiet_nan() { return __longlong_as_double(0x7ff8000000000000LL); }

__device__ __forceinline__ bool is_nan(float v) { return v != v; }
__device__ __forceinline__ bool is_nan(double v) { return v != v; }

__device__ __forceinline__ double warp_sum(double v)
{
    for (int off = 16; off > 0; off >>= 1) v += __shfl_down_sync(0xffffffffu, v, off);
    return v;
}

__device__ __forceinline__ double warp_max(double v)
{
    for (int off = 16; off > 0; off >>= 1)
    {
        double o = __shfl_down_sync(0xffffffffu, v, off);
        v = (o > v || is_nan(o)) ? o : v;
    }
    return v;
}

// Sum over the block (blockDim.x a multiple of 32, at most 1024); every thread gets the total.
// Deterministic: the combination order depends only on the block size.
__device__ __forceinline__ double block_sum(double v)
{
    __shared__ double partial[32];
    __shared__ double total;
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    v = warp_sum(v);
    __syncthreads(); // the shared slots may still be read by a previous call
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    if (warp == 0)
    {
        int warps = (blockDim.x + 31) >> 5;
        double w = lane < warps ? partial[lane] : 0.0;
        w = warp_sum(w);
        if (lane == 0) total = w;
    }
    __syncthreads();
    return total;
}

// Maximum over the block (NaN wins, as in PyTorch); every thread gets the result.
__device__ __forceinline__ double block_max(double v)
{
    __shared__ double partial[32];
    __shared__ double total;
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    v = warp_max(v);
    __syncthreads();
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    if (warp == 0)
    {
        int warps = (blockDim.x + 31) >> 5;
        double w = lane < warps ? partial[lane] : neg_inf();
        w = warp_max(w);
        if (lane == 0) total = w;
    }
    __syncthreads();
    return total;
}

// ---- fp16 / bf16 ----

// IEEE half <-> float with the hardware conversion (round to nearest even), via inline PTX.
__device__ __forceinline__ float half_to_float(u16 h)
{
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
    return f;
}

__device__ __forceinline__ u16 float_to_half(float f)
{
    u16 h;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));
    return h;
}

// bfloat16 is the top half of a float; rounding to nearest even is done on the integer bits.
__device__ __forceinline__ float bf16_to_float(u16 b)
{
    return __uint_as_float(((u32)b) << 16);
}

__device__ __forceinline__ u16 float_to_bf16(float f)
{
    u32 u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (u16)((u >> 16) | 0x0040u); // quiet NaN, sign kept
    u += 0x7fffu + ((u >> 16) & 1u);
    return (u16)(u >> 16);
}

// ---- math for the pointwise table, overloaded for float and double ----
__device__ __forceinline__ float exp_(float v) { return expf(v); }
__device__ __forceinline__ double exp_(double v) { return exp(v); }
__device__ __forceinline__ float log_(float v) { return logf(v); }
__device__ __forceinline__ double log_(double v) { return log(v); }
__device__ __forceinline__ float tanh_(float v) { return tanhf(v); }
__device__ __forceinline__ double tanh_(double v) { return tanh(v); }
__device__ __forceinline__ float sqrt_(float v) { return sqrtf(v); }
__device__ __forceinline__ double sqrt_(double v) { return sqrt(v); }
// NaN propagates through ReLU, as in PyTorch and the CPU backend.
template <typename C> __device__ __forceinline__ C relu_(C v) { return (v > C(0) || is_nan(v)) ? v : C(0); }

// Element loads and stores of every float kernel, converting storage to compute type and back.
__device__ __forceinline__ float load_c(const float* p, i64 i) { return p[i]; }
__device__ __forceinline__ double load_c(const double* p, i64 i) { return p[i]; }
__device__ __forceinline__ float load_c(const bf16s* p, i64 i) { return bf16_to_float(p[i].bits); }
__device__ __forceinline__ float load_c(const f16s* p, i64 i) { return half_to_float(p[i].bits); }
__device__ __forceinline__ void store_c(float* p, i64 i, float v) { p[i] = v; }
__device__ __forceinline__ void store_c(double* p, i64 i, double v) { p[i] = v; }
__device__ __forceinline__ void store_c(bf16s* p, i64 i, float v) { p[i].bits = float_to_bf16(v); }
__device__ __forceinline__ void store_c(f16s* p, i64 i, float v) { p[i].bits = float_to_half(v); }

// Element offset of (n, c, hw) in an (N, C, H*W) tensor stored NCHW, or channels-last (NHWC) when nhwc.
__device__ __forceinline__ i64 at_nchw(int nhwc, i64 n, i64 c, i64 hw, i64 C, i64 HW)
{
    return nhwc ? (n * HW + hw) * C + c : (n * C + c) * HW + hw;
}

// ---- pointwise kernel generators (one table line -> every element type) ----
#define POINTWISE_UNARY_KERNEL(name, sfx, T, C)                                                       \
extern "C" __global__ void name##_##sfx(T* y, const T* x, C alpha, C beta, i64 n)                    \
{                                                                                                     \
    GRID_STRIDE(i, n) store_c(y, i, name##_op<C>(load_c(x, i), alpha, beta));                                   \
}
#define POINTWISE_BINARY_KERNEL(name, sfx, T, C)                                                      \
extern "C" __global__ void name##_##sfx(T* y, const T* a, const T* b, C alpha, C beta, i64 n)        \
{                                                                                                     \
    GRID_STRIDE(i, n) store_c(y, i, name##_op<C>(load_c(a, i), load_c(b, i), alpha, beta));                          \
}                                                                                                     \
extern "C" __global__ void name##_bcast_##sfx(T* y, const T* a, const T* b, C alpha, C beta, i64 n,  \
                                              i64 inner, i64 period)                                  \
{                                                                                                     \
    GRID_STRIDE(i, n) store_c(y, i, name##_op<C>(load_c(a, i), load_c(b, (i / inner) % period), alpha, beta));        \
}
#define POINTWISE_TERNARY_KERNEL(name, sfx, T, C)                                                     \
extern "C" __global__ void name##_##sfx(T* y, const T* a, const T* b, const T* c, C alpha, C beta,   \
                                        i64 n)                                                        \
{                                                                                                     \
    GRID_STRIDE(i, n) store_c(y, i, name##_op<C>(load_c(a, i), load_c(b, i), load_c(c, i), alpha, beta));                 \
}
#define UNARY(name, expr)                                                                             \
    template <typename C> __device__ __forceinline__ C name##_op(C x, C alpha, C beta) { return (expr); } \
    FOR_POINTWISE_TYPES(POINTWISE_UNARY_KERNEL, name)
#define BINARY(name, expr)                                                                            \
    template <typename C> __device__ __forceinline__ C name##_op(C a, C b, C alpha, C beta) { return (expr); } \
    FOR_POINTWISE_TYPES(POINTWISE_BINARY_KERNEL, name)
#define TERNARY(name, expr)                                                                           \
    template <typename C> __device__ __forceinline__ C name##_op(C a, C b, C c, C alpha, C beta) { return (expr); } \
    FOR_POINTWISE_TYPES(POINTWISE_TERNARY_KERNEL, name)
