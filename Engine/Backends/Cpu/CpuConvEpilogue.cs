// What the forward convolution does to its output before the value leaves the cache:
// y = act(acc + bias[k] + residual), act = ReLU or none, bias and residual optional. Applied to
// each micro-tile right after its last k block (CpuGemm.Block, the 1x1 and shift paths) or while
// copying a scratch block into the output, so the bias, the residual sum and the ReLU of a
// ResNet block cost no pass of their own. Order of operations as the unfused ops: (acc + bias),
// then + residual, then ReLU (NaN propagating, as Pointwise.Relu).
using System.Numerics;
using System.Runtime.CompilerServices;

namespace ResidualEngine.Backends.Cpu;

/// <summary>Applied to each mr x nr tile of C once its last k block is done; row0 is the tile's first GEMM row.</summary>
internal unsafe interface ITileEpilogue<T> where T : unmanaged
{
    void Tile(T* c, int ldc, int row0, int mr, int nr);
}

/// <summary>No epilogue (plain GEMM).</summary>
internal readonly struct NoEpilogue<T> : ITileEpilogue<T> where T : unmanaged
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public unsafe void Tile(T* c, int ldc, int row0, int mr, int nr) { }
}

internal readonly unsafe struct ConvEpilogue<T> : ITileEpilogue<T> where T : unmanaged, INumber<T>
{
    private readonly T* _y, _bias, _residual;
    private readonly bool _relu;
    /// <summary>Global output channel of GEMM row 0 (group g's rows start at g * K/groups).</summary>
    private readonly int _channel0;

    /// <param name="y">Base of the output (NCHW); a residual element sits at the same offset from <paramref name="residual"/>.</param>
    public ConvEpilogue(T* y, T* bias, T* residual, bool relu, int channel0 = 0)
    {
        _y = y;
        _bias = bias;
        _residual = residual;
        _relu = relu;
        _channel0 = channel0;
    }

    /// <summary>True when the epilogue changes nothing.</summary>
    public bool IsNone => _bias == null && _residual == null && !_relu;

    /// <summary>The same epilogue for the rows of group <paramref name="group"/> (K/groups rows each).</summary>
    public ConvEpilogue<T> ForGroup(int group, int kg) => new(_y, _bias, _residual, _relu, group * kg);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Tile(T* c, int ldc, int row0, int mr, int nr)
    {
        if (IsNone) return;
        for (int i = 0; i < mr; i++)
        {
            T* ci = c + (long)i * ldc;
            Apply(ci, ci, nr, row0 + i);
        }
    }

    /// <summary>dst[t] = act(src[t] + bias[k] + residual at dst + t), t &lt; len, for GEMM row k; src may be dst.</summary>
    public void Apply(T* dst, T* src, int len, int k)
    {
        T b = _bias != null ? _bias[_channel0 + k] : T.Zero;
        T* res = _residual != null ? _residual + (dst - _y) : null;
        int t = 0, w = Vector<T>.Count;
        if (Vector.IsHardwareAccelerated)
        {
            var vb = new Vector<T>(b);
            for (; t <= len - w; t += w)
            {
                var v = Vector.Load(src + t) + vb;
                if (res != null) v += Vector.Load(res + t);
                if (_relu) v = Vector.Max(v, Vector<T>.Zero);
                v.Store(dst + t);
            }
        }
        for (; t < len; t++)
        {
            T v = src[t] + b;
            if (res != null) v += res[t];
            if (_relu && !(v > T.Zero) && !T.IsNaN(v)) v = T.Zero;
            dst[t] = v;
        }
    }
}
