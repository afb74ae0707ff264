// The fused SGD step on CUDA (Kernels/sgd.cu): weight decay, momentum with dampening, Nesterov
// and the first-step buffer initialisation in one pass per parameter, as torch.optim.SGD. The
// learning rate is a kernel argument, so a schedule costs nothing.
namespace ResidualEngine.Backends.Cuda;

public sealed unsafe partial class CudaBackend
{
    public void SgdUpdate(Tensor param, Tensor grad, Tensor? momentumBuffer, double lr, double momentum, double dampening,
        double weightDecay, bool nesterov, bool firstStep)
    {
        if (momentum != 0 && momentumBuffer is null)
            throw new ArgumentException($"SgdUpdate: momentum {momentum} needs a momentum buffer for {param.Describe()}", nameof(momentumBuffer));
        Enter();
        var name = CudaKernels.SgdUpdate.For(param.DType, "SgdUpdate");
        nint pp = param.Pointer, pg = grad.Pointer, pb = momentumBuffer?.Pointer ?? 0;
        long n = param.Numel;
        double l = lr, m = momentum, d = dampening, wd = weightDecay;
        int nes = nesterov ? 1 : 0, first = firstStep ? 1 : 0;
        void** a = stackalloc void*[] { &pp, &pg, &pb, &n, &l, &m, &d, &wd, &nes, &first };
        Launch1D(CudaKernels.SgdUpdate.File, name, n, a);
    }
}
