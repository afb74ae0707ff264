// The kernels the backend launches, by file and name. Float kernels exist per element type with a
// suffix (relu_forward_f32, relu_forward_f64); names match the C# ops (ReluForward -> relu_forward).
// CompileAll and the tests check that every name listed here is defined by its file.
namespace ResidualEngine.Backends.Cuda;

/// <summary>A pair of kernels NAME_f32 / NAME_f64 in one file.</summary>
internal sealed class KernelRef(string file, string name)
{
    public string File { get; } = file;
    public string Name { get; } = name;
    public string F32 { get; } = name + "_f32";
    public string F64 { get; } = name + "_f64";

    /// <summary>The kernel for an element type; other types are not supported by this op on the GPU.</summary>
    public string For(DType t, string op) => t switch
    {
        DType.F32 => F32,
        DType.F64 => F64,
        _ => throw new NotSupportedException($"{op} on CUDA supports F32 and F64, not {t}"),
    };
}

internal static class CudaKernels
{
    // relu.cu
    public static readonly KernelRef ReluForward = new("relu.cu", "relu_forward");
    public static readonly KernelRef ReluBackward = new("relu.cu", "relu_backward");
    public static readonly KernelRef Add = new("relu.cu", "add");
    public static readonly KernelRef AddRelu = new("relu.cu", "add_relu");
    public static readonly KernelRef Mul = new("relu.cu", "mul");
    public static readonly KernelRef Axpby = new("relu.cu", "axpby");
    public static readonly KernelRef SigmoidForward = new("relu.cu", "sigmoid_forward");
    public static readonly KernelRef SigmoidBackward = new("relu.cu", "sigmoid_backward");
    public static readonly KernelRef ScaleRowsForward = new("relu.cu", "scale_rows_forward");
    public static readonly KernelRef ScaleRowsBackward = new("relu.cu", "scale_rows_backward");
    public static readonly KernelRef Fill = new("relu.cu", "fill");
    public const string FillI64 = "fill_i64";
    public const string Cast = "cast";
    public const string ElementwiseFile = "relu.cu";

    // reduce.cu
    public static readonly KernelRef SumPartial = new("reduce.cu", "sum_partial");
    public static readonly KernelRef SumFinalize = new("reduce.cu", "sum_finalize");
    public static readonly KernelRef SumRows = new("reduce.cu", "sum_rows");
    public static readonly KernelRef AddRowVector = new("reduce.cu", "add_row_vector");
    public static readonly KernelRef AddChannelBias = new("reduce.cu", "add_channel_bias");
    public static readonly KernelRef BiasGradNchw = new("reduce.cu", "bias_grad_nchw");

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

    // batchnorm.cu
    public static readonly KernelRef BatchNormForwardTraining = new("batchnorm.cu", "batchnorm_forward_training");
    public static readonly KernelRef BatchNormForwardInference = new("batchnorm.cu", "batchnorm_forward_inference");
    public static readonly KernelRef BatchNormBackward = new("batchnorm.cu", "batchnorm_backward");

    private static readonly KernelRef[] s_all =
    [
        ReluForward, ReluBackward, Add, AddRelu, Mul, Axpby, SigmoidForward, SigmoidBackward, ScaleRowsForward,
        ScaleRowsBackward, Fill, SumPartial, SumFinalize, SumRows, AddRowVector, AddChannelBias, BiasGradNchw,
        MaxPoolForward, MaxPoolBackward, AvgPoolForward, AvgPoolBackward, GlobalAvgPoolForward, GlobalAvgPoolBackward,
        SoftmaxXentForward, SoftmaxXentBackward, ShortcutAForward, ShortcutABackward, SgdUpdate,
        BatchNormForwardTraining, BatchNormForwardInference, BatchNormBackward,
    ];

    /// <summary>Every (file, kernel name) the backend may launch.</summary>
    public static IEnumerable<(string File, string Name)> All()
    {
        foreach (var k in s_all) { yield return (k.File, k.F32); yield return (k.File, k.F64); }
        yield return (ElementwiseFile, FillI64);
        yield return (ElementwiseFile, Cast);
    }

    /// <summary>The kernel names the backend needs from one file.</summary>
    public static IEnumerable<string> NamesIn(string file) => All().Where(k => k.File == file).Select(k => k.Name);
}
