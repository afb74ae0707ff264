// Physical layout of a 4-d tensor. The logical shape is always (N, C, H, W); NHWC
// ("channels-last", what tensor cores want) only changes how elements are stored.
// Ops may support NCHW only for now and must reject NHWC inputs clearly.
namespace ResidualEngine;

public enum MemoryFormat
{
    /// <summary>Row-major in logical order (NCHW for 4-d tensors).</summary>
    Contiguous,
    /// <summary>Channels-last: stored as (N, H, W, C).</summary>
    ChannelsLast,
}
