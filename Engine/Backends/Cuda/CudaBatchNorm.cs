// Spatial batch normalisation on CUDA: cuDNN (CUDNN_BATCHNORM_SPATIAL) by default, our own
// Kernels/batchnorm.cu when cuDNN is missing, when eps is below CUDNN_BN_MIN_EPSILON, or when
// UseCudnnBatchNorm is off. Both follow IBackend's contract: saved invStd uses the biased batch
// variance, the running variance is updated with the unbiased one — cuDNN's documented behaviour
// (PyTorch passes its running_var straight to cuDNN and documents it as unbiased); the GPU
// tests compare both paths with the CPU to check it. x, y, dY, dX may be BF16/F16 (with F32 gamma,
// beta and statistics, as cuDNN requires) and NCHW or channels-last.
// Gradient rule: dBeta = sum dY, dGamma = sum dY xhat, dX = gamma invStd (dY - dBeta/M - xhat dGamma/M).
using ResidualEngine.Native;

namespace ResidualEngine.Backends.Cuda;

public sealed unsafe partial class CudaBackend
{
    /// <summary>x viewed as (N, C, H, W); a rank-2 x (N, C) is (N, C, 1, 1), a rank-3 one (N, C, L, 1).</summary>
    private static (int N, int C, int H, int W) BnDims(Tensor x) => x.Rank switch
    {
        2 => (x.Shape[0], x.Shape[1], 1, 1),
        3 => (x.Shape[0], x.Shape[1], x.Shape[2], 1),
        4 => (x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]),
        _ => throw new ArgumentException($"BatchNorm needs a tensor of rank 2 to 4, got shape {x.Shape}"),
    };

    /// <summary>cuDNN's descriptors for x as <see cref="BnDims"/> views it (rank 2 and 3 are plain NCHW to cuDNN).</summary>
    private (nint X, nint Bn) BnDescriptors(Tensor x)
    {
        var (n, c, h, w) = BnDims(x);
        return BnDescriptors(x.DType, x.Rank == 4 ? x.Format : MemoryFormat.Contiguous, n, c, h, w);
    }

    private bool CudnnBn(double eps) =>
        UseCudnnBatchNorm && eps >= Cudnn.CUDNN_BN_MIN_EPSILON && LibraryResolver.Find(CudaLibrary.Cudnn).Found;

    public void BatchNormForwardTraining(Tensor y, Tensor x, Tensor gamma, Tensor beta, Tensor runningMean, Tensor runningVar,
        Tensor saveMean, Tensor saveInvStd, double momentum, double eps)
    {
        RequireFloat(x, "BatchNormForwardTraining");
        Enter();
        var (n, c, h, w) = BnDims(x);
        if (CudnnBn(eps))
        {
            lock (_libLock)
            {
                var (xd, bd) = BnDescriptors(x);
                var (one, zero) = Scalars(x.DType);
                Cudnn.ThrowIfFailed(Cudnn.cudnnBatchNormalizationForwardTraining(Dnn(), cudnnBatchNormMode_t.CUDNN_BATCHNORM_SPATIAL,
                    (void*)one, (void*)zero, xd, x.Pointer, xd, y.Pointer, bd, gamma.Pointer, beta.Pointer, momentum,
                    runningMean.Pointer, runningVar.Pointer, eps, saveMean.Pointer, saveInvStd.Pointer));
            }
            return;
        }
        var name = CudaKernels.BatchNormForwardTraining.For(x.DType, "BatchNormForwardTraining");
        nint py = y.Pointer, px = x.Pointer, pg = gamma.Pointer, pb = beta.Pointer, prm = runningMean.Pointer,
            prv = runningVar.Pointer, psm = saveMean.Pointer, psi = saveInvStd.Pointer;
        long hw = (long)h * w;
        double mom = momentum, e = eps;
        int f = Nhwc(x);
        void** a = stackalloc void*[] { &py, &px, &pg, &pb, &prm, &prv, &psm, &psi, &n, &c, &hw, &mom, &e, &f };
        LaunchRows(CudaKernels.BatchNormForwardTraining.File, name, c, 512, a);
    }

    public void BatchNormForwardInference(Tensor y, Tensor x, Tensor gamma, Tensor beta, Tensor runningMean, Tensor runningVar, double eps)
    {
        RequireFloat(x, "BatchNormForwardInference");
        Enter();
        var (n, c, h, w) = BnDims(x);
        if (CudnnBn(eps))
        {
            lock (_libLock)
            {
                var (xd, bd) = BnDescriptors(x);
                var (one, zero) = Scalars(x.DType);
                Cudnn.ThrowIfFailed(Cudnn.cudnnBatchNormalizationForwardInference(Dnn(), cudnnBatchNormMode_t.CUDNN_BATCHNORM_SPATIAL,
                    (void*)one, (void*)zero, xd, x.Pointer, xd, y.Pointer, bd, gamma.Pointer, beta.Pointer,
                    runningMean.Pointer, runningVar.Pointer, eps));
            }
            return;
        }
        var name = CudaKernels.BatchNormForwardInference.For(x.DType, "BatchNormForwardInference");
        nint py = y.Pointer, px = x.Pointer, pg = gamma.Pointer, pb = beta.Pointer, prm = runningMean.Pointer, prv = runningVar.Pointer;
        long hw = (long)h * w, total = x.Numel;
        double e = eps;
        int f = Nhwc(x);
        void** a = stackalloc void*[] { &py, &px, &pg, &pb, &prm, &prv, &c, &hw, &total, &e, &f };
        Launch1D(CudaKernels.BatchNormForwardInference.File, name, total, a);
    }

    public void BatchNormBackward(Tensor dX, Tensor dGamma, Tensor dBeta, Tensor dY, Tensor x, Tensor gamma, Tensor saveMean, Tensor saveInvStd)
    {
        RequireFloat(x, "BatchNormBackward");
        Enter();
        var (n, c, h, w) = BnDims(x);
        // With saved statistics cuDNN does not recompute the variance, so eps only has to be valid here.
        if (CudnnBn(Cudnn.CUDNN_BN_MIN_EPSILON))
        {
            lock (_libLock)
            {
                var (xd, bd) = BnDescriptors(x);
                var (one, zero) = Scalars(x.DType);
                Cudnn.ThrowIfFailed(Cudnn.cudnnBatchNormalizationBackward(Dnn(), cudnnBatchNormMode_t.CUDNN_BATCHNORM_SPATIAL,
                    (void*)one, (void*)zero, (void*)one, (void*)zero, xd, x.Pointer, xd, dY.Pointer, xd, dX.Pointer, bd,
                    gamma.Pointer, dGamma.Pointer, dBeta.Pointer, Cudnn.CUDNN_BN_MIN_EPSILON, saveMean.Pointer, saveInvStd.Pointer));
            }
            return;
        }
        var name = CudaKernels.BatchNormBackward.For(x.DType, "BatchNormBackward");
        nint pdx = dX.Pointer, pdg = dGamma.Pointer, pdb = dBeta.Pointer, pdy = dY.Pointer, px = x.Pointer, pg = gamma.Pointer,
            psm = saveMean.Pointer, psi = saveInvStd.Pointer;
        long hw = (long)h * w;
        int f = Nhwc(x);
        void** a = stackalloc void*[] { &pdx, &pdg, &pdb, &pdy, &px, &pg, &psm, &psi, &n, &c, &hw, &f };
        LaunchRows(CudaKernels.BatchNormBackward.File, name, c, 512, a);
    }
}
