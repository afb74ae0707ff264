// Pooling on CUDA (Kernels/pooling.cu): max pooling with I32 argmax indices (h * W + w within the
// plane), average pooling with PyTorch's count_include_pad and ceil-mode divisors, and global
// average pooling. Backward kernels gather per input element, so they overwrite dX completely.
namespace ResidualEngine.Backends.Cuda;

public sealed unsafe partial class CudaBackend
{
    private static (int NC, int H, int W, int P, int Q) PoolDims(Tensor x, Tensor y) =>
        (checked(x.Shape[0] * x.Shape[1]), x.Shape[2], x.Shape[3], y.Shape[2], y.Shape[3]);

    public void MaxPoolForward(Tensor y, Tensor indices, Tensor x, Pool2dParams p)
    {
        Enter();
        var name = CudaKernels.MaxPoolForward.For(x.DType, "MaxPoolForward");
        var (nc, h, w, pp, q) = PoolDims(x, y);
        int kh = p.KernelH, kw = p.KernelW, sh = p.StrideH, sw = p.StrideW, ph = p.PadH, pw = p.PadW;
        nint py = y.Pointer, pi = indices.Pointer, px = x.Pointer;
        void** a = stackalloc void*[] { &py, &pi, &px, &nc, &h, &w, &pp, &q, &kh, &kw, &sh, &sw, &ph, &pw };
        Launch1D(CudaKernels.MaxPoolForward.File, name, (long)nc * pp * q, a);
    }

    public void MaxPoolBackward(Tensor dX, Tensor dY, Tensor indices, Pool2dParams p)
    {
        Enter();
        var name = CudaKernels.MaxPoolBackward.For(dX.DType, "MaxPoolBackward");
        var (nc, h, w, pp, q) = PoolDims(dX, dY);
        int kh = p.KernelH, kw = p.KernelW, sh = p.StrideH, sw = p.StrideW, ph = p.PadH, pw = p.PadW;
        nint pdx = dX.Pointer, pdy = dY.Pointer, pi = indices.Pointer;
        void** a = stackalloc void*[] { &pdx, &pdy, &pi, &nc, &h, &w, &pp, &q, &kh, &kw, &sh, &sw, &ph, &pw };
        Launch1D(CudaKernels.MaxPoolBackward.File, name, (long)nc * h * w, a);
    }

    public void AvgPoolForward(Tensor y, Tensor x, Pool2dParams p)
    {
        Enter();
        var name = CudaKernels.AvgPoolForward.For(x.DType, "AvgPoolForward");
        var (nc, h, w, pp, q) = PoolDims(x, y);
        int kh = p.KernelH, kw = p.KernelW, sh = p.StrideH, sw = p.StrideW, ph = p.PadH, pw = p.PadW;
        int include = p.CountIncludePad ? 1 : 0;
        nint py = y.Pointer, px = x.Pointer;
        void** a = stackalloc void*[] { &py, &px, &nc, &h, &w, &pp, &q, &kh, &kw, &sh, &sw, &ph, &pw, &include };
        Launch1D(CudaKernels.AvgPoolForward.File, name, (long)nc * pp * q, a);
    }

    public void AvgPoolBackward(Tensor dX, Tensor dY, Pool2dParams p)
    {
        Enter();
        var name = CudaKernels.AvgPoolBackward.For(dX.DType, "AvgPoolBackward");
        var (nc, h, w, pp, q) = PoolDims(dX, dY);
        int kh = p.KernelH, kw = p.KernelW, sh = p.StrideH, sw = p.StrideW, ph = p.PadH, pw = p.PadW;
        int include = p.CountIncludePad ? 1 : 0;
        nint pdx = dX.Pointer, pdy = dY.Pointer;
        void** a = stackalloc void*[] { &pdx, &pdy, &nc, &h, &w, &pp, &q, &kh, &kw, &sh, &sw, &ph, &pw, &include };
        Launch1D(CudaKernels.AvgPoolBackward.File, name, (long)nc * h * w, a);
    }

    public void GlobalAvgPoolForward(Tensor y, Tensor x)
    {
        Enter();
        var name = CudaKernels.GlobalAvgPoolForward.For(x.DType, "GlobalAvgPoolForward");
        long nc = (long)x.Shape[0] * x.Shape[1], hw = (long)x.Shape[2] * x.Shape[3];
        nint py = y.Pointer, px = x.Pointer;
        void** a = stackalloc void*[] { &py, &px, &nc, &hw };
        // One warp per plane: 8 planes per block of 256 threads.
        if (nc > 0) Launch(CudaKernels.GlobalAvgPoolForward.File, name, ((uint)Math.Clamp((nc + 7) / 8, 1, 65535), 1, 1), (Threads, 1, 1), a);
    }

    public void GlobalAvgPoolBackward(Tensor dX, Tensor dY)
    {
        Enter();
        var name = CudaKernels.GlobalAvgPoolBackward.For(dX.DType, "GlobalAvgPoolBackward");
        long nc = (long)dX.Shape[0] * dX.Shape[1], hw = (long)dX.Shape[2] * dX.Shape[3];
        nint pdx = dX.Pointer, pdy = dY.Pointer;
        void** a = stackalloc void*[] { &pdx, &pdy, &nc, &hw };
        Launch1D(CudaKernels.GlobalAvgPoolBackward.File, name, nc * hw, a);
    }
}
