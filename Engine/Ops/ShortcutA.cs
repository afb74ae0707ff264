// Option-A shortcut of He et al.: stride-2 subsampling plus zero channel padding. STUB.
namespace ResidualEngine;

public static partial class Ops
{
    /// <summary>x (N, C, H, W) -> (N, outChannels, ceil(H/stride), ceil(W/stride)); x's channels sit in the middle
    /// ((outChannels - C) / 2 zero channels before them), as the reference CIFAR implementation pads.</summary>
    public static Tensor ShortcutA(Tensor x, int outChannels, int stride) => throw new NotImplementedException();
}
