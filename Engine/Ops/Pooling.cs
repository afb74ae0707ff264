// Max, average and global average pooling. STUB: signatures fixed; to be implemented.
using ResidualEngine.Backends;

namespace ResidualEngine;

public static partial class Ops
{
    public static Tensor MaxPool2d(Tensor x, Pool2dParams p) => throw new NotImplementedException();
    public static Tensor MaxPool2d(Tensor x, int kernel, int? stride = null, int padding = 0, bool ceilMode = false) =>
        MaxPool2d(x, Pool2dParams.Of(kernel, stride ?? kernel, padding, ceilMode));

    public static Tensor AvgPool2d(Tensor x, Pool2dParams p) => throw new NotImplementedException();
    public static Tensor AvgPool2d(Tensor x, int kernel, int? stride = null, int padding = 0, bool ceilMode = false, bool countIncludePad = true) =>
        AvgPool2d(x, Pool2dParams.Of(kernel, stride ?? kernel, padding, ceilMode, countIncludePad));

    /// <summary>(N, C, H, W) -> (N, C, 1, 1), the mean over each plane (AdaptiveAvgPool2d(1)).</summary>
    public static Tensor GlobalAvgPool2d(Tensor x) => throw new NotImplementedException();
}
