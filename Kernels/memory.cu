// Fills, dtype casts and memory-format conversions: what the backend needs to initialise, convert
// and re-lay-out tensors. The pointwise ops (relu, add, ...) are in pointwise.cu.
#include "common.cuh"

#define FILL(sfx, T, C)                                                                                \
extern "C" __global__ void fill_##sfx(T* y, T value, i64 n)                                           \
{                                                                                                      \
    GRID_STRIDE(i, n) y[i] = value;                                                                    \
}

FOR_FLOAT_TYPES(FILL)

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

// dst = (dstType) src for any pair of element types, through double (as the CPU backend does;
// into 16-bit types through float, so a value rounds once more only where the CPU's does too).
// Casts are not on hot paths; one kernel with a uniform switch keeps the kernel count small.
extern "C" __global__ void cast(void* dst, int dstType, const void* src, int srcType, i64 n)
{
    GRID_STRIDE(i, n) store_from_double(dst, dstType, i, load_as_double(src, srcType, i));
}

// Memory-format conversion, by element size: for each of N images, dst (cols, rows) = src (rows, cols)
// transposed. NCHW -> NHWC is rows = C, cols = H*W; NHWC -> NCHW is rows = H*W, cols = C.
#define CONVERT_LAYOUT(sfx, T)                                                                         \
extern "C" __global__ void convert_layout_##sfx(T* dst, const T* src, i64 N, i64 rows, i64 cols)      \
{                                                                                                      \
    const i64 per = rows * cols;                                                                       \
    GRID_STRIDE(i, N * per)                                                                            \
    {                                                                                                  \
        i64 n = i / per, r = (i / cols) % rows, c = i % cols;                                          \
        dst[n * per + c * rows + r] = src[i];                                                          \
    }                                                                                                  \
}

CONVERT_LAYOUT(u8, unsigned char)
CONVERT_LAYOUT(u16, u16)
CONVERT_LAYOUT(u32, u32)
CONVERT_LAYOUT(u64, u64)
