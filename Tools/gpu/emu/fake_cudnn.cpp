// A fake libcudnn.so.9 for the GPU emulator: descriptors, convolution (forward, backward data,
// backward filter; cross-correlation or convolution, groups, dilation) with algorithm queries, and
// spatial batch normalisation, following cuDNN's documented semantics and validating arguments the
// way cuDNN does (data/compute types, descriptor consistency, scaling-factor types, eps). It checks
// how the engine drives cuDNN; it cannot check cuDNN's own numerics or undocumented behaviour (the
// running variance being unbiased is the documented, and emulated, behaviour).
// Documented rules followed here (cuDNN API reference, 8.9 / 9.x legacy API):
//  - cudnnSetTensor4dDescriptor / cudnnSetFilter4dDescriptor take the dimensions as n, c, h, w in
//    either format; CUDNN_TENSOR_NHWC stores them n, h, w, c (a filter: k, r, s, c).
//  - Convolution configurations: FLOAT_CONFIG (x, w, y FLOAT, compute FLOAT), DOUBLE_CONFIG,
//    TRUE_HALF_CONFIG (HALF, compute HALF), PSEUDO_HALF_CONFIG (HALF, compute FLOAT),
//    PSEUDO_BFLOAT16_CONFIG (BFLOAT16, compute FLOAT); anything else is CUDNN_STATUS_NOT_SUPPORTED.
//  - Scaling factors (alpha, beta) are double for DOUBLE data and float for every other type.
//  - Batch norm: x and y share a type; the derived scale/bias/mean/variance descriptor has type
//    "(typeOf(x) == double) ? double : float", i.e. FLOAT parameters for HALF/BFLOAT16 x.
// 16-bit values convert as the GPU does (round to nearest even); sums run in double and round once.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <cstdint>
#include <string>
#include <vector>

typedef int cudnnStatus_t;
enum { OK = 0, NOT_INITIALIZED = 1001, BAD_PARAM = 2000, NOT_SUPPORTED = 3000, EXECUTION_FAILED = 5000 };
enum { FLOAT = 0, DOUBLE = 1, HALF = 2, BFLOAT16 = 9 };
enum { NCHW = 0, NHWC = 1 };
enum { CONVOLUTION = 0, CROSS_CORRELATION = 1 };
enum { DEFAULT_MATH = 0, TENSOR_OP_MATH = 1, FMA_MATH = 3 };

