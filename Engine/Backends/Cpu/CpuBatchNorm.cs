// Batch normalisation on the CPU, NCHW, F32 and F64. Every pass walks blocks of whole images
// (contiguous memory, split over the threads by images, so any channel count keeps both cores
// busy); a per-channel walk across the batch would stride by C*H*W and miss the caches at every
// small image size. Statistics are computed in double: each plane's mean and sum of squared
// deviations (two passes over the plane while it is in L1), merged pairwise (Chan et al.) per
// block and then over the blocks in a fixed order, so large or offset activations keep their
// precision and the result does not depend on the thread count; the normalise step is a
// per-plane SIMD affine map y = x * scale + shift, with the block's activation fused in
// (y = act(x * scale + shift + residual), BatchNormActForwardTraining). The backward pass reads
// dY, x (and y for a fused ReLU's mask) once for both sums and once for dX (BnKernels).
using System.Buffers;

namespace ResidualEngine.Backends.Cpu;

public sealed unsafe partial class CpuBackend
{
    public void BatchNormForwardTraining(Tensor y, Tensor x, Tensor gamma, Tensor beta, Tensor runningMean, Tensor runningVar,
        Tensor saveMean, Tensor saveInvStd, double momentum, double eps) =>
        BatchNormActForwardTraining(y, x, gamma, beta, runningMean, runningVar, saveMean, saveInvStd, momentum, eps, null, false);

    public void BatchNormActForwardTraining(Tensor y, Tensor x, Tensor gamma, Tensor beta, Tensor runningMean, Tensor runningVar,
        Tensor saveMean, Tensor saveInvStd, double momentum, double eps, Tensor? residual, bool relu)
    {
        // 16-bit / NHWC x (16-bit x has F32 parameters and statistics, as cuDNN): CpuMixed.cs
        if (RunCanonical("oiiibbooi", true, t => BatchNormActForwardTraining(t[0]!, t[1]!, t[2]!, t[3]!, t[4]!, t[5]!, t[6]!, t[7]!, momentum, eps, t[8], relu),
            y, x, gamma, beta, runningMean, runningVar, saveMean, saveInvStd, residual)) return;
        var (n, c, hw) = BnDims(x, "BatchNormForwardTraining", gamma, beta, runningMean, runningVar, saveMean, saveInvStd);
        if ((long)n * hw < 2) throw new ArgumentException("BatchNormForwardTraining: expected more than 1 value per channel when training");
        CheckLike("BatchNormForwardTraining", x, residual, "residual");
        nint res = residual?.Pointer ?? 0;
        if (x.DType == DType.F32)
            BnTrain<float>(y.Pointer, x.Pointer, gamma.Pointer, beta.Pointer, runningMean.Pointer, runningVar.Pointer, saveMean.Pointer, saveInvStd.Pointer, n, c, hw, momentum, eps, res, relu);
        else
            BnTrain<double>(y.Pointer, x.Pointer, gamma.Pointer, beta.Pointer, runningMean.Pointer, runningVar.Pointer, saveMean.Pointer, saveInvStd.Pointer, n, c, hw, momentum, eps, res, relu);
    }

    /// <summary>An optional operand that must have x's shape and dtype.</summary>
    private static void CheckLike(string op, Tensor x, Tensor? t, string name)
    {
        if (t is not null && (t.Shape != x.Shape || t.DType != x.DType))
            throw new ArgumentException($"{op}: {name} {t.Describe()} does not match x {x.Describe()}");
    }

    public void BatchNormForwardInference(Tensor y, Tensor x, Tensor gamma, Tensor beta, Tensor runningMean, Tensor runningVar, double eps)
    {
        if (RunCanonical("oiiiii", true, t => BatchNormForwardInference(t[0]!, t[1]!, t[2]!, t[3]!, t[4]!, t[5]!, eps), y, x, gamma, beta, runningMean, runningVar)) return;
        var (n, c, hw) = BnDims(x, "BatchNormForwardInference", gamma, beta, runningMean, runningVar);
        if (x.DType == DType.F32)
            BnInfer<float>(y.Pointer, x.Pointer, gamma.Pointer, beta.Pointer, runningMean.Pointer, runningVar.Pointer, n, c, hw, eps);
        else
            BnInfer<double>(y.Pointer, x.Pointer, gamma.Pointer, beta.Pointer, runningMean.Pointer, runningVar.Pointer, n, c, hw, eps);
    }

