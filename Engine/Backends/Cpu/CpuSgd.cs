// Fused SGD update on the CPU, F32 and F64: one SIMD pass per parameter (in parallel chunks for
// large tensors) that applies weight decay, updates the momentum buffer and the parameter, with
// torch.optim.SGD's rule (see IBackend.SgdUpdate). The gradient is left untouched.
using System.Numerics;

namespace ResidualEngine.Backends.Cpu;

public sealed unsafe partial class CpuBackend
{
    public void SgdUpdate(Tensor param, Tensor grad, Tensor? momentumBuffer, double lr, double momentum, double dampening,
        double weightDecay, bool nesterov, bool firstStep)
    {
        // 16-bit parameters: updated in F32 and rounded back (mixed-precision training keeps F32 master weights instead).
        if (RunCanonical("bib", false, t => SgdUpdate(t[0]!, t[1]!, t[2], lr, momentum, dampening, weightDecay, nesterov, firstStep),
            param, grad, momentumBuffer)) return;
        RequireFloat(param, "SgdUpdate");
        if (grad.DType != param.DType || grad.Numel != param.Numel)
            throw new ArgumentException($"SgdUpdate: gradient {grad.Describe()} does not match parameter {param.Describe()}");
        if (momentum != 0)
        {
            if (momentumBuffer is null) throw new ArgumentException("SgdUpdate: momentum needs a momentum buffer");
            if (momentumBuffer.DType != param.DType || momentumBuffer.Numel != param.Numel)
                throw new ArgumentException($"SgdUpdate: momentum buffer {momentumBuffer.Describe()} does not match parameter {param.Describe()}");
        }
        nint buf = momentum != 0 ? momentumBuffer!.Pointer : 0;
        var h = new SgdHyper(lr, momentum, dampening, weightDecay, nesterov, firstStep);
        if (param.DType == DType.F32) Sgd<float>(param.Pointer, grad.Pointer, buf, param.Numel, h);
        else Sgd<double>(param.Pointer, grad.Pointer, buf, param.Numel, h);
    }

    private readonly record struct SgdHyper(double Lr, double Momentum, double Dampening, double WeightDecay, bool Nesterov, bool FirstStep);

    private static void Sgd<T>(nint param, nint grad, nint buf, long n, SgdHyper h) where T : unmanaged, INumber<T>
    {
        CpuVec.Chunks(n, (start, len) =>
        {
            var p = new Span<T>((T*)param + start, len);
            var g = new ReadOnlySpan<T>((T*)grad + start, len);
            if (buf == 0) SgdPlain(p, g, h);
            else SgdMomentum(p, g, new Span<T>((T*)buf + start, len), h);
        });
    }

    private static void SgdPlain<T>(Span<T> p, ReadOnlySpan<T> g, SgdHyper h) where T : unmanaged, INumber<T>
    {
        T wd = T.CreateTruncating(h.WeightDecay), lr = T.CreateTruncating(h.Lr);
        Vector<T> vwd = new(wd), vlr = new(lr);
        int i = 0, w = Vector<T>.Count;
        for (; i <= p.Length - w; i += w)
        {
            var vp = new Vector<T>(p.Slice(i));
            var d = new Vector<T>(g.Slice(i)) + vwd * vp;
            (vp - vlr * d).CopyTo(p.Slice(i));
        }
        for (; i < p.Length; i++) p[i] -= lr * (g[i] + wd * p[i]);
    }

    private static void SgdMomentum<T>(Span<T> p, ReadOnlySpan<T> g, Span<T> b, SgdHyper h) where T : unmanaged, INumber<T>
    {
        T wd = T.CreateTruncating(h.WeightDecay), lr = T.CreateTruncating(h.Lr), mom = T.CreateTruncating(h.Momentum);
        T take = T.CreateTruncating(1 - h.Dampening);
        Vector<T> vwd = new(wd), vlr = new(lr), vmom = new(mom), vtake = new(take);
        int i = 0, w = Vector<T>.Count;
        for (; i <= p.Length - w; i += w)
        {
            var vp = new Vector<T>(p.Slice(i));
            var d = new Vector<T>(g.Slice(i)) + vwd * vp;
            // On the first step the buffer becomes the gradient itself, undamped (as PyTorch); the
            // uninitialised buffer is not read.
            var vb = h.FirstStep ? d : vmom * new Vector<T>(b.Slice(i)) + vtake * d;
            vb.CopyTo(b.Slice(i));
            var step = h.Nesterov ? d + vmom * vb : vb;
            (vp - vlr * step).CopyTo(p.Slice(i));
        }
        for (; i < p.Length; i++)
        {
            T d = g[i] + wd * p[i];
            T bi = h.FirstStep ? d : mom * b[i] + take * d;
            b[i] = bi;
            T step = h.Nesterov ? d + mom * bi : bi;
            p[i] -= lr * step;
        }
    }
}
