// Option-A shortcut of He et al. (CIFAR ResNets): spatial subsampling by `stride` plus zero
// channels. y (N, K, P, Q) with P = ceil(H / stride); y[:, padBefore + c] = x[:, c, ::stride, ::stride],
// every other channel is zero. Gradient rule: dX[:, c, ::stride, ::stride] = dY[:, padBefore + c],
// every other element of dX is zero.
#include "common.cuh"

#define SHORTCUT(sfx, T)                                                                               \
extern "C" __global__ void shortcut_a_forward_##sfx(T* y, const T* x, int N, int C, int H, int W,     \
    int K, int P, int Q, int stride, int padBefore)                                                    \
{                                                                                                      \
    GRID_STRIDE(i, (i64)N * K * P * Q)                                                                 \
    {                                                                                                  \
        int q = (int)(i % Q), p = (int)((i / Q) % P);                                                  \
        int k = (int)((i / ((i64)P * Q)) % K);                                                         \
        i64 n = i / ((i64)K * P * Q);                                                                  \
        int c = k - padBefore;                                                                         \
        y[i] = (c >= 0 && c < C) ? x[((n * C + c) * H + (i64)p * stride) * W + (i64)q * stride] : T(0);\
    }                                                                                                  \
}                                                                                                      \
extern "C" __global__ void shortcut_a_backward_##sfx(T* dx, const T* dy, int N, int C, int H, int W,  \
    int K, int P, int Q, int stride, int padBefore)                                                    \
{                                                                                                      \
    GRID_STRIDE(i, (i64)N * C * H * W)                                                                 \
    {                                                                                                  \
        int w = (int)(i % W), h = (int)((i / W) % H);                                                  \
        int c = (int)((i / ((i64)H * W)) % C);                                                         \
        i64 n = i / ((i64)C * H * W);                                                                  \
        dx[i] = (h % stride == 0 && w % stride == 0)                                                   \
            ? dy[((n * K + c + padBefore) * P + h / stride) * Q + w / stride] : T(0);                  \
    }                                                                                                  \
}

FOR_FLOAT_TYPES(SHORTCUT)
