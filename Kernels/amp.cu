// Loss scaling (torch.cuda.amp.GradScaler's unscale step, torch's
// _amp_foreach_non_finite_check_and_unscale_): grad *= invScale in place, and *foundInf = 1 when any
// element read was infinite or NaN. The flag is only ever set (every thread that sees a bad value
// writes the same 1), so one flag collects all gradients of a step; the host zeroes it before the
// first and reads it once, after the last.
#include "common.cuh"

#define AMP(sfx, T, C)                                                                                 \
extern "C" __global__ void amp_unscale_##sfx(T* grad, float* foundInf, double invScale, i64 n)        \
{                                                                                                      \
    const C inv = (C)invScale;                                                                         \
    GRID_STRIDE(i, n)                                                                                  \
    {                                                                                                  \
        C v = load_c(grad, i);                                                                         \
        if (is_nan(v - v)) *foundInf = 1.0f;                                                           \
        store_c(grad, i, v * inv);                                                                     \
    }                                                                                                  \
}

FOR_FLOAT_TYPES(AMP)
