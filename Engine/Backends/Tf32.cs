// The TF32 policy in words. PyTorch's defaults since 1.12: cuDNN convolutions of F32 data may use
// TF32 tensor cores (torch.backends.cudnn.allow_tf32 = True), matmuls may not
// (torch.backends.cuda.matmul.allow_tf32 = False). CudaBackend has the same two switches with the
// same defaults; `--precision fp32` turns both off, `--precision tf32` keeps PyTorch's defaults.
namespace ResidualEngine.Backends;

public static class Tf32
{
    /// <summary>"TF32: convolutions on, matmuls off (PyTorch's default)" and the like.</summary>
    public static string Describe(bool convolutions, bool matmul) =>
        $"TF32: convolutions {(convolutions ? "on" : "off")}, matmuls {(matmul ? "on" : "off")}" +
        (convolutions && !matmul ? " (PyTorch's default)" : !convolutions && !matmul ? " (strict FP32)" : "");
}
