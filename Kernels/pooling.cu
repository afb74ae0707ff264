// Pooling: max pooling with I32 argmax indices (offset h * W + w inside the plane), average
// pooling with count_include_pad and ceil mode exactly as PyTorch, and global average pooling.
// Backward passes gather (each input element sums the outputs whose window covers it) instead of
// scattering with atomics, so they are deterministic and need no zeroed output.
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

#define POOLING(sfx, T)                                                                                \
/* Thread per output (nc, p, q); windows clipped to the input, padding never wins. */                  \
extern "C" __global__ void maxpool_forward_##sfx(T* y, int* indices, const T* x, int NC, int H, int W,\
    int P, int Q, int kh, int kw, int sh, int sw, int ph, int pw)                                      \
{                                                                                                      \
    GRID_STRIDE(o, (i64)NC * P * Q)                                                                    \
    {                                                                                                  \
        int q = (int)(o % Q), p = (int)((o / Q) % P);                                                  \
        i64 nc = o / ((i64)P * Q);                                                                     \
        int h0 = p * sh - ph, w0 = q * sw - pw;                                                        \
        int h1 = min(h0 + kh, H), w1 = min(w0 + kw, W);                                                \
        h0 = max(h0, 0); w0 = max(w0, 0);                                                              \
        const T* plane = x + nc * H * W;                                                               \
        T best = (T)neg_inf();                                                                         \
        int arg = h0 * W + w0;                                                                         \
        for (int h = h0; h < h1; h++)                                                                  \
            for (int w = w0; w < w1; w++)                                                              \
            {                                                                                          \
                T v = plane[h * W + w];                                                                \
                if (v > best || is_nan(v)) { best = v; arg = h * W + w; }                              \
            }                                                                                          \
        y[o] = best;                                                                                   \
        indices[o] = arg;                                                                              \
    }                                                                                                  \
}                                                                                                      \
/* Thread per input (nc, h, w): sum of dY over the outputs whose argmax is this element. */            \
extern "C" __global__ void maxpool_backward_##sfx(T* dx, const T* dy, const int* indices, int NC,     \
    int H, int W, int P, int Q, int kh, int kw, int sh, int sw, int ph, int pw)                        \
{                                                                                                      \
    GRID_STRIDE(i, (i64)NC * H * W)                                                                    \
    {                                                                                                  \
        int w = (int)(i % W), h = (int)((i / W) % H);                                                  \
        i64 nc = i / ((i64)H * W);                                                                     \
        int p0, p1, q0, q1;                                                                            \
        covering(h, kh, sh, ph, P, &p0, &p1);                                                          \
        covering(w, kw, sw, pw, Q, &q0, &q1);                                                          \
        const i64 base = nc * P * Q;                                                                   \
        const int self = h * W + w;                                                                    \
        T acc = T(0);                                                                                  \
        for (int p = p0; p < p1; p++)                                                                  \
            for (int q = q0; q < q1; q++)                                                              \
                if (indices[base + p * Q + q] == self) acc += dy[base + p * Q + q];                    \
        dx[i] = acc;                                                                                   \
    }                                                                                                  \
}                                                                                                      \
extern "C" __global__ void avgpool_forward_##sfx(T* y, const T* x, int NC, int H, int W, int P, int Q,\
    int kh, int kw, int sh, int sw, int ph, int pw, int countIncludePad)                               \
{                                                                                                      \
    GRID_STRIDE(o, (i64)NC * P * Q)                                                                    \
    {                                                                                                  \
        int q = (int)(o % Q), p = (int)((o / Q) % P);                                                  \
        i64 nc = o / ((i64)P * Q);                                                                     \
        int divisor = avg_window(p, q, H, W, kh, kw, sh, sw, ph, pw, countIncludePad);                 \
        int h0 = max(p * sh - ph, 0), w0 = max(q * sw - pw, 0);                                        \
        int h1 = min(p * sh - ph + kh, H), w1 = min(q * sw - pw + kw, W);                              \
        const T* plane = x + nc * H * W;                                                               \
        T acc = T(0);                                                                                  \
        for (int h = h0; h < h1; h++)                                                                  \
            for (int w = w0; w < w1; w++) acc += plane[h * W + w];                                     \
        y[o] = acc / (T)divisor;                                                                       \
    }                                                                                                  \
}                                                                                                      \
extern "C" __global__ void avgpool_backward_##sfx(T* dx, const T* dy, int NC, int H, int W, int P,    \
    int Q, int kh, int kw, int sh, int sw, int ph, int pw, int countIncludePad)                        \
{                                                                                                      \
    GRID_STRIDE(i, (i64)NC * H * W)                                                                    \
    {                                                                                                  \
        int w = (int)(i % W), h = (int)((i / W) % H);                                                  \
        i64 nc = i / ((i64)H * W);                                                                     \
        int p0, p1, q0, q1;                                                                            \
        covering(h, kh, sh, ph, P, &p0, &p1);                                                          \
        covering(w, kw, sw, pw, Q, &q0, &q1);                                                          \
        const T* g = dy + nc * P * Q;                                                                  \
        T acc = T(0);                                                                                  \
        for (int p = p0; p < p1; p++)                                                                  \
            for (int q = q0; q < q1; q++)                                                              \
                acc += g[p * Q + q] / (T)avg_window(p, q, H, W, kh, kw, sh, sw, ph, pw, countIncludePad); \
        dx[i] = acc;                                                                                   \
    }                                                                                                  \
}                                                                                                      \
/* One warp per plane: y[nc] = mean of x[nc, :, :]. */                                                \
extern "C" __global__ void global_avgpool_forward_##sfx(T* y, const T* x, i64 NC, i64 HW)             \
{                                                                                                      \
    const int lane = threadIdx.x & 31;                                                                 \
    const i64 warpsPerGrid = ((i64)gridDim.x * blockDim.x) >> 5;                                       \
    for (i64 nc = ((i64)blockIdx.x * blockDim.x + threadIdx.x) >> 5; nc < NC; nc += warpsPerGrid)      \
    {                                                                                                  \
        const T* plane = x + nc * HW;                                                                  \
        double acc = 0.0;                                                                              \
        for (i64 i = lane; i < HW; i += 32) acc += (double)plane[i];                                   \
        acc = warp_sum(acc);                                                                           \
        if (lane == 0) y[nc] = (T)(acc / (double)HW);                                                  \
    }                                                                                                  \
}                                                                                                      \
extern "C" __global__ void global_avgpool_backward_##sfx(T* dx, const T* dy, i64 NC, i64 HW)          \
{                                                                                                      \
    GRID_STRIDE(i, NC * HW) dx[i] = dy[i / HW] / (T)HW;                                                \
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

FOR_FLOAT_TYPES(POOLING)