    public void BatchNormBackward(Tensor dX, Tensor dGamma, Tensor dBeta, Tensor dY, Tensor x, Tensor gamma, Tensor saveMean, Tensor saveInvStd) =>
        BatchNormActBackward(dX, dGamma, dBeta, null, dY, x, x, gamma, saveMean, saveInvStd, false);

    public void BatchNormActBackward(Tensor dX, Tensor dGamma, Tensor dBeta, Tensor? dResidual, Tensor dY, Tensor y, Tensor x,
        Tensor gamma, Tensor saveMean, Tensor saveInvStd, bool relu)
    {
        if (RunCanonical("ooooiiiiii", true, t => BatchNormActBackward(t[0]!, t[1]!, t[2]!, t[3], t[4]!, t[5]!, t[6]!, t[7]!, t[8]!, t[9]!, relu),
            dX, dGamma, dBeta, dResidual, dY, y, x, gamma, saveMean, saveInvStd)) return; // 16-bit / NHWC: CpuMixed.cs
        const string op = "BatchNormBackward";
        var (n, c, hw) = BnDims(x, op, dGamma, dBeta, gamma, saveMean, saveInvStd);
        CheckLike(op, x, dX, "dX");
        CheckLike(op, x, dY, "dY");
        CheckLike(op, x, dResidual, "dResidual");
        if (relu) CheckLike(op, x, y, "y");
        nint yp = relu ? y.Pointer : 0, dres = dResidual?.Pointer ?? 0;
        if (x.DType == DType.F32)
            BnBackward<float>(dX.Pointer, dGamma.Pointer, dBeta.Pointer, dY.Pointer, x.Pointer, gamma.Pointer, saveMean.Pointer, saveInvStd.Pointer, n, c, hw, yp, dres);
        else
            BnBackward<double>(dX.Pointer, dGamma.Pointer, dBeta.Pointer, dY.Pointer, x.Pointer, gamma.Pointer, saveMean.Pointer, saveInvStd.Pointer, n, c, hw, yp, dres);
    }

    /// <summary>(N, C, H*W) of a 4-d x (a 2-d (N, C) x counts as H*W = 1); per-channel tensors must share x's dtype here.</summary>
    private static (int N, int C, int HW) BnDims(Tensor x, string op, params Tensor[] perChannel)
    {
        RequireFloat(x, op);
        if (x.Rank is not (2 or 4)) throw new ArgumentException($"{op}: x must be (N, C, H, W) or (N, C), got {x.Shape}");
        int n = x.Shape[0], c = x.Shape[1];
        int hw = x.Rank == 4 ? checked(x.Shape[2] * x.Shape[3]) : 1;
        foreach (var t in perChannel)
        {
            if (t.DType != x.DType) throw new NotSupportedException($"{op} on the CPU needs per-channel tensors of x's dtype {x.DType}, got {t.DType}");
            if (t.Numel != c) throw new ArgumentException($"{op}: per-channel tensor {t.Describe()} does not have {c} elements");
        }
        return (n, c, hw);
    }

    private static Span<T> Plane<T>(nint p, int n, int ch, int c, int hw) where T : unmanaged =>
        new((T*)p + ((long)n * c + ch) * hw, hw);

    private static long PlaneOffset(int i, int ch, int c, int hw) => ((long)i * c + ch) * hw;

    /// <summary>Images per block of the image-parallel passes: blocks of about BlockElements elements, fixed by the
    /// shape alone (not the thread count), so that sums combine in the same order on any number of threads.</summary>
    private static int ImagesPerBlock(int c, int hw) => (int)Math.Clamp(BlockElements / Math.Max(1L, (long)c * hw), 1, int.MaxValue);

    private const long BlockElements = 1 << 15;

