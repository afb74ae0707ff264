// Loss-scaling support on the CPU: unscale a gradient in place and raise a found-inf flag when any
// element was infinite or NaN before unscaling (torch's _amp_foreach_non_finite_check_and_unscale_
// checks the value it reads, then multiplies). The flag is only ever set, never cleared, so one
// flag collects every gradient of a step; the caller zeroes it before the first.
using System.Numerics;

namespace ResidualEngine.Backends.Cpu;

public sealed unsafe partial class CpuBackend
{
    public void UnscaleAndCheck(Tensor grad, Tensor foundInf, double invScale)
    {
        if (foundInf.DType != DType.F32 || foundInf.Numel != 1)
            throw new ArgumentException($"UnscaleAndCheck: the found-inf flag must be one F32 element, got {foundInf.Describe()}");
        if (RunCanonical("bi", false, t => UnscaleAndCheck(t[0]!, t[1]!, invScale), grad, foundInf)) return;
        RequireFloat(grad, "UnscaleAndCheck");
        int bad = 0;
        nint p = grad.Pointer;
        if (grad.DType == DType.F32) CpuVec.Chunks(grad.Numel, (s, len) => { if (Unscale((float*)p + s, len, (float)invScale)) Volatile.Write(ref bad, 1); });
        else CpuVec.Chunks(grad.Numel, (s, len) => { if (Unscale((double*)p + s, len, invScale)) Volatile.Write(ref bad, 1); });
        if (bad != 0) *(float*)foundInf.Pointer = 1f;
    }

    /// <summary>v *= inv over n elements; true when any element was not finite.</summary>
    private static bool Unscale<T>(T* v, int n, T inv) where T : unmanaged, IFloatingPointIeee754<T>
    {
        bool bad = false;
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var vi = new Vector<T>(inv);
            for (int w = Vector<T>.Count; i <= n - w; i += w)
            {
                var x = Vector.Load(v + i);
                // x - x is 0 for every finite x and NaN for infinities and NaN.
                bad |= !Vector.EqualsAll(x - x, Vector<T>.Zero);
                (x * vi).Store(v + i);
            }
        }
        for (; i < n; i++)
        {
            bad |= !T.IsFinite(v[i]);
            v[i] *= inv;
        }
        return bad;
    }
}
