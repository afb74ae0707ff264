// A backend's own form of a convolution's weights, made once and reused by every forward call
// while the weights do not change (eval mode): the CPU backend keeps the weights packed in the
// panel layout of its GEMM, so an inference pass does not repack them per call. The owner (the
// Conv2d layer's inference cache) disposes it when the weights change or the layer is disposed.
namespace ResidualEngine.Backends;

public abstract class PreparedConvWeights : IDisposable
{
    protected PreparedConvWeights(Shape weightShape, DType dtype, Device device, Conv2dParams p)
    {
        WeightShape = weightShape;
        DType = dtype;
        Device = device;
        Params = p;
    }

    /// <summary>Shape (K, C/groups, R, S) of the weights this was made from.</summary>
    public Shape WeightShape { get; }
    public DType DType { get; }
    public Device Device { get; }
    public Conv2dParams Params { get; }

    /// <summary>True when this can stand for weights of <paramref name="w"/>'s shape, dtype and device with groups of p.</summary>
    public bool Matches(Tensor w, Conv2dParams p)
    {
        ArgumentNullException.ThrowIfNull(w);
        return w.Shape == WeightShape && w.DType == DType && w.Device == Device && p.Groups == Params.Groups;
    }

    /// <summary>False when the backend can no longer use it (its kernels changed since); the owner prepares again.</summary>
    public virtual bool IsCurrent => true;

    public bool IsDisposed { get; private set; }

    public void Dispose()
    {
        if (IsDisposed) return;
        IsDisposed = true;
        Free();
        GC.SuppressFinalize(this);
    }

    /// <summary>Returns the memory (called once).</summary>
    protected abstract void Free();
}
