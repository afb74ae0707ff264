// One fused SGD step per parameter, as torch.optim.SGD:
//   g = grad + wd * param
//   buf = firstStep ? g : momentum * buf + (1 - dampening) * g      (only when momentum != 0)
//   step = nesterov ? g + momentum * buf : buf                        (g when momentum == 0)
//   param -= lr * step
// lr is a kernel argument (a schedule changes it every step without recompiling anything).
// Arithmetic is in the parameter's compute type (float for F32 and 16-bit parameters), as PyTorch.
#include "common.cuh"

#define SGD(sfx, T, C)                                                                                 \
extern "C" __global__ void sgd_update_##sfx(T* param, const T* grad, T* buf, i64 n, double lr,        \
    double momentum, double dampening, double weightDecay, int nesterov, int firstStep)                \
{                                                                                                      \
    const C wd = (C)weightDecay, mom = (C)momentum, keep = (C)(1.0 - dampening), rate = (C)lr;         \
    GRID_STRIDE(i, n)                                                                                  \
    {                                                                                                  \
        C p = load_c(param, i);                                                                        \
        C g = load_c(grad, i);                                                                         \
        if (weightDecay != 0.0) g += wd * p;                                                           \
        C step = g;                                                                                    \
        if (momentum != 0.0)                                                                           \
        {                                                                                              \
            C b = firstStep ? g : mom * load_c(buf, i) + keep * g;                                     \
            store_c(buf, i, b);                                                                        \
            step = nesterov ? g + mom * b : b;                                                         \
        }                                                                                              \
        store_c(param, i, p - rate * step);                                                            \
    }                                                                                                  \
}

FOR_FLOAT_TYPES(SGD)
