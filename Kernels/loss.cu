// Softmax cross-entropy with label smoothing eps over K classes:
//   loss_n = -(1 - eps) log p[label] - eps / K sum_k log p[k],  loss = mean_n loss_n.
// The forward writes the softmax and one loss per row (in double); sum_finalize in reduce.cu then
// takes the mean on the device, so reading the loss is the caller's choice (no host sync here).
// Gradient rule: dLogits = dLoss * (probs - target) / N with target = (1 - eps) onehot + eps / K;
// dLoss is read from device memory. A label outside [0, K) gives a NaN loss for its row. 16-bit
// logits are widened on load; the softmax is computed in double and rounded once into probs.
#include "common.cuh"

#define LOSS(sfx, T, C)                                                                                  \
/* One block per row n. */                                                                             \
extern "C" __global__ void softmax_xent_forward_##sfx(T* probs, double* rowLoss, const T* logits,     \
    const i64* labels, int N, int K, double eps)                                                       \
{                                                                                                      \
    for (int n = blockIdx.x; n < N; n += gridDim.x)                                                    \
    {                                                                                                  \
        const i64 row = (i64)n * K;                                                                    \
        double m = neg_inf();                                                                          \
        for (int k = threadIdx.x; k < K; k += blockDim.x)                                              \
        {                                                                                              \
            double v = (double)load_c(logits, row + k);                                                                 \
            if (v > m || is_nan(v)) m = v;                                                             \
        }                                                                                              \
        m = block_max(m);                                                                              \
        double se = 0.0, sx = 0.0;                                                                     \
        for (int k = threadIdx.x; k < K; k += blockDim.x)                                              \
        {                                                                                              \
            double v = (double)load_c(logits, row + k);                                                                 \
            se += exp(v - m);                                                                          \
            sx += v;                                                                                   \
        }                                                                                              \
        se = block_sum(se);                                                                            \
        sx = block_sum(sx);                                                                            \
        const double lse = m + log(se);                                                                \
        for (int k = threadIdx.x; k < K; k += blockDim.x)                                              \
            store_c(probs, row + k, (C)exp((double)load_c(logits, row + k) - lse));                    \
        if (threadIdx.x == 0)                                                                          \
        {                                                                                              \
            i64 label = labels[n];                                                                     \
            double loss;                                                                               \
            if (label < 0 || label >= K) loss = quiet_nan();                                           \
            else                                                                                       \
            {                                                                                          \
                loss = -(1.0 - eps) * ((double)load_c(logits, row + label) - lse);                                     \
                if (eps != 0.0) loss -= eps / K * (sx - K * lse);                                      \
            }                                                                                          \
            rowLoss[n] = loss;                                                                         \
        }                                                                                              \
    }                                                                                                  \
}                                                                                                      \
/* Thread per element of dLogits (N, K). */                                                           \
extern "C" __global__ void softmax_xent_backward_##sfx(T* dlogits, const T* dLoss, const T* probs,    \
    const i64* labels, int N, int K, double eps)                                                       \
{                                                                                                      \
    const C off = (C)(eps / K), on = (C)(1.0 - eps + eps / K);                                         \
    GRID_STRIDE(i, (i64)N * K)                                                                         \
    {                                                                                                  \
        /* dLoss is read inside the loop: hoisted above it, NVRTC 11.8 crashes compiling for sm_90. */ \
        const C g = (C)((double)load_c(dLoss, 0) / N);                                                 \
        int k = (int)(i % K);                                                                          \
        i64 label = labels[i / K];                                                                     \
        store_c(dlogits, i, g * (load_c(probs, i) - (k == label ? on : off)));                        \
    }                                                                                                  \
}

FOR_FLOAT_TYPES(LOSS)
