// Reductions, all accumulated in double and deterministic: the sum of all elements (two passes),
// column sums of a matrix, and per-plane sums (x viewed as (outer, period, inner) summed to
// (period)); the backend's SumTo picks one. 16-bit inputs are widened on load and the sum is
// rounded once into the result's type.
#include "common.cuh"

#define REDUCE(sfx, T, C)                                                                              \
/* Pass 1: each block writes the sum of its grid-stride share of x to partials[blockIdx.x]. */        \
extern "C" __global__ void sum_partial_##sfx(double* partials, const T* x, i64 n)                     \
{                                                                                                      \
    double acc = 0.0;                                                                                  \
    GRID_STRIDE(i, n) acc += (double)load_c(x, i);                                                     \
    double total = block_sum(acc);                                                                     \
    if (threadIdx.x == 0) partials[blockIdx.x] = total;                                                \
}                                                                                                      \
/* Pass 2 (one block): y[0] = scale * sum(partials). Also finishes the cross-entropy mean. */          \
extern "C" __global__ void sum_finalize_##sfx(T* y, const double* partials, int count, double scale)  \
{                                                                                                      \
    double acc = 0.0;                                                                                  \
    for (int i = threadIdx.x; i < count; i += blockDim.x) acc += partials[i];                         \
    double total = block_sum(acc);                                                                     \
    if (threadIdx.x == 0) store_c(y, 0, (C)(total * scale));                                           \
}                                                                                                      \
/* y (N) = sum over the M rows of x (M, N). Block (32, 8): 32 columns, 8 row lanes. */                \
extern "C" __global__ void sum_rows_##sfx(T* y, const T* x, int M, int N)                             \
{                                                                                                      \
    __shared__ double part[8][33];                                                                     \
    int j = blockIdx.x * 32 + threadIdx.x;                                                             \
    double acc = 0.0;                                                                                  \
    if (j < N)                                                                                         \
        for (int i = threadIdx.y; i < M; i += 8) acc += (double)load_c(x, (i64)i * N + j);             \
    part[threadIdx.y][threadIdx.x] = acc;                                                              \
    __syncthreads();                                                                                   \
    if (threadIdx.y == 0 && j < N)                                                                     \
    {                                                                                                  \
        double s = 0.0;                                                                                \
        for (int r = 0; r < 8; r++) s += part[r][threadIdx.x];                                         \
        store_c(y, j, (C)s);                                                                           \
    }                                                                                                  \
}                                                                                                      \
/* One block per target k: db[k] = sum over n, pq of dy viewed as (N, K, PQ). */                      \
extern "C" __global__ void sum_planes_##sfx(T* db, const T* dy, int N, int K, i64 PQ)                 \
{                                                                                                      \
    for (int k = blockIdx.x; k < K; k += gridDim.x)                                                    \
    {                                                                                                  \
        double acc = 0.0;                                                                              \
        for (int n = 0; n < N; n++)                                                                    \
        {                                                                                              \
            const i64 plane = ((i64)n * K + k) * PQ;                                                   \
            for (i64 i = threadIdx.x; i < PQ; i += blockDim.x) acc += (double)load_c(dy, plane + i);   \
        }                                                                                              \
        double total = block_sum(acc);                                                                 \
        if (threadIdx.x == 0) store_c(db, k, (C)total);                                                \
    }                                                                                                  \
}

FOR_FLOAT_TYPES(REDUCE)