    private static void BnTrain<T>(nint y, nint x, nint gamma, nint beta, nint rm, nint rv, nint sm, nint si,
        int n, int c, int hw, double momentum, double eps, nint residual, bool relu) where T : unmanaged, System.Numerics.IFloatingPointIeee754<T>
    {
        long m = (long)n * hw;
        int per = ImagesPerBlock(c, hw), blocks = (n + per - 1) / per;
        // Pass 1, over blocks of whole images (contiguous memory): each plane's mean and sum of squared
        // deviations (two passes over the plane while it is in L1), merged per block and channel (Chan et al.).
        var part = ArrayPool<double>.Shared.Rent(2 * blocks * c);
        var scale = ArrayPool<double>.Shared.Rent(2 * c);
        try
        {
            CpuVec.For(blocks, (long)per * c * hw * 2, b =>
            {
                int i0 = b * per, i1 = Math.Min(n, i0 + per);
                for (int ch = 0; ch < c; ch++)
                {
                    double mean = 0, m2 = 0;
                    long count = 0;
                    for (int i = i0; i < i1; i++)
                    {
                        var plane = Plane<T>(x, i, ch, c, hw);
                        double pm = CpuVec.Sum<T>(plane) / hw;
                        Merge(ref mean, ref m2, ref count, pm, CpuVec.SumSqDiff<T>(plane, pm), hw);
                    }
                    part[2 * (b * c + ch)] = mean;
                    part[2 * (b * c + ch) + 1] = m2;
                }
            });
            for (int ch = 0; ch < c; ch++)
            {
                double mean = 0, sq = 0;
                long count = 0;
                for (int b = 0; b < blocks; b++)
                {
                    int images = Math.Min(n, (b + 1) * per) - b * per;
                    Merge(ref mean, ref sq, ref count, part[2 * (b * c + ch)], part[2 * (b * c + ch) + 1], (long)images * hw);
                }
                double invStd = 1.0 / Math.Sqrt(sq / m + eps);
                double g = double.CreateTruncating(((T*)gamma)[ch]);
                double bt = double.CreateTruncating(((T*)beta)[ch]);
                scale[2 * ch] = g * invStd;
                scale[2 * ch + 1] = bt - mean * g * invStd;
                ((T*)sm)[ch] = T.CreateTruncating(mean);
                ((T*)si)[ch] = T.CreateTruncating(invStd);
                // Running statistics use the unbiased variance, as PyTorch (m > 1 is checked above).
                double unbiased = sq / (m - 1);
                ref T rmc = ref ((T*)rm)[ch];
                ref T rvc = ref ((T*)rv)[ch];
                rmc = T.CreateTruncating((1 - momentum) * double.CreateTruncating(rmc) + momentum * mean);
                rvc = T.CreateTruncating((1 - momentum) * double.CreateTruncating(rvc) + momentum * unbiased);
            }
            // Pass 2, over the same blocks: y = act(x * scale + shift + residual).
            CpuVec.For(blocks, (long)per * c * hw, b =>
            {
                for (int i = b * per, i1 = Math.Min(n, i + per); i < i1; i++)
                    for (int ch = 0; ch < c; ch++)
                    {
                        long o = PlaneOffset(i, ch, c, hw);
                        BnKernels.AffineAct((T*)x + o, T.CreateTruncating(scale[2 * ch]), T.CreateTruncating(scale[2 * ch + 1]),
                            residual == 0 ? null : (T*)residual + o, relu, (T*)y + o, hw);
                    }
            });
        }
        finally
        {
            ArrayPool<double>.Shared.Return(part);
            ArrayPool<double>.Shared.Return(scale);
        }
    }

    /// <summary>Merges a group of <paramref name="nb"/> values with mean <paramref name="mb"/> and sum of squared deviations
    /// <paramref name="m2b"/> into the running (mean, m2, count) (Chan, Golub and LeVeque's pairwise update).</summary>
    private static void Merge(ref double mean, ref double m2, ref long count, double mb, double m2b, long nb)
    {
        long total = count + nb;
        double delta = mb - mean;
        mean += delta * nb / total;
        m2 += m2b + delta * delta * ((double)count * nb / total);
        count = total;
    }

