// The differentiable operations, one file each (Relu.cs, Conv2d.cs, ...). Each op checks its
// arguments, allocates its output, asks the backend to compute, and records a node when
// autograd needs one. Results belong to the current TensorScope; inputs are never disposed.
namespace ResidualEngine;

public static partial class Ops
{
    /// <summary>Allocates an output like <paramref name="like"/> (device, dtype) with a given shape, NCHW-contiguous.</summary>
    internal static Tensor NewLike(Tensor like, Shape shape) => Tensor.Empty(shape, like.DType, like.Device);
    /// <summary>Allocates an output like <paramref name="like"/> (device, dtype) with a given 4-d shape in a given memory format.</summary>
    internal static Tensor NewLike(Tensor like, Shape shape, MemoryFormat format) => Tensor.Empty(shape, like.DType, like.Device, format);
    /// <summary>Allocates an output like <paramref name="like"/>: same shape, dtype, device and memory format.</summary>
    internal static Tensor NewLike(Tensor like) => Tensor.Empty(like.Shape, like.DType, like.Device, like.Format);
}
