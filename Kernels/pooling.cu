// Pooling: max pooling with I32 argmax indices (offset h * W + w inside the plane, whatever the
// memory format), average pooling with count_include_pad and ceil mode exactly as PyTorch, and
// global average pooling; NCHW, or channels-last when nhwc is 1 (same arithmetic in the same order,
// only the addresses differ). Backward passes gather (each input element sums the outputs whose
// window covers it) instead of scattering with atomics, so they are deterministic and need no
// zeroed output. 16-bit elements are widened on load; sums run in the compute type.
// Gradient rules: maxpool dX[argmax] += dY; avgpool dX[window] += dY / divisor; global dX = dY / (H W).
#include "common.cuh"

// Range [*lo, *hi) of output rows whose window (start o*stride - pad, length k) covers input row h.
__device__ __forceinline__ void covering(int h, int k, int stride, int pad, int outSize, int* lo, int* hi)
{
    int a = h + pad;
    *lo = a < k ? 0 : (a - k) / stride + 1;
    int e = a / stride + 1;
    *hi = e < outSize ? e : outSize;
}

// (n, c, y, x) of element i of an (N, C, Y, X) tensor, NCHW or NHWC.
__device__ __forceinline__ void unravel(i64 i, int nhwc, int C, int Y, int X, i64* n, int* c, int* y, int* x)
{
    if (nhwc)
    {
        *c = (int)(i % C);
        *x = (int)((i / C) % X);
        *y = (int)((i / ((i64)C * X)) % Y);
        *n = i / ((i64)C * X * Y);
    }
    else
    {
        *x = (int)(i % X);
        *y = (int)((i / X) % Y);
        *c = (int)((i / ((i64)X * Y)) % C);
        *n = i / ((i64)X * Y * C);
    }
}

// PyTorch's divisor for the window of output (p, q): with count_include_pad the window is clipped
// to the padded input (H + 2 ph), otherwise to the input itself.
__device__ __forceinline__ int avg_window(int p, int q, int H, int W, int kh, int kw, int sh, int sw,
                                          int ph, int pw, int countIncludePad)
{
    int h0 = p * sh - ph, w0 = q * sw - pw;
    int h1 = min(h0 + kh, H + ph), w1 = min(w0 + kw, W + pw);
    int padded = (h1 - h0) * (w1 - w0);
    if (countIncludePad) return padded;
    h0 = max(h0, 0); w0 = max(w0, 0);
    h1 = min(h1, H); w1 = min(w1, W);
    return (h1 - h0) * (w1 - w0);
}