    private static void BnInfer<T>(nint y, nint x, nint gamma, nint beta, nint rm, nint rv, int n, int c, int hw, double eps)
        where T : unmanaged, System.Numerics.IFloatingPointIeee754<T>
    {
        CpuVec.For(c, (long)n * hw, ch =>
        {
            double invStd = 1.0 / Math.Sqrt(double.CreateTruncating(((T*)rv)[ch]) + eps);
            double scale = double.CreateTruncating(((T*)gamma)[ch]) * invStd;
            double shift = double.CreateTruncating(((T*)beta)[ch]) - double.CreateTruncating(((T*)rm)[ch]) * scale;
            T ts = T.CreateTruncating(scale), tb = T.CreateTruncating(shift);
            for (int i = 0; i < n; i++) CpuVec.Affine<T>(Plane<T>(x, i, ch, c, hw), ts, tb, Plane<T>(y, i, ch, c, hw));
        });
    }

    // With xhat = (x - mean) * invstd and M = N*H*W per channel, and g = dY masked by the fused
    // ReLU (y > 0) when there is one: dBeta = sum g, dGamma = sum g * xhat,
    // dX = gamma * invstd * (g - dBeta / M - xhat * dGamma / M), dResidual = g.
    private static void BnBackward<T>(nint dx, nint dgamma, nint dbeta, nint dy, nint x, nint gamma, nint sm, nint si,
        int n, int c, int hw, nint y, nint dres) where T : unmanaged, System.Numerics.IFloatingPointIeee754<T>
    {
        long m = (long)n * hw;
        int per = ImagesPerBlock(c, hw), blocks = (n + per - 1) / per;
        var part = ArrayPool<double>.Shared.Rent(2 * blocks * c);
        var coef = ArrayPool<double>.Shared.Rent(3 * c);
        try
        {
            // Pass 1, over blocks of whole images: per block and channel, the sums of g and g * (x - mean).
            CpuVec.For(blocks, (long)per * c * hw * 2, b =>
            {
                for (int ch = 0; ch < c; ch++)
                {
                    double mean = double.CreateTruncating(((T*)sm)[ch]);
                    double sg = 0, sgx = 0;
                    for (int i = b * per, i1 = Math.Min(n, i + per); i < i1; i++)
                    {
                        long o = PlaneOffset(i, ch, c, hw);
                        var (g, gx) = BnKernels.Sums((T*)dy + o, y == 0 ? null : (T*)y + o, (T*)x + o, mean, hw);
                        sg += g;
                        sgx += gx;
                    }
                    part[2 * (b * c + ch)] = sg;
                    part[2 * (b * c + ch) + 1] = sgx;
                }
            });
            for (int ch = 0; ch < c; ch++)
            {
                double sumDy = 0, sumDyXmu = 0;
                for (int b = 0; b < blocks; b++)
                {
                    sumDy += part[2 * (b * c + ch)];
                    sumDyXmu += part[2 * (b * c + ch) + 1];
                }
                double invStd = double.CreateTruncating(((T*)si)[ch]);
                ((T*)dbeta)[ch] = T.CreateTruncating(sumDy);
                ((T*)dgamma)[ch] = T.CreateTruncating(sumDyXmu * invStd);
                double a = double.CreateTruncating(((T*)gamma)[ch]) * invStd;
                coef[3 * ch] = a;
                coef[3 * ch + 1] = -a * invStd * invStd * sumDyXmu / m;
                coef[3 * ch + 2] = -a * sumDy / m;
            }
            // Pass 2, over the same blocks: dX (and dResidual).
            CpuVec.For(blocks, (long)per * c * hw * 2, b =>
            {
                for (int i = b * per, i1 = Math.Min(n, i + per); i < i1; i++)
                    for (int ch = 0; ch < c; ch++)
                    {
                        long o = PlaneOffset(i, ch, c, hw);
                        BnKernels.Grad((T*)dy + o, y == 0 ? null : (T*)y + o, (T*)x + o, T.CreateTruncating(coef[3 * ch]), ((T*)sm)[ch],
                            T.CreateTruncating(coef[3 * ch + 1]), T.CreateTruncating(coef[3 * ch + 2]), (T*)dx + o, dres == 0 ? null : (T*)dres + o, hw);
                    }
            });
        }
        finally
        {
            ArrayPool<double>.Shared.Return(part);
            ArrayPool<double>.Shared.Return(coef);
        }
    }
}
