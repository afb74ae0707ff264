// Pooling on CUDA (Kernels/pooling.cu): max pooling with I32 argmax indices (h * W + w within the
// plane), average pooling with PyTorch's count_include_pad and ceil-mode divisors, and global
// average pooling; NCHW or channels-last (the kernels take the format as a flag), any float type.
// Backward kernels gather per input element, so they overwrite dX completely.
namespace ResidualEngine.Backends.Cuda;

public sealed unsafe partial class CudaBackend
{
    private static (int N, int C, int H, int W, int P, int Q, int Nhwc) PoolDims(Tensor x, Tensor y) =>
        (x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3], y.Shape[2], y.Shape[3], Nhwc(x));

    /// <summary>1 for a channels-last tensor, 0 for NCHW: the kernels' format flag.</summary>
    internal static int Nhwc(Tensor t) => t.Format == MemoryFormat.ChannelsLast ? 1 : 0;

    public void MaxPoolForward(Tensor y, Tensor indices, Tensor x, Pool2dParams p)
    {
        Enter();
        var name = CudaKernels.MaxPoolForward.For(x.DType, "MaxPoolForward");
        var (nb, c, h, w, pp, q, f) = PoolDims(x, y);
        int kh = p.KernelH, kw = p.KernelW, sh = p.StrideH, sw = p.StrideW, ph = p.PadH, pw = p.PadW;
        nint py = y.Pointer, pi = indices.Pointer, px = x.Pointer;
        void** a = stackalloc void*[] { &py, &pi, &px, &nb, &c, &h, &w, &pp, &q, &kh, &kw, &sh, &sw, &ph, &pw, &f };
        Launch1D(CudaKernels.MaxPoolForward.File, name, (long)nb * c * pp * q, a);
    }

    public void MaxPoolBackward(Tensor dX, Tensor dY, Tensor indices, Pool2dParams p)
    {
        Enter();
        var name = CudaKernels.MaxPoolBackward.For(dX.DType, "MaxPoolBackward");
        var (nb, c, h, w, pp, q, f) = PoolDims(dX, dY);
        int kh = p.KernelH, kw = p.KernelW, sh = p.StrideH, sw = p.StrideW, ph = p.PadH, pw = p.PadW;
        nint pdx = dX.Pointer, pdy = dY.Pointer, pi = indices.Pointer;
        void** a = stackalloc void*[] { &pdx, &pdy, &pi, &nb, &c, &h, &w, &pp, &q, &kh, &kw, &sh, &sw, &ph, &pw, &f };
        Launch1D(CudaKernels.MaxPoolBackward.File, name, (long)nb * c * h * w, a);
    }

    public void AvgPoolForward(Tensor y, Tensor x, Pool2dParams p)
    {
        Enter();
        var name = CudaKernels.AvgPoolForward.For(x.DType, "AvgPoolForward");
        var (nb, c, h, w, pp, q, f) = PoolDims(x, y);
        int kh = p.KernelH, kw = p.KernelW, sh = p.StrideH, sw = p.StrideW, ph = p.PadH, pw = p.PadW;
        int include = p.CountIncludePad ? 1 : 0;
        nint py = y.Pointer, px = x.Pointer;
        void** a = stackalloc void*[] { &py, &px, &nb, &c, &h, &w, &pp, &q, &kh, &kw, &sh, &sw, &ph, &pw, &include, &f };
        Launch1D(CudaKernels.AvgPoolForward.File, name, (long)nb * c * pp * q, a);
    }

    public void AvgPoolBackward(Tensor dX, Tensor dY, Pool2dParams p)
    {
        Enter();
        var name = CudaKernels.AvgPoolBackward.For(dX.DType, "AvgPoolBackward");
        var (nb, c, h, w, pp, q, f) = PoolDims(dX, dY);
        int kh = p.KernelH, kw = p.KernelW, sh = p.StrideH, sw = p.StrideW, ph = p.PadH, pw = p.PadW;
        int include = p.CountIncludePad ? 1 : 0;
        nint pdx = dX.Pointer, pdy = dY.Pointer;
        void** a = stackalloc void*[] { &pdx, &pdy, &nb, &c, &h, &w, &pp, &q, &kh, &kw, &sh, &sw, &ph, &pw, &include, &f };
        Launch1D(CudaKernels.AvgPoolBackward.File, name, (long)nb * c * h * w, a);
    }

    public void GlobalAvgPoolForward(Tensor y, Tensor x)
    {
        Enter();
        var name = CudaKernels.GlobalAvgPoolForward.For(x.DType, "GlobalAvgPoolForward");
        long nb = x.Shape[0], c = x.Shape[1], nc = nb * c, hw = (long)x.Shape[2] * x.Shape[3];
        int f = Nhwc(x);
        nint py = y.Pointer, px = x.Pointer;
        void** a = stackalloc void*[] { &py, &px, &nb, &c, &hw, &f };
        // One warp per plane: 8 planes per block of 256 threads.
        if (nc > 0) Launch(CudaKernels.GlobalAvgPoolForward.File, name, ((uint)Math.Clamp((nc + 7) / 8, 1, 65535), 1, 1), (Threads, 1, 1), a);
    }

    public void GlobalAvgPoolBackward(Tensor dX, Tensor dY)
    {
        Enter();
        var name = CudaKernels.GlobalAvgPoolBackward.For(dX.DType, "GlobalAvgPoolBackward");
        long nb = dX.Shape[0], c = dX.Shape[1], hw = (long)dX.Shape[2] * dX.Shape[3];
        int f = Nhwc(dX);
        nint pdx = dX.Pointer, pdy = dY.Pointer;
        void** a = stackalloc void*[] { &pdx, &pdy, &nb, &c, &hw, &f };
        Launch1D(CudaKernels.GlobalAvgPoolBackward.File, name, nb * c * hw, a);
    }
}
