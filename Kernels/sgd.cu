// One fused SGD step per parameter, as torch.optim.SGD:
//   g = grad + wd * param
//   buf = firstStep ? g : momentum * buf + (1 - dampening) * g      (only when momentum != 0)
//   step = nesterov ? g + momentum * buf : buf                        (g when momentum == 0)
//   param -= lr * step
// lr is a kernel argument (a schedule changes it every step without recompiling anything).
// Arithmetic is in the parameter's type, as PyTorch does.
#include "common.cuh"

#define SGD(sfx, T)                                                                                    \
extern "C" __global__ void sgd_update_##sfx(T* param, const T* grad, T* buf, i64 n, double lr,        \
    double momentum, double dampening, double weightDecay, int nesterov, int firstStep)                \
{                                                                                                      \
    const T wd = (T)weightDecay, mom = (T)momentum, keep = (T)(1.0 - dampening), rate = (T)lr;         \
    GRID_STRIDE(i, n)                                                                                  \
    {                                                                                                  \
        T p = param[i];                                                                                \
        T g = grad[i];                                                                                 \
        if (weightDecay != 0.0) g += wd * p;                                                           \
        T step = g;                                                                                    \
        if (momentum != 0.0)                                                                           \
        {                                                                                              \
            T b = firstStep ? g : mom * buf[i] + keep * g;                                             \
            buf[i] = b;                                                                                \
            step = nesterov ? g + mom * b : b;                                                         \
        }                                                                                              \
        param[i] = p - rate * step;                                                                    \
    }                                                                                                  \
}

FOR_FLOAT_TYPES(SGD)
