// Device-side shim that lets Kernels/*.cu compile as plain C++ and run on the CPU, for the GPU
// emulator (see README.md). CUDA threads of one block are cooperative fibers (ucontext) on one OS
// thread: __syncthreads and warp shuffles are yield points that wait until every thread of the block
// (or warp) has arrived, so barrier and shuffle semantics are those of the hardware. Blocks run one
// after another, so __shared__ variables become function statics. Not fast; only faithful.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

struct dim3 { unsigned x = 1, y = 1, z = 1; };

namespace emu
{
    extern dim3 g_blockIdx, g_blockDim, g_gridDim, g_threadIdx;
    void sync_block();
    void sync_warp();
    double* warp_slots(); // 32 doubles for the calling thread's warp
    int lane();
}

#define blockIdx (::emu::g_blockIdx)
#define blockDim (::emu::g_blockDim)
#define gridDim (::emu::g_gridDim)
#define threadIdx (::emu::g_threadIdx)

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __restrict__
#define __shared__ static

inline void __syncthreads() { emu::sync_block(); }

template <typename T> inline T __shfl_down_sync(unsigned, T v, int offset)
{
    double* slots = emu::warp_slots();
    int l = emu::lane();
    slots[l] = (double)v;
    emu::sync_warp();
    T r = (l + offset < 32) ? (T)slots[l + offset] : v;
    emu::sync_warp();
    return r;
}

inline double __longlong_as_double(long long v) { double d; std::memcpy(&d, &v, 8); return d; }
inline unsigned __float_as_uint(float f) { unsigned u; std::memcpy(&u, &f, 4); return u; }
inline float __uint_as_float(unsigned u) { float f; std::memcpy(&f, &u, 4); return f; }

// IEEE half conversions (round to nearest even), replacing the inline PTX of common.cuh.
inline float emu_half_to_float(unsigned short h) { _Float16 x; std::memcpy(&x, &h, 2); return (float)x; }
inline unsigned short emu_float_to_half(float f) { _Float16 x = (_Float16)f; unsigned short h; std::memcpy(&h, &x, 2); return h; }

inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline long long max(long long a, long long b) { return a > b ? a : b; }
