// Element types. F16/BF16 exist from the start (GPU mixed precision) even where an op
// does not support them yet; I64 carries labels and BN's num_batches_tracked.
namespace ResidualEngine;

public enum DType
{
    F32,
    F64,
    F16,
    BF16,
    I64,
    I32,
    U8,
}

public static class DTypeExtensions
{
    /// <summary>Bytes per element.</summary>
    public static int Size(this DType t) => t switch
    {
        DType.F32 => 4,
        DType.F64 => 8,
        DType.F16 => 2,
        DType.BF16 => 2,
        DType.I64 => 8,
        DType.I32 => 4,
        DType.U8 => 1,
        _ => throw new ArgumentOutOfRangeException(nameof(t), t, "unknown dtype"),
    };

    public static bool IsFloat(this DType t) => t is DType.F32 or DType.F64 or DType.F16 or DType.BF16;

    /// <summary>Name as in PyTorch and safetensors ("F32", "BF16", "I64", ...).</summary>
    public static string SafetensorsName(this DType t) => t switch
    {
        DType.F32 => "F32",
        DType.F64 => "F64",
        DType.F16 => "F16",
        DType.BF16 => "BF16",
        DType.I64 => "I64",
        DType.I32 => "I32",
        DType.U8 => "U8",
        _ => throw new ArgumentOutOfRangeException(nameof(t), t, "unknown dtype"),
    };
}
