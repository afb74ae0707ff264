// The pointwise op table: one line per op of the family in Engine/Ops/Pointwise, named as its C#
// struct in snake_case (AddRelu -> add_relu). Each line instantiates the op's kernels for every
// element type: NAME_f32 and NAME_f64, and for binary ops also NAME_bcast_f32 / NAME_bcast_f64,
// where b is broadcast as element (i / inner) % period. In the expression the inputs are x (unary)
// or a, b, c; alpha and beta are the op's scalars; C is the compute type (float, or double for f64)
// and C(1) a constant of it. Outputs may alias inputs (every element is read before it is written).
// Helpers usable in expressions (common.cuh): exp_, log_, tanh_, sqrt_, relu_, is_nan.
#include "common.cuh"

// ---- the table ----
UNARY(relu, relu_(x))
UNARY(sigmoid, C(1) / (C(1) + exp_(-x)))
UNARY(scale, alpha * x)
UNARY(silu, x / (C(1) + exp_(-x)))

BINARY(add, a + b)
BINARY(sub, a - b)
BINARY(mul, a * b)
BINARY(axpby, alpha * a + beta * b)
BINARY(add_relu, relu_(a + b))
BINARY(expand, b)
BINARY(relu_backward, b > C(0) ? a : C(0))
BINARY(sigmoid_backward, a * b * (C(1) - b))
BINARY(silu_backward, a * (C(1) / (C(1) + exp_(-b))) * (C(1) + b * (C(1) - C(1) / (C(1) + exp_(-b)))))

TERNARY(mul_add, a * b + c)

// ---- optimizer rules and gradient clipping (Engine/Nn/Optim/OptimizerOps.cs) ----
template <typename C> __device__ __forceinline__ C abs_(C v) { return v < C(0) ? -v : v; }
template <typename C> __device__ __forceinline__ C min1_nan_(C v) { return (is_nan(v) || v < C(1)) ? v : C(1); }
UNARY(clip_coef, min1_nan_(alpha / (sqrt_(abs_(x)) + abs_(beta))))
BINARY(axpby_square, alpha * a + beta * b * b)
BINARY(maximum, (is_nan(a) || a > b) ? a : b)
TERNARY(adam_step, a - alpha * b / (sqrt_(abs_(c)) + abs_(beta)))
TERNARY(lars_trust, (a == C(0) || b == C(0)) ? C(1) : alpha * sqrt_(abs_(a)) / (sqrt_(abs_(b)) + abs_(beta) * sqrt_(abs_(a)) + abs_(c)))