#define POOLING(sfx, T, C)                                                                             \
/* Thread per output (n, c, p, q); windows clipped to the input, padding never wins. */                \
extern "C" __global__ void maxpool_forward_##sfx(T* y, int* indices, const T* x, int N, int Ch, int H,\
    int W, int P, int Q, int kh, int kw, int sh, int sw, int ph, int pw, int nhwc)                     \
{                                                                                                      \
    GRID_STRIDE(o, (i64)N * Ch * P * Q)                                                                \
    {                                                                                                  \
        i64 n; int c, p, q;                                                                            \
        unravel(o, nhwc, Ch, P, Q, &n, &c, &p, &q);                                                    \
        int h0 = p * sh - ph, w0 = q * sw - pw;                                                        \
        int h1 = min(h0 + kh, H), w1 = min(w0 + kw, W);                                                \
        h0 = max(h0, 0); w0 = max(w0, 0);                                                              \
        C best = (C)neg_inf();                                                                         \
        int arg = h0 * W + w0;                                                                         \
        for (int h = h0; h < h1; h++)                                                                  \
            for (int w = w0; w < w1; w++)                                                              \
            {                                                                                          \
                C v = load_c(x, at_nchw(nhwc, n, c, (i64)h * W + w, Ch, (i64)H * W));                  \
                if (v > best || is_nan(v)) { best = v; arg = h * W + w; }                              \
            }                                                                                          \
        store_c(y, o, best);                                                                           \
        indices[o] = arg;                                                                              \
    }                                                                                                  \
}                                                                                                      \
/* Thread per input (n, c, h, w): sum of dY over the outputs whose argmax is this element. */          \
extern "C" __global__ void maxpool_backward_##sfx(T* dx, const T* dy, const int* indices, int N,      \
    int Ch, int H, int W, int P, int Q, int kh, int kw, int sh, int sw, int ph, int pw, int nhwc)      \
{                                                                                                      \
    GRID_STRIDE(i, (i64)N * Ch * H * W)                                                                \
    {                                                                                                  \
        i64 n; int c, h, w;                                                                            \
        unravel(i, nhwc, Ch, H, W, &n, &c, &h, &w);                                                    \
        int p0, p1, q0, q1;                                                                            \
        covering(h, kh, sh, ph, P, &p0, &p1);                                                          \
        covering(w, kw, sw, pw, Q, &q0, &q1);                                                          \
        const int self = h * W + w;                                                                    \
        C acc = C(0);                                                                                  \
        for (int p = p0; p < p1; p++)                                                                  \
            for (int q = q0; q < q1; q++)                                                              \
            {                                                                                          \
                i64 o = at_nchw(nhwc, n, c, (i64)p * Q + q, Ch, (i64)P * Q);                           \
                if (indices[o] == self) acc += load_c(dy, o);                                          \
            }                                                                                          \
        store_c(dx, i, acc);                                                                           \
    }                                                                                                  \
}                                                                                                      \
extern "C" __global__ void avgpool_forward_##sfx(T* y, const T* x, int N, int Ch, int H, int W, int P,\
    int Q, int kh, int kw, int sh, int sw, int ph, int pw, int countIncludePad, int nhwc)              \
{                                                                                                      \
    GRID_STRIDE(o, (i64)N * Ch * P * Q)                                                                \
    {                                                                                                  \
        i64 n; int c, p, q;                                                                            \
        unravel(o, nhwc, Ch, P, Q, &n, &c, &p, &q);                                                    \
        int divisor = avg_window(p, q, H, W, kh, kw, sh, sw, ph, pw, countIncludePad);                 \
        int h0 = max(p * sh - ph, 0), w0 = max(q * sw - pw, 0);                                        \
        int h1 = min(p * sh - ph + kh, H), w1 = min(q * sw - pw + kw, W);                              \
        C acc = C(0);                                                                                  \
        for (int h = h0; h < h1; h++)                                                                  \
            for (int w = w0; w < w1; w++) acc += load_c(x, at_nchw(nhwc, n, c, (i64)h * W + w, Ch, (i64)H * W)); \
        store_c(y, o, acc / (C)divisor);                                                               \
    }                                                                                                  \
}                                                                                                      \
extern "C" __global__ void avgpool_backward_##sfx(T* dx, const T* dy, int N, int Ch, int H, int W,    \
    int P, int Q, int kh, int kw, int sh, int sw, int ph, int pw, int countIncludePad, int nhwc)       \
{                                                                                                      \
    GRID_STRIDE(i, (i64)N * Ch * H * W)                                                                \
    {                                                                                                  \
        i64 n; int c, h, w;                                                                            \
        unravel(i, nhwc, Ch, H, W, &n, &c, &h, &w);                                                    \
        int p0, p1, q0, q1;                                                                            \
        covering(h, kh, sh, ph, P, &p0, &p1);                                                          \
        covering(w, kw, sw, pw, Q, &q0, &q1);                                                          \
        C acc = C(0);                                                                                  \
        for (int p = p0; p < p1; p++)                                                                  \
            for (int q = q0; q < q1; q++)                                                              \
                acc += load_c(dy, at_nchw(nhwc, n, c, (i64)p * Q + q, Ch, (i64)P * Q))                 \
                    / (C)avg_window(p, q, H, W, kh, kw, sh, sw, ph, pw, countIncludePad);              \
        store_c(dx, i, acc);                                                                           \
    }                                                                                                  \
}                                                                                                      \
/* One warp per plane (n, c): y[n, c] = mean of its H*W elements, in the same order for both formats. */\
extern "C" __global__ void global_avgpool_forward_##sfx(T* y, const T* x, i64 N, i64 Ch, i64 HW, int nhwc) \
{                                                                                                      \
    const int lane = threadIdx.x & 31;                                                                 \
    const i64 warpsPerGrid = ((i64)gridDim.x * blockDim.x) >> 5;                                       \
    for (i64 nc = ((i64)blockIdx.x * blockDim.x + threadIdx.x) >> 5; nc < N * Ch; nc += warpsPerGrid)  \
    {                                                                                                  \
        const i64 n = nc / Ch, c = nc % Ch;                                                            \
        double acc = 0.0;                                                                              \
        for (i64 i = lane; i < HW; i += 32) acc += (double)load_c(x, at_nchw(nhwc, n, c, i, Ch, HW));  \
        acc = warp_sum(acc);                                                                           \
        if (lane == 0) store_c(y, nc, (C)(acc / (double)HW));                                          \
    }                                                                                                  \
}                                                                                                      \
/* y (N, C, 1, 1) is the same memory in both formats: element n * C + c. */                           \
extern "C" __global__ void global_avgpool_backward_##sfx(T* dx, const T* dy, i64 N, i64 Ch, i64 HW,   \
    int nhwc)                                                                                          \
{                                                                                                      \
    GRID_STRIDE(i, N * Ch * HW)                                                                        \
    {                                                                                                  \
        i64 nc = nhwc ? (i / (HW * Ch)) * Ch + i % Ch : i / HW;                                        \
        store_c(dx, i, load_c(dy, nc) / (C)HW);                                                        \
    }                                                                                                  \
}

FOR_FLOAT_TYPES(POOLING)