namespace
{
thread_local std::string g_last = "";
cudnnStatus_t fail(cudnnStatus_t s, const std::string& why) { g_last = why; return s; }

struct Tensor { bool set; int dtype, n, c, h, w, format; };
struct Filter { bool set; int dtype, k, c, h, w, format; };

// Offset of element (n, c, h, w) of a 4-d tensor (or filter: n = k) in its format.
int64_t at(int format, int N, int C, int H, int W, int n, int c, int h, int w)
{
    (void)N;
    return format == NHWC ? (((int64_t)n * H + h) * W + w) * C + c : (((int64_t)n * C + c) * H + h) * W + w;
}
int64_t at(const Tensor* t, int n, int c, int h, int w) { return at(t->format, t->n, t->c, t->h, t->w, n, c, h, w); }
int64_t at(const Filter* f, int k, int c, int h, int w) { return at(f->format, f->k, f->c, f->h, f->w, k, c, h, w); }
struct Conv { bool set; int ph, pw, u, v, dh, dw, mode, compute, groups, math; };

struct PerfT { int algo; int status; float time; size_t memory; int determinism; int mathType; int reserved[3]; };
static_assert(sizeof(PerfT) == 48, "cudnnConvolutionAlgoPerf_t layout");

bool known_type(int t) { return t == FLOAT || t == DOUBLE || t == HALF || t == BFLOAT16; }
double get(int dtype, const void* p, int64_t i)
{
    switch (dtype)
    {
        case DOUBLE: return ((const double*)p)[i];
        case FLOAT: return ((const float*)p)[i];
        case HALF: { _Float16 h; std::memcpy(&h, (const char*)p + 2 * i, 2); return (double)h; }
        default: { uint32_t u = (uint32_t)((const uint16_t*)p)[i] << 16; float f; std::memcpy(&f, &u, 4); return f; }
    }
}
void put(int dtype, void* p, int64_t i, double v)
{
    float f = (float)v;
    switch (dtype)
    {
        case DOUBLE: ((double*)p)[i] = v; break;
        case FLOAT: ((float*)p)[i] = f; break;
        case HALF: { _Float16 h = (_Float16)f; std::memcpy((char*)p + 2 * i, &h, 2); break; }
        default:
        {
            uint32_t u; std::memcpy(&u, &f, 4);
            ((uint16_t*)p)[i] = (u & 0x7fffffffu) > 0x7f800000u ? (uint16_t)((u >> 16) | 0x40u) : (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
        }
    }
}
// Scaling factors: double for DOUBLE data, float otherwise.
double scalar(int dtype, const void* p) { return dtype == DOUBLE ? *(const double*)p : (double)*(const float*)p; }
// out = alpha * value + beta * out, not reading out when beta == 0
void blend(int dtype, void* out, int64_t i, double alpha, double value, double beta)
{
    put(dtype, out, i, alpha * value + (beta == 0 ? 0.0 : beta * get(dtype, out, i)));
}

// Validates x, w, y, conv against each other; returns OK or the cuDNN error.
cudnnStatus_t check(const Tensor* x, const Filter* w, const Conv* cv, const Tensor* y)
{
    if (!x || !w || !cv || !y || !x->set || !w->set || !cv->set || !y->set) return fail(BAD_PARAM, "unset descriptor");
    if (x->dtype != w->dtype || x->dtype != y->dtype) return fail(BAD_PARAM, "data types of x, w, y differ");
    bool config = (x->dtype == FLOAT && cv->compute == FLOAT) || (x->dtype == DOUBLE && cv->compute == DOUBLE)
        || (x->dtype == HALF && (cv->compute == HALF || cv->compute == FLOAT)) || (x->dtype == BFLOAT16 && cv->compute == FLOAT);
    if (!config) return fail(NOT_SUPPORTED, "data/compute type pair is none of the documented configurations");
    if (x->format != y->format || x->format != w->format) return fail(NOT_SUPPORTED, "emulator: x, w and y must share one format");
    if (x->n != y->n || w->k != y->c || x->c != w->c * cv->groups || w->k % cv->groups != 0)
        return fail(BAD_PARAM, "x/w/y channel or batch dimensions do not match (groups " + std::to_string(cv->groups) + ")");
    int p = (x->h + 2 * cv->ph - cv->dh * (w->h - 1) - 1) / cv->u + 1;
    int q = (x->w + 2 * cv->pw - cv->dw * (w->w - 1) - 1) / cv->v + 1;
    if (p != y->h || q != y->w) return fail(BAD_PARAM, "y is " + std::to_string(y->h) + "x" + std::to_string(y->w) + ", expected " + std::to_string(p) + "x" + std::to_string(q));
    return OK;
}

// Visits every (n, k, p, q, c, r, s) term of the convolution with the x and w offsets it multiplies.
template <typename F> void each_term(const Tensor* x, const Filter* w, const Conv* cv, const Tensor* y, F f)
{
    int cpg = w->c, kpg = w->k / cv->groups;
    for (int n = 0; n < y->n; n++)
        for (int k = 0; k < y->c; k++)
        {
            int g = k / kpg;
            for (int p = 0; p < y->h; p++)
                for (int q = 0; q < y->w; q++)
                {
                    int64_t yi = at(y, n, k, p, q);
                    for (int cc = 0; cc < cpg; cc++)
                        for (int r = 0; r < w->h; r++)
                            for (int s = 0; s < w->w; s++)
                            {
                                int h = p * cv->u - cv->ph + r * cv->dh, ww = q * cv->v - cv->pw + s * cv->dw;
                                if (h < 0 || h >= x->h || ww < 0 || ww >= x->w) continue;
                                int rr = cv->mode == CONVOLUTION ? w->h - 1 - r : r, ss = cv->mode == CONVOLUTION ? w->w - 1 - s : s;
                                f(yi, at(x, n, g * cpg + cc, h, ww), at(w, k, cc, rr, ss));
                            }
                }
        }
}

cudnnStatus_t perf(const Conv* cv, int dtype, int requested, int* returned, PerfT* out, bool backwardFilter)
{
    if (!cv || requested < 1) return fail(BAD_PARAM, "bad algorithm query");
    // Like the real heuristics: tensor-op results first for float data with DEFAULT_MATH and for
    // 16-bit data with DEFAULT or TENSOR_OP math, a non-deterministic algorithm first for the filter gradient.
    std::vector<PerfT> r;
    bool tensorOps = (dtype == FLOAT && cv->math == DEFAULT_MATH) || ((dtype == HALF || dtype == BFLOAT16) && cv->math != FMA_MATH);
    if (tensorOps) r.push_back(PerfT{1, OK, 0.1f, 0, 1, TENSOR_OP_MATH, {0, 0, 0}});
    if (backwardFilter) r.push_back(PerfT{0, OK, 0.2f, 0, 0, cv->math == DEFAULT_MATH ? DEFAULT_MATH : FMA_MATH, {0, 0, 0}});
    r.push_back(PerfT{1, OK, 0.3f, 0, 1, cv->math == DEFAULT_MATH ? DEFAULT_MATH : FMA_MATH, {0, 0, 0}});
    r.push_back(PerfT{6, NOT_SUPPORTED, -1, 0, 1, DEFAULT_MATH, {0, 0, 0}});
    *returned = (int)std::min<size_t>(r.size(), (size_t)requested);
    for (int i = 0; i < *returned; i++) out[i] = r[i];
    return OK;
}
} // namespace

extern "C" {
size_t cudnnGetVersion() { return 90100; }
const char* cudnnGetErrorString(cudnnStatus_t s)
{
    switch (s)
    {
        case OK: return "CUDNN_STATUS_SUCCESS";
        case NOT_INITIALIZED: return "CUDNN_STATUS_NOT_INITIALIZED";
        case BAD_PARAM: return "CUDNN_STATUS_BAD_PARAM";
        case NOT_SUPPORTED: return "CUDNN_STATUS_NOT_SUPPORTED";
        default: return "CUDNN_STATUS_EXECUTION_FAILED";
    }
}
void cudnnGetLastErrorString(char* message, size_t max)
{
    std::snprintf(message, max, "%s", g_last.c_str());
    g_last.clear();
}
cudnnStatus_t cudnnCreate(void** h) { *h = new int(1); return OK; }
cudnnStatus_t cudnnDestroy(void* h) { delete (int*)h; return OK; }
cudnnStatus_t cudnnSetStream(void* h, void*) { return h ? OK : fail(BAD_PARAM, "null handle"); }

cudnnStatus_t cudnnCreateTensorDescriptor(void** d) { *d = new Tensor{}; return OK; }
cudnnStatus_t cudnnDestroyTensorDescriptor(void* d) { delete (Tensor*)d; return OK; }
cudnnStatus_t cudnnSetTensor4dDescriptor(void* d, int format, int dtype, int n, int c, int h, int w)
{
    if (format != NCHW && format != NHWC) return fail(NOT_SUPPORTED, "emulator: NCHW and NHWC tensors only");
    if (!known_type(dtype)) return fail(BAD_PARAM, "emulator: float, double, half or bfloat16 only");
    if (n <= 0 || c <= 0 || h <= 0 || w <= 0) return fail(BAD_PARAM, "non-positive dimension");
    *(Tensor*)d = Tensor{true, dtype, n, c, h, w, format};
    return OK;
}
cudnnStatus_t cudnnCreateFilterDescriptor(void** d) { *d = new Filter{}; return OK; }
cudnnStatus_t cudnnDestroyFilterDescriptor(void* d) { delete (Filter*)d; return OK; }
cudnnStatus_t cudnnSetFilter4dDescriptor(void* d, int dtype, int format, int k, int c, int h, int w)
{
    if (!known_type(dtype)) return fail(BAD_PARAM, "filter data type");
    if (format != NCHW && format != NHWC) return fail(NOT_SUPPORTED, "emulator: NCHW (KCRS) and NHWC (KRSC) filters only");
    if (k <= 0 || c <= 0 || h <= 0 || w <= 0) return fail(BAD_PARAM, "non-positive filter dimension");
    *(Filter*)d = Filter{true, dtype, k, c, h, w, format};
    return OK;
}
cudnnStatus_t cudnnCreateConvolutionDescriptor(void** d) { *d = new Conv{}; return OK; }
cudnnStatus_t cudnnDestroyConvolutionDescriptor(void* d) { delete (Conv*)d; return OK; }
cudnnStatus_t cudnnSetConvolution2dDescriptor(void* d, int ph, int pw, int u, int v, int dh, int dw, int mode, int compute)
{
    if (ph < 0 || pw < 0 || u <= 0 || v <= 0 || dh <= 0 || dw <= 0) return fail(BAD_PARAM, "convolution geometry");
    if (mode != CONVOLUTION && mode != CROSS_CORRELATION) return fail(BAD_PARAM, "convolution mode");
    if (!known_type(compute)) return fail(BAD_PARAM, "compute type");
    auto* c = (Conv*)d;
    int groups = c->set ? c->groups : 1, math = c->set ? c->math : DEFAULT_MATH;
    *c = Conv{true, ph, pw, u, v, dh, dw, mode, compute, groups, math};
    return OK;
}
cudnnStatus_t cudnnSetConvolutionGroupCount(void* d, int g)
{
    if (g < 1) return fail(BAD_PARAM, "group count");
    ((Conv*)d)->groups = g;
    return OK;
}
cudnnStatus_t cudnnSetConvolutionMathType(void* d, int m)
{
    if (m < 0 || m > 3) return fail(BAD_PARAM, "math type");
    ((Conv*)d)->math = m;
    return OK;
}

cudnnStatus_t cudnnGetConvolutionForwardAlgorithm_v7(void*, void* x, void* w, void* cv, void* y, int req, int* ret, PerfT* out)
{
    if (auto s = check((Tensor*)x, (Filter*)w, (Conv*)cv, (Tensor*)y)) return s;
    return perf((Conv*)cv, ((Tensor*)x)->dtype, req, ret, out, false);
}
cudnnStatus_t cudnnGetConvolutionBackwardDataAlgorithm_v7(void*, void* w, void* dy, void* cv, void* dx, int req, int* ret, PerfT* out)
{
    if (auto s = check((Tensor*)dx, (Filter*)w, (Conv*)cv, (Tensor*)dy)) return s;
    return perf((Conv*)cv, ((Tensor*)dx)->dtype, req, ret, out, false);
}
cudnnStatus_t cudnnGetConvolutionBackwardFilterAlgorithm_v7(void*, void* x, void* dy, void* cv, void* dw, int req, int* ret, PerfT* out)
{
    if (auto s = check((Tensor*)x, (Filter*)dw, (Conv*)cv, (Tensor*)dy)) return s;
    return perf((Conv*)cv, ((Tensor*)x)->dtype, req, ret, out, true);
}
cudnnStatus_t cudnnFindConvolutionForwardAlgorithmEx(void* h, void* x, void*, void* w, void*, void* cv, void* y, void*, int req, int* ret, PerfT* out, void*, size_t)
{
    return cudnnGetConvolutionForwardAlgorithm_v7(h, x, w, cv, y, req, ret, out);
}
cudnnStatus_t cudnnFindConvolutionBackwardDataAlgorithmEx(void* h, void* w, void*, void* dy, void*, void* cv, void* dx, void*, int req, int* ret, PerfT* out, void*, size_t)
{
    return cudnnGetConvolutionBackwardDataAlgorithm_v7(h, w, dy, cv, dx, req, ret, out);
}
cudnnStatus_t cudnnFindConvolutionBackwardFilterAlgorithmEx(void* h, void* x, void*, void* dy, void*, void* cv, void* dw, void*, int req, int* ret, PerfT* out, void*, size_t)
{
    return cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, x, dy, cv, dw, req, ret, out);
}
cudnnStatus_t cudnnGetConvolutionForwardWorkspaceSize(void*, void* x, void* w, void* cv, void* y, int algo, size_t* size)
{
    if (auto s = check((Tensor*)x, (Filter*)w, (Conv*)cv, (Tensor*)y)) return s;
    if (algo < 0 || algo > 7) return fail(BAD_PARAM, "forward algorithm");
    *size = algo == 1 ? 4096 : 0; // some algorithms want workspace
    return OK;
}
cudnnStatus_t cudnnGetConvolutionBackwardDataWorkspaceSize(void*, void* w, void* dy, void* cv, void* dx, int algo, size_t* size)
{
    if (auto s = check((Tensor*)dx, (Filter*)w, (Conv*)cv, (Tensor*)dy)) return s;
    if (algo < 0 || algo > 5) return fail(BAD_PARAM, "backward data algorithm");
    *size = 0;
    return OK;
}
cudnnStatus_t cudnnGetConvolutionBackwardFilterWorkspaceSize(void*, void* x, void* dy, void* cv, void* dw, int algo, size_t* size)
{
    if (auto s = check((Tensor*)x, (Filter*)dw, (Conv*)cv, (Tensor*)dy)) return s;
    if (algo < 0 || algo > 6) return fail(BAD_PARAM, "backward filter algorithm");
    *size = algo == 1 ? 8192 : 0;
    return OK;
}

cudnnStatus_t cudnnConvolutionForward(void* h, const void* alpha, void* xd, const void* x, void* wd, const void* w, void* cvd,
                                      int algo, void* ws, size_t wsBytes, const void* beta, void* yd, void* y)
{
    auto *X = (Tensor*)xd, *Y = (Tensor*)yd;
    auto* W = (Filter*)wd;
    auto* cv = (Conv*)cvd;
    if (!h) return fail(BAD_PARAM, "null handle");
    if (auto s = check(X, W, cv, Y)) return s;
    size_t need;
    cudnnGetConvolutionForwardWorkspaceSize(h, xd, wd, cvd, yd, algo, &need);
    if (wsBytes < need || (need > 0 && !ws)) return fail(BAD_PARAM, "workspace too small for the algorithm");
    int dt = X->dtype;
    int64_t ny = (int64_t)Y->n * Y->c * Y->h * Y->w;
    std::vector<double> acc(ny, 0.0);
    each_term(X, W, cv, Y, [&](int64_t yi, int64_t xi, int64_t wi) { acc[yi] += get(dt, x, xi) * get(dt, w, wi); });
    double a = scalar(dt, alpha), b = scalar(dt, beta);
    for (int64_t i = 0; i < ny; i++) blend(dt, y, i, a, acc[i], b);
    return OK;
}

cudnnStatus_t cudnnConvolutionBackwardData(void* h, const void* alpha, void* wd, const void* w, void* dyd, const void* dy, void* cvd,
                                           int algo, void* ws, size_t wsBytes, const void* beta, void* dxd, void* dx)
{
    auto *DX = (Tensor*)dxd, *DY = (Tensor*)dyd;
    auto* W = (Filter*)wd;
    auto* cv = (Conv*)cvd;
    if (!h) return fail(BAD_PARAM, "null handle");
    if (auto s = check(DX, W, cv, DY)) return s;
    size_t need;
    cudnnGetConvolutionBackwardDataWorkspaceSize(h, wd, dyd, cvd, dxd, algo, &need);
    if (wsBytes < need) return fail(BAD_PARAM, "workspace too small");
    (void)ws;
    int dt = DX->dtype;
    int64_t nx = (int64_t)DX->n * DX->c * DX->h * DX->w;
    std::vector<double> acc(nx, 0.0);
    each_term(DX, W, cv, DY, [&](int64_t yi, int64_t xi, int64_t wi) { acc[xi] += get(dt, dy, yi) * get(dt, w, wi); });
    double a = scalar(dt, alpha), b = scalar(dt, beta);
    for (int64_t i = 0; i < nx; i++) blend(dt, dx, i, a, acc[i], b);
    return OK;
}

cudnnStatus_t cudnnConvolutionBackwardFilter(void* h, const void* alpha, void* xd, const void* x, void* dyd, const void* dy, void* cvd,
                                             int algo, void* ws, size_t wsBytes, const void* beta, void* dwd, void* dw)
{
    auto *X = (Tensor*)xd, *DY = (Tensor*)dyd;
    auto* DW = (Filter*)dwd;
    auto* cv = (Conv*)cvd;
    if (!h) return fail(BAD_PARAM, "null handle");
    if (auto s = check(X, DW, cv, DY)) return s;
    size_t need;
    cudnnGetConvolutionBackwardFilterWorkspaceSize(h, xd, dyd, cvd, dwd, algo, &need);
    if (wsBytes < need || (need > 0 && !ws)) return fail(BAD_PARAM, "workspace too small for the algorithm");
    int dt = X->dtype;
    int64_t nw = (int64_t)DW->k * DW->c * DW->h * DW->w;
    std::vector<double> acc(nw, 0.0);
    each_term(X, DW, cv, DY, [&](int64_t yi, int64_t xi, int64_t wi) { acc[wi] += get(dt, dy, yi) * get(dt, x, xi); });
    double a = scalar(dt, alpha), b = scalar(dt, beta);
    for (int64_t i = 0; i < nw; i++) blend(dt, dw, i, a, acc[i], b);
    return OK;
}

// ---- batch normalisation (spatial) ----
cudnnStatus_t cudnnDeriveBNTensorDescriptor(void* bn, void* xd, int mode)
{
    auto* x = (Tensor*)xd;
    if (!x || !x->set) return fail(BAD_PARAM, "x descriptor not set");
    if (mode != 1 && mode != 2) return fail(NOT_SUPPORTED, "emulator: spatial modes only");
    *(Tensor*)bn = Tensor{true, x->dtype == DOUBLE ? DOUBLE : FLOAT, 1, x->c, 1, 1, NCHW};
    return OK;
}

namespace
{
cudnnStatus_t bn_check(int mode, const Tensor* x, const Tensor* y, const Tensor* bn, double eps)
{
    if (mode != 1 && mode != 2) return fail(NOT_SUPPORTED, "emulator: spatial modes only");
    if (!x || !y || !bn || !x->set || !y->set || !bn->set) return fail(BAD_PARAM, "unset descriptor");
    if (x->n != y->n || x->c != y->c || x->h != y->h || x->w != y->w || x->dtype != y->dtype || x->format != y->format)
        return fail(BAD_PARAM, "x and y differ");
    if (bn->n != 1 || bn->c != x->c || bn->h != 1 || bn->w != 1) return fail(BAD_PARAM, "BN descriptor is not (1, C, 1, 1)");
    if (bn->dtype != (x->dtype == DOUBLE ? DOUBLE : FLOAT)) return fail(BAD_PARAM, "BN parameters must be double for double x, float otherwise");
    if (eps < 1e-5) return fail(BAD_PARAM, "epsilon below CUDNN_BN_MIN_EPSILON");
    return OK;
}
int64_t idx(const Tensor* t, int n, int c, int64_t i) { return at(t, n, c, (int)(i / t->w), (int)(i % t->w)); }
}

cudnnStatus_t cudnnBatchNormalizationForwardTraining(void* h, int mode, const void* alpha, const void* beta, void* xd, const void* x,
    void* yd, void* y, void* bnd, const void* scale, const void* bias, double factor, void* runMean, void* runVar, double eps,
    void* saveMean, void* saveInvVar)
{
    auto *X = (Tensor*)xd, *Y = (Tensor*)yd, *BN = (Tensor*)bnd;
    if (!h) return fail(BAD_PARAM, "null handle");
    if (auto s = bn_check(mode, X, Y, BN, eps)) return s;
    if ((runMean == nullptr) != (runVar == nullptr) || (saveMean == nullptr) != (saveInvVar == nullptr)) return fail(BAD_PARAM, "running or saved pointers half given");
    int dt = X->dtype, pt = BN->dtype; // data type, parameter type
    int64_t hw = (int64_t)X->h * X->w, m = (int64_t)X->n * hw;
    double a = scalar(dt, alpha), b = scalar(dt, beta);
    for (int c = 0; c < X->c; c++)
    {
        double s = 0, q = 0;
        for (int n = 0; n < X->n; n++) for (int64_t i = 0; i < hw; i++) s += get(dt, x, idx(X, n, c, i));
        double mean = s / m;
        for (int n = 0; n < X->n; n++) for (int64_t i = 0; i < hw; i++) { double d = get(dt, x, idx(X, n, c, i)) - mean; q += d * d; }
        double var = q / m, inv = 1 / std::sqrt(var + eps);
        for (int n = 0; n < X->n; n++)
            for (int64_t i = 0; i < hw; i++)
            {
                int64_t j = idx(X, n, c, i);
                blend(dt, y, j, a, get(pt, scale, c) * (get(dt, x, j) - mean) * inv + get(pt, bias, c), b);
            }
        if (runMean)
        {
            double unbiased = m > 1 ? var * m / (m - 1) : var; // cuDNN documents the unbiased variance here
            put(pt, runMean, c, (1 - factor) * get(pt, runMean, c) + factor * mean);
            put(pt, runVar, c, (1 - factor) * get(pt, runVar, c) + factor * unbiased);
        }
        if (saveMean) { put(pt, saveMean, c, mean); put(pt, saveInvVar, c, inv); }
    }
    return OK;
}

cudnnStatus_t cudnnBatchNormalizationForwardInference(void* h, int mode, const void* alpha, const void* beta, void* xd, const void* x,
    void* yd, void* y, void* bnd, const void* scale, const void* bias, const void* mean, const void* var, double eps)
{
    auto *X = (Tensor*)xd, *Y = (Tensor*)yd, *BN = (Tensor*)bnd;
    if (!h) return fail(BAD_PARAM, "null handle");
    if (auto s = bn_check(mode, X, Y, BN, eps)) return s;
    int dt = X->dtype, pt = BN->dtype; // data type, parameter type
    int64_t hw = (int64_t)X->h * X->w;
    double a = scalar(dt, alpha), b = scalar(dt, beta);
    for (int c = 0; c < X->c; c++)
    {
        double inv = 1 / std::sqrt(get(pt, var, c) + eps), mu = get(pt, mean, c);
        for (int n = 0; n < X->n; n++)
            for (int64_t i = 0; i < hw; i++)
            {
                int64_t j = idx(X, n, c, i);
                blend(dt, y, j, a, get(pt, scale, c) * (get(dt, x, j) - mu) * inv + get(pt, bias, c), b);
            }
    }
    return OK;
}

cudnnStatus_t cudnnBatchNormalizationBackward(void* h, int mode, const void* aData, const void* bData, const void* aParam,
    const void* bParam, void* xd, const void* x, void* dyd, const void* dy, void* dxd, void* dx, void* bnd, const void* scale,
    void* dScale, void* dBias, double eps, const void* savedMean, const void* savedInvVar)
{
    auto *X = (Tensor*)xd, *DY = (Tensor*)dyd, *DX = (Tensor*)dxd, *BN = (Tensor*)bnd;
    if (!h) return fail(BAD_PARAM, "null handle");
    if (auto s = bn_check(mode, X, DY, BN, eps)) return s;
    if (auto s = bn_check(mode, X, DX, BN, eps)) return s;
    if ((savedMean == nullptr) != (savedInvVar == nullptr)) return fail(BAD_PARAM, "saved pointers half given");
    int dt = X->dtype, pt = BN->dtype; // data type, parameter type
    int64_t hw = (int64_t)X->h * X->w, m = (int64_t)X->n * hw;
    double ad = scalar(dt, aData), bd = scalar(dt, bData), ap = scalar(dt, aParam), bp = scalar(dt, bParam);
    for (int c = 0; c < X->c; c++)
    {
        double mean, inv;
        if (savedMean) { mean = get(pt, savedMean, c); inv = get(pt, savedInvVar, c); }
        else
        {
            double s = 0, q = 0;
            for (int n = 0; n < X->n; n++) for (int64_t i = 0; i < hw; i++) s += get(dt, x, idx(X, n, c, i));
            mean = s / m;
            for (int n = 0; n < X->n; n++) for (int64_t i = 0; i < hw; i++) { double d = get(dt, x, idx(X, n, c, i)) - mean; q += d * d; }
            inv = 1 / std::sqrt(q / m + eps);
        }
        double sdy = 0, sdyx = 0;
        for (int n = 0; n < X->n; n++)
            for (int64_t i = 0; i < hw; i++)
            {
                int64_t j = idx(X, n, c, i);
                double g = get(dt, dy, j);
                sdy += g;
                sdyx += g * (get(dt, x, j) - mean) * inv;
            }
        double k = get(pt, scale, c) * inv;
        for (int n = 0; n < X->n; n++)
            for (int64_t i = 0; i < hw; i++)
            {
                int64_t j = idx(X, n, c, i);
                double xhat = (get(dt, x, j) - mean) * inv;
                blend(dt, dx, j, ad, k * (get(dt, dy, j) - sdy / m - xhat * sdyx / m), bd);
            }
        blend(pt, dScale, c, ap, sdyx, bp);
        blend(pt, dBias, c, ap, sdy, bp);
    }
    return OK;
}
}
