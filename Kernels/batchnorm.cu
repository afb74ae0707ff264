// Spatial batch normalisation over (N, H, W) per channel: our own kernels, used when cuDNN is
// absent, when eps is below cuDNN's minimum (1e-5), or on request (CudaBackend.UseCudnnBatchNorm).
// Training normalises with the batch statistics (biased variance), saves mean and
// invStd = 1 / sqrt(var + eps), and updates running stats with the UNBIASED variance:
//   r = (1 - momentum) r + momentum * stat.
// Gradient rule (M = N H W, xhat = (x - mean) invStd):
//   dBeta = sum dY, dGamma = sum dY xhat, dX = gamma invStd (dY - dBeta / M - xhat dGamma / M).
#include "common.cuh"

#define BATCHNORM(sfx, T)                                                                              \
/* One block per channel c; two passes for the statistics (mean, then squared deviations). */         \
extern "C" __global__ void batchnorm_forward_training_##sfx(T* y, const T* x, const T* gamma,         \
    const T* beta, T* runningMean, T* runningVar, T* saveMean, T* saveInvStd, int N, int C, i64 HW,    \
    double momentum, double eps)                                                                       \
{                                                                                                      \
    const i64 M = (i64)N * HW;                                                                         \
    for (int c = blockIdx.x; c < C; c += gridDim.x)                                                    \
    {                                                                                                  \
        double s = 0.0;                                                                                \
        for (i64 m = threadIdx.x; m < M; m += blockDim.x)                                              \
            s += (double)x[((m / HW) * C + c) * HW + m % HW];                                          \
        const double mean = block_sum(s) / (double)M;                                                  \
        double q = 0.0;                                                                                \
        for (i64 m = threadIdx.x; m < M; m += blockDim.x)                                              \
        {                                                                                              \
            double d = (double)x[((m / HW) * C + c) * HW + m % HW] - mean;                             \
            q += d * d;                                                                                \
        }                                                                                              \
        const double var = block_sum(q) / (double)M;                                                   \
        const double invStd = 1.0 / sqrt(var + eps);                                                   \
        if (threadIdx.x == 0)                                                                          \
        {                                                                                              \
            saveMean[c] = (T)mean;                                                                     \
            saveInvStd[c] = (T)invStd;                                                                 \
            const double unbiased = M > 1 ? var * (double)M / (double)(M - 1) : var;                   \
            runningMean[c] = (T)((1.0 - momentum) * (double)runningMean[c] + momentum * mean);         \
            runningVar[c] = (T)((1.0 - momentum) * (double)runningVar[c] + momentum * unbiased);       \
        }                                                                                              \
        const T scale = (T)((double)gamma[c] * invStd);                                                \
        const T shift = (T)((double)beta[c] - mean * (double)gamma[c] * invStd);                       \
        for (i64 m = threadIdx.x; m < M; m += blockDim.x)                                              \
        {                                                                                              \
            i64 idx = ((m / HW) * C + c) * HW + m % HW;                                                \
            y[idx] = x[idx] * scale + shift;                                                           \
        }                                                                                              \
    }                                                                                                  \
}                                                                                                      \
/* Elementwise with the running statistics. */                                                        \
extern "C" __global__ void batchnorm_forward_inference_##sfx(T* y, const T* x, const T* gamma,        \
    const T* beta, const T* runningMean, const T* runningVar, int C, i64 HW, i64 total, double eps)    \
{                                                                                                      \
    GRID_STRIDE(i, total)                                                                              \
    {                                                                                                  \
        int c = (int)((i / HW) % C);                                                                   \
        T invStd = (T)(1.0 / sqrt((double)runningVar[c] + eps));                                       \
        y[i] = (x[i] - runningMean[c]) * invStd * gamma[c] + beta[c];                                  \
    }                                                                                                  \
}                                                                                                      \
/* One block per channel: the two parameter gradients, then dX. */                                    \
extern "C" __global__ void batchnorm_backward_##sfx(T* dx, T* dgamma, T* dbeta, const T* dy,          \
    const T* x, const T* gamma, const T* saveMean, const T* saveInvStd, int N, int C, i64 HW)         \
{                                                                                                      \
    const i64 M = (i64)N * HW;                                                                         \
    for (int c = blockIdx.x; c < C; c += gridDim.x)                                                    \
    {                                                                                                  \
        const double mean = (double)saveMean[c], invStd = (double)saveInvStd[c];                       \
        double sdy = 0.0, sdyx = 0.0;                                                                  \
        for (i64 m = threadIdx.x; m < M; m += blockDim.x)                                              \
        {                                                                                              \
            i64 idx = ((m / HW) * C + c) * HW + m % HW;                                                \
            double g = (double)dy[idx];                                                                \
            sdy += g;                                                                                  \
            sdyx += g * ((double)x[idx] - mean) * invStd;                                              \
        }                                                                                              \
        const double db = block_sum(sdy), dg = block_sum(sdyx);                                        \
        if (threadIdx.x == 0) { dbeta[c] = (T)db; dgamma[c] = (T)dg; }                                 \
        const double k = (double)gamma[c] * invStd;                                                    \
        for (i64 m = threadIdx.x; m < M; m += blockDim.x)                                              \
        {                                                                                              \
            i64 idx = ((m / HW) * C + c) * HW + m % HW;                                                \
            double xhat = ((double)x[idx] - mean) * invStd;                                            \
            dx[idx] = (T)(k * ((double)dy[idx] - db / (double)M - xhat * dg / (double)M));             \
        }                                                                                              \
    }                                                                                                  \
}

FOR_FLOAT_TYPES(BATCHNORM)
