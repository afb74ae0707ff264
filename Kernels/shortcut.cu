// Option-A shortcut of He et al. (CIFAR ResNets): spatial subsampling by `stride` plus zero
// channels. y (N, K, P, Q) with P = ceil(H / stride); y[:, padBefore + c] = x[:, c, ::stride, ::stride],
// every other channel is zero. Gradient rule: dX[:, c, ::stride, ::stride] = dY[:, padBefore + c],
// every other element of dX is zero. NCHW, or channels-last when nhwc is 1 (elements are copied,
// so 16-bit values pass through unchanged).
#include "common.cuh"

// (n, c, y, x) of element i of an (N, C, Y, X) tensor, NCHW or NHWC.
__device__ __forceinline__ void unravel4(i64 i, int nhwc, int C, int Y, int X, i64* n, int* c, int* y, int* x)
{
    if (nhwc) { *c = (int)(i % C); *x = (int)((i / C) % X); *y = (int)((i / ((i64)C * X)) % Y); *n = i / ((i64)C * X * Y); }
    else { *x = (int)(i % X); *y = (int)((i / X) % Y); *c = (int)((i / ((i64)X * Y)) % C); *n = i / ((i64)X * Y * C); }
}

#define SHORTCUT(sfx, T, C)                                                                            \
extern "C" __global__ void shortcut_a_forward_##sfx(T* y, const T* x, int N, int Cx, int H, int W,    \
    int K, int P, int Q, int stride, int padBefore, int nhwc)                                          \
{                                                                                                      \
    GRID_STRIDE(i, (i64)N * K * P * Q)                                                                 \
    {                                                                                                  \
        i64 n; int k, p, q;                                                                            \
        unravel4(i, nhwc, K, P, Q, &n, &k, &p, &q);                                                    \
        int c = k - padBefore;                                                                         \
        if (c >= 0 && c < Cx)                                                                          \
            y[i] = x[at_nchw(nhwc, n, c, (i64)p * stride * W + (i64)q * stride, Cx, (i64)H * W)];      \
        else store_c(y, i, C(0));                                                                      \
    }                                                                                                  \
}                                                                                                      \
extern "C" __global__ void shortcut_a_backward_##sfx(T* dx, const T* dy, int N, int Cx, int H, int W, \
    int K, int P, int Q, int stride, int padBefore, int nhwc)                                          \
{                                                                                                      \
    GRID_STRIDE(i, (i64)N * Cx * H * W)                                                                \
    {                                                                                                  \
        i64 n; int c, h, w;                                                                            \
        unravel4(i, nhwc, Cx, H, W, &n, &c, &h, &w);                                                   \
        if (h % stride == 0 && w % stride == 0)                                                        \
            dx[i] = dy[at_nchw(nhwc, n, c + padBefore, (i64)(h / stride) * Q + w / stride, K, (i64)P * Q)]; \
        else store_c(dx, i, C(0));                                                                     \
    }                                                                                                  \
}

FOR_FLOAT_TYPES(SHORTCUT)
