// Batch normalisation on the CPU, NCHW, F32 and F64, one thread per channel (statistics are
// per channel). Statistics are computed in double with two passes (mean, then the sum of
// squared deviations), so large or offset activations do not lose precision; the normalise
// step is a per-plane SIMD affine map y = x * scale + shift, with the block's activation fused
// in (y = act(x * scale + shift + residual), BatchNormActForwardTraining). The backward pass
// reads dY, x (and y for a fused ReLU's mask) once for both sums and once for dX (BnKernels).
namespace ResidualEngine.Backends.Cpu;

public sealed unsafe partial class CpuBackend
{
    public void BatchNormForwardTraining(Tensor y, Tensor x, Tensor gamma, Tensor beta, Tensor runningMean, Tensor runningVar,
        Tensor saveMean, Tensor saveInvStd, double momentum, double eps) =>
        BatchNormActForwardTraining(y, x, gamma, beta, runningMean, runningVar, saveMean, saveInvStd, momentum, eps, null, false);

    public void BatchNormActForwardTraining(Tensor y, Tensor x, Tensor gamma, Tensor beta, Tensor runningMean, Tensor runningVar,
        Tensor saveMean, Tensor saveInvStd, double momentum, double eps, Tensor? residual, bool relu)
    {
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

    private static void BnTrain<T>(nint y, nint x, nint gamma, nint beta, nint rm, nint rv, nint sm, nint si,
        int n, int c, int hw, double momentum, double eps, nint residual, bool relu) where T : unmanaged, System.Numerics.IFloatingPointIeee754<T>
    {
        long m = (long)n * hw;
        CpuVec.For(c, 3 * m, ch =>
        {
            double sum = 0;
            for (int i = 0; i < n; i++) sum += CpuVec.Sum<T>(Plane<T>(x, i, ch, c, hw));
            double mean = sum / m;
            double sq = 0;
            for (int i = 0; i < n; i++) sq += CpuVec.SumSqDiff<T>(Plane<T>(x, i, ch, c, hw), mean);
            double var = sq / m;
            double invStd = 1.0 / Math.Sqrt(var + eps);
            double g = double.CreateTruncating(((T*)gamma)[ch]);
            double b = double.CreateTruncating(((T*)beta)[ch]);
            double scale = g * invStd, shift = b - mean * scale;
            T ts = T.CreateTruncating(scale), tb = T.CreateTruncating(shift);
            for (int i = 0; i < n; i++)
            {
                long o = PlaneOffset(i, ch, c, hw);
                BnKernels.AffineAct((T*)x + o, ts, tb, residual == 0 ? null : (T*)residual + o, relu, (T*)y + o, hw);
            }

            ((T*)sm)[ch] = T.CreateTruncating(mean);
            ((T*)si)[ch] = T.CreateTruncating(invStd);
            // Running statistics use the unbiased variance, as PyTorch (m > 1 is checked above).
            double unbiased = sq / (m - 1);
            ref T rmc = ref ((T*)rm)[ch];
            ref T rvc = ref ((T*)rv)[ch];
            rmc = T.CreateTruncating((1 - momentum) * double.CreateTruncating(rmc) + momentum * mean);
            rvc = T.CreateTruncating((1 - momentum) * double.CreateTruncating(rvc) + momentum * unbiased);
        });
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
        CpuVec.For(c, 3 * m, ch =>
        {
            double mean = double.CreateTruncating(((T*)sm)[ch]);
            double invStd = double.CreateTruncating(((T*)si)[ch]);
            double sumDy = 0, sumDyXmu = 0;
            for (int i = 0; i < n; i++)
            {
                long o = PlaneOffset(i, ch, c, hw);
                var (sg, sgx) = BnKernels.Sums((T*)dy + o, y == 0 ? null : (T*)y + o, (T*)x + o, mean, hw);
                sumDy += sg;
                sumDyXmu += sgx;
            }
            ((T*)dbeta)[ch] = T.CreateTruncating(sumDy);
            ((T*)dgamma)[ch] = T.CreateTruncating(sumDyXmu * invStd);
            double a = double.CreateTruncating(((T*)gamma)[ch]) * invStd;
            double b = -a * invStd * invStd * sumDyXmu / m;
            double k = -a * sumDy / m;
            T ta = T.CreateTruncating(a), tm = T.CreateTruncating(mean), tb = T.CreateTruncating(b), tk = T.CreateTruncating(k);
            for (int i = 0; i < n; i++)
            {
                long o = PlaneOffset(i, ch, c, hw);
                BnKernels.Grad((T*)dy + o, y == 0 ? null : (T*)y + o, (T*)x + o, ta, tm, tb, tk, (T*)dx + o, dres == 0 ? null : (T*)dres + o, hw);
            }
        });
    }
}
