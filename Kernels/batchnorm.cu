// Spatial batch normalisation over (N, H, W) per channel: our own kernels, used when cuDNN is
// absent, when eps is below cuDNN's minimum (1e-5), or on request (CudaBackend.UseCudnnBatchNorm).
// Training normalises with the batch statistics (biased variance), saves mean and
// invStd = 1 / sqrt(var + eps), and updates running stats with the UNBIASED variance:
//   r = (1 - momentum) r + momentum * stat.
// Gradient rule (M = N H W, xhat = (x - mean) invStd):
//   dBeta = sum dY, dGamma = sum dY xhat, dX = gamma invStd (dY - dBeta / M - xhat dGamma / M).
// x, y, dY, dX are stored as T (NCHW, or channels-last when nhwc is 1: same order of summation, only
// the addresses differ); gamma, beta and every statistic are in the compute type C, as cuDNN wants
// (F32 for 16-bit x). Statistics are accumulated in double.
#include "common.cuh"

#define BATCHNORM(sfx, T, C)                                                                           \
/* One block per channel c; two passes for the statistics (mean, then squared deviations). */         \
extern "C" __global__ void batchnorm_forward_training_##sfx(T* y, const T* x, const C* gamma,         \
    const C* beta, C* runningMean, C* runningVar, C* saveMean, C* saveInvStd, int N, int Ch, i64 HW,   \
    double momentum, double eps, int nhwc)                                                             \
{                                                                                                      \
    const i64 M = (i64)N * HW;                                                                         \
    for (int c = blockIdx.x; c < Ch; c += gridDim.x)                                                   \
    {                                                                                                  \
        double s = 0.0;                                                                                \
        for (i64 m = threadIdx.x; m < M; m += blockDim.x)                                              \
            s += (double)load_c(x, at_nchw(nhwc, m / HW, c, m % HW, Ch, HW));                          \
        const double mean = block_sum(s) / (double)M;                                                  \
        double q = 0.0;                                                                                \
        for (i64 m = threadIdx.x; m < M; m += blockDim.x)                                              \
        {                                                                                              \
            double d = (double)load_c(x, at_nchw(nhwc, m / HW, c, m % HW, Ch, HW)) - mean;             \
            q += d * d;                                                                                \
        }                                                                                              \
        const double var = block_sum(q) / (double)M;                                                   \
        const double invStd = 1.0 / sqrt(var + eps);                                                   \
        if (threadIdx.x == 0)                                                                          \
        {                                                                                              \
            saveMean[c] = (C)mean;                                                                     \
            saveInvStd[c] = (C)invStd;                                                                 \
            const double unbiased = M > 1 ? var * (double)M / (double)(M - 1) : var;                   \
            runningMean[c] = (C)((1.0 - momentum) * (double)runningMean[c] + momentum * mean);         \
            runningVar[c] = (C)((1.0 - momentum) * (double)runningVar[c] + momentum * unbiased);       \
        }                                                                                              \
        const C scale = (C)((double)gamma[c] * invStd);                                                \
        const C shift = (C)((double)beta[c] - mean * (double)gamma[c] * invStd);                       \
        for (i64 m = threadIdx.x; m < M; m += blockDim.x)                                              \
        {                                                                                              \
            i64 idx = at_nchw(nhwc, m / HW, c, m % HW, Ch, HW);                                        \
            store_c(y, idx, load_c(x, idx) * scale + shift);                                           \
        }                                                                                              \
    }                                                                                                  \
}                                                                                                      \
/* Elementwise with the running statistics. */                                                        \
extern "C" __global__ void batchnorm_forward_inference_##sfx(T* y, const T* x, const C* gamma,        \
    const C* beta, const C* runningMean, const C* runningVar, int Ch, i64 HW, i64 total, double eps,   \
    int nhwc)                                                                                          \
{                                                                                                      \
    GRID_STRIDE(i, total)                                                                              \
    {                                                                                                  \
        int c = (int)(nhwc ? i % Ch : (i / HW) % Ch);                                                  \
        C invStd = (C)(1.0 / sqrt((double)runningVar[c] + eps));                                       \
        store_c(y, i, (load_c(x, i) - runningMean[c]) * invStd * gamma[c] + beta[c]);                  \
    }                                                                                                  \
}                                                                                                      \
/* One block per channel: the two parameter gradients, then dX. */                                    \
extern "C" __global__ void batchnorm_backward_##sfx(T* dx, C* dgamma, C* dbeta, const T* dy,          \
    const T* x, const C* gamma, const C* saveMean, const C* saveInvStd, int N, int Ch, i64 HW,         \
    int nhwc)                                                                                          \
{                                                                                                      \
    const i64 M = (i64)N * HW;                                                                         \
    for (int c = blockIdx.x; c < Ch; c += gridDim.x)                                                   \
    {                                                                                                  \
        const double mean = (double)saveMean[c], invStd = (double)saveInvStd[c];                       \
        double sdy = 0.0, sdyx = 0.0;                                                                  \
        for (i64 m = threadIdx.x; m < M; m += blockDim.x)                                              \
        {                                                                                              \
            i64 idx = at_nchw(nhwc, m / HW, c, m % HW, Ch, HW);                                        \
            double g = (double)load_c(dy, idx);                                                        \
            sdy += g;                                                                                  \
            sdyx += g * ((double)load_c(x, idx) - mean) * invStd;                                      \
        }                                                                                              \
        const double db = block_sum(sdy), dg = block_sum(sdyx);                                        \
        if (threadIdx.x == 0) { dbeta[c] = (C)db; dgamma[c] = (C)dg; }                                 \
        const double k = (double)gamma[c] * invStd;                                                    \
        for (i64 m = threadIdx.x; m < M; m += blockDim.x)                                              \
        {                                                                                              \
            i64 idx = at_nchw(nhwc, m / HW, c, m % HW, Ch, HW);                                        \
            double xhat = ((double)load_c(x, idx) - mean) * invStd;                                    \
            store_c(dx, idx, (C)(k * ((double)load_c(dy, idx) - db / (double)M - xhat * dg / (double)M))); \
        }                                                                                              \
    }                                                                                                  \
}

FOR_FLOAT_TYPES(BATCHNORM)
