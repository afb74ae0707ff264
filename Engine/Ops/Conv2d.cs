// 2-d convolution. STUB: signature fixed; forward/backward to be implemented.
using ResidualEngine.Backends;

namespace ResidualEngine;

public static partial class Ops
{
    /// <summary>x (N, C, H, W), weight (K, C/groups, R, S), bias (K) or null -> (N, K, P, Q).</summary>
    public static Tensor Conv2d(Tensor x, Tensor weight, Tensor? bias, Conv2dParams p) => throw new NotImplementedException();

    public static Tensor Conv2d(Tensor x, Tensor weight, Tensor? bias = null, int stride = 1, int padding = 0, int dilation = 1, int groups = 1) =>
        Conv2d(x, weight, bias, Conv2dParams.Of(stride, padding, dilation, groups));
}
