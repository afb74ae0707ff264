// The option-A shortcut on CUDA (Kernels/shortcut.cu): subsample by `stride`, place x's channels
// after padBefore zero channels. Gradient rule: dX takes dY's matching channel at the sampled
// positions and zero elsewhere (the kernel writes every element of dX). NCHW or channels-last.
namespace ResidualEngine.Backends.Cuda;

public sealed unsafe partial class CudaBackend
{
    public void ShortcutAForward(Tensor y, Tensor x, int stride, int padBefore)
    {
        Enter();
        var name = CudaKernels.ShortcutAForward.For(x.DType, "ShortcutAForward");
        int n = x.Shape[0], c = x.Shape[1], h = x.Shape[2], w = x.Shape[3];
        int k = y.Shape[1], p = y.Shape[2], q = y.Shape[3];
        int s = stride, pad = padBefore;
        nint py = y.Pointer, px = x.Pointer;
        int f = Nhwc(x);
        void** a = stackalloc void*[] { &py, &px, &n, &c, &h, &w, &k, &p, &q, &s, &pad, &f };
        Launch1D(CudaKernels.ShortcutAForward.File, name, y.Numel, a);
    }

    public void ShortcutABackward(Tensor dX, Tensor dY, int stride, int padBefore)
    {
        Enter();
        var name = CudaKernels.ShortcutABackward.For(dX.DType, "ShortcutABackward");
        int n = dX.Shape[0], c = dX.Shape[1], h = dX.Shape[2], w = dX.Shape[3];
        int k = dY.Shape[1], p = dY.Shape[2], q = dY.Shape[3];
        int s = stride, pad = padBefore;
        nint pdx = dX.Pointer, pdy = dY.Pointer;
        int f = Nhwc(dX);
        void** a = stackalloc void*[] { &pdx, &pdy, &n, &c, &h, &w, &k, &p, &q, &s, &pad, &f };
        Launch1D(CudaKernels.ShortcutABackward.File, name, dX.Numel, a);
    }
}
