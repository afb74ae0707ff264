// The kernels the backend launches, by file and name. Float kernels exist per element type with a
// suffix (maxpool_forward_f32, _f64, _bf16, _f16: FOR_FLOAT_TYPES in common.cuh); names match the C# ops (MaxPoolForward ->
// maxpool_forward). The pointwise family's kernels are not listed by hand: their names come from
// the op structs (PointwiseKernels). CompileAll and the tests check that every name is defined.
namespace ResidualEngine.Backends.Cuda;

/// <summary>A kernel instantiated for every float element type: NAME_f32, NAME_f64, NAME_bf16, NAME_f16, in one file.</summary>
internal sealed class KernelRef(string file, string name)
{
    /// <summary>The element types every float kernel exists for, with their name suffixes (FOR_FLOAT_TYPES in common.cuh).</summary>
    public static readonly (DType Type, string Suffix)[] Types = [(DType.F32, "f32"), (DType.F64, "f64"), (DType.BF16, "bf16"), (DType.F16, "f16")];

    public string File { get; } = file;
    public string Name { get; } = name;
    public string F32 { get; } = name + "_f32";
    public string F64 { get; } = name + "_f64";
    public string BF16 { get; } = name + "_bf16";
    public string F16 { get; } = name + "_f16";

    /// <summary>Every instantiation's name.</summary>
    public IEnumerable<string> Names => [F32, F64, BF16, F16];

    /// <summary>The kernel for an element type; other types are not supported by this op on the GPU.</summary>
    public string For(DType t, string op) => t switch
    {
        DType.F32 => F32,
        DType.F64 => F64,
        DType.BF16 => BF16,
        DType.F16 => F16,
        _ => throw new NotSupportedException($"{op} on CUDA supports F32, F64, BF16 and F16, not {t}"),
    };
}

internal static class CudaKernels
{
    // memory.cu
    public static readonly KernelRef Fill = new("memory.cu", "fill");
    public const string FillI64 = "fill_i64";
    public const string Cast = "cast";
    public const string MemoryFile = "memory.cu";
    /// <summary>NCHW &lt;-&gt; NHWC transposes by element size (1, 2, 4, 8 bytes).</summary>
    public static string ConvertLayout(int elementSize) => elementSize switch
    {
        1 => "convert_layout_u8",
        2 => "convert_layout_u16",
        4 => "convert_layout_u32",
        8 => "convert_layout_u64",
        _ => throw new NotSupportedException($"no layout conversion for {elementSize}-byte elements"),
    };

    // reduce.cu
    public static readonly KernelRef SumPartial = new("reduce.cu", "sum_partial");
    public static readonly KernelRef SumFinalize = new("reduce.cu", "sum_finalize");
    public static readonly KernelRef SumRows = new("reduce.cu", "sum_rows");
    public static readonly KernelRef SumPlanes = new("reduce.cu", "sum_planes");

    // pooling.cu
    public static readonly KernelRef MaxPoolForward = new("pooling.cu", "maxpool_forward");
    public static readonly KernelRef MaxPoolBackward = new("pooling.cu", "maxpool_backward");
    public static readonly KernelRef AvgPoolForward = new("pooling.cu", "avgpool_forward");
    public static readonly KernelRef AvgPoolBackward = new("pooling.cu", "avgpool_backward");
    public static readonly KernelRef GlobalAvgPoolForward = new("pooling.cu", "global_avgpool_forward");
    public static readonly KernelRef GlobalAvgPoolBackward = new("pooling.cu", "global_avgpool_backward");

    // loss.cu
    public static readonly KernelRef SoftmaxXentForward = new("loss.cu", "softmax_xent_forward");
    public static readonly KernelRef SoftmaxXentBackward = new("loss.cu", "softmax_xent_backward");

    // shortcut.cu
    public static readonly KernelRef ShortcutAForward = new("shortcut.cu", "shortcut_a_forward");
    public static readonly KernelRef ShortcutABackward = new("shortcut.cu", "shortcut_a_backward");

    // sgd.cu
    public static readonly KernelRef SgdUpdate = new("sgd.cu", "sgd_update");

    // amp.cu
    public static readonly KernelRef AmpUnscale = new("amp.cu", "amp_unscale");

    // batchnorm.cu
    public static readonly KernelRef BatchNormForwardTraining = new("batchnorm.cu", "batchnorm_forward_training");
    public static readonly KernelRef BatchNormForwardInference = new("batchnorm.cu", "batchnorm_forward_inference");
    public static readonly KernelRef BatchNormBackward = new("batchnorm.cu", "batchnorm_backward");

    private static readonly KernelRef[] s_all =
    [
        Fill, SumPartial, SumFinalize, SumRows, SumPlanes,
        MaxPoolForward, MaxPoolBackward, AvgPoolForward, AvgPoolBackward, GlobalAvgPoolForward, GlobalAvgPoolBackward,
        SoftmaxXentForward, SoftmaxXentBackward, ShortcutAForward, ShortcutABackward, SgdUpdate, AmpUnscale,
        BatchNormForwardTraining, BatchNormForwardInference, BatchNormBackward,
    ];

    /// <summary>Every (file, kernel name) the backend may launch.</summary>
    public static IEnumerable<(string File, string Name)> All()
    {
        foreach (var k in s_all)
            foreach (var n in k.Names) yield return (k.File, n);
        yield return (MemoryFile, FillI64);
        yield return (MemoryFile, Cast);
        foreach (int size in new[] { 1, 2, 4, 8 }) yield return (MemoryFile, ConvertLayout(size));
        foreach (var k in PointwiseKernels.All()) yield return k;
    }

    /// <summary>The kernel names the backend needs from one file.</summary>
    public static IEnumerable<string> NamesIn(string file) => All().Where(k => k.File == file).Select(k => k.Name);
}
