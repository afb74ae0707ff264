// What `--precision fp32|tf32|bf16|fp16` means, in one place for train, eval and bench (and, with
// the same words, Tools/bench/pytorch_baseline.py):
//   fp32  F32 everywhere, TF32 off for convolutions and matmuls (results match the CPU to 1e-3);
//   tf32  F32 storage, PyTorch's default TF32 policy: cuDNN convolutions may use TF32, matmuls not;
//   bf16  Autocast to BF16 (convolutions and linear layers in BF16, loss in F32, F32 master weights),
//         PyTorch's TF32 policy for what stays F32;
//   fp16  as bf16 with F16, plus dynamic loss scaling (GradScaler).
// TF32 exists only on CUDA; on the CPU the policy is recorded and has no effect.
using ResidualEngine.Backends;
using ResidualEngine.Backends.Cuda;
using ResidualEngine.Nn.Optim;

namespace ResidualEngine.Training;

public sealed record PrecisionMode(string Name, DType? Autocast, bool LossScaling, bool Tf32Convolutions, bool Tf32Matmul)
{
    public static readonly string[] Names = ["fp32", "tf32", "bf16", "fp16"];

    /// <summary>The mode a `--precision` word names (also f32, float32, bfloat16, float16, half, amp = fp16).</summary>
    public static PrecisionMode Parse(string word)
    {
        ArgumentNullException.ThrowIfNull(word);
        return word.Trim().ToLowerInvariant() switch
        {
            "fp32" or "f32" or "float32" => new("fp32", null, false, false, false),
            "tf32" => new("tf32", null, false, true, false),
            "bf16" or "bfloat16" => new("bf16", DType.BF16, false, true, false),
            "fp16" or "f16" or "float16" or "half" or "amp" => new("fp16", DType.F16, true, true, false),
            _ => throw new ArgumentException($"option --precision must be one of {string.Join(", ", Names)}, got '{word}'"),
        };
    }

    /// <summary>Sets the TF32 switches of the device's backend (nothing on the CPU).</summary>
    public void ApplyTo(Device device)
    {
        if (device.Type != DeviceType.Cuda || BackendRegistry.Get(device) is not CudaBackend cuda) return;
        cuda.AllowTf32Convolutions = Tf32Convolutions;
        cuda.AllowTf32Matmul = Tf32Matmul;
    }

    /// <summary>A scaler for this mode (enabled for fp16 only), with torch.cuda.amp.GradScaler's defaults.</summary>
    public GradScaler CreateScaler() => new(enabled: LossScaling);

    /// <summary>"bf16 autocast (F32 master weights); TF32: convolutions on, matmuls off (PyTorch's default)", or with "(CPU: no TF32)".</summary>
    public string Describe(Device device)
    {
        var what = Autocast is { } t
            ? $"{Name} autocast ({t} convolutions and linear layers, F32 loss and master weights{(LossScaling ? ", dynamic loss scaling" : "")})"
            : Name == "tf32" ? "tf32 (F32 storage)" : "fp32";
        return $"{what}; {Tf32.Describe(Tf32Convolutions, Tf32Matmul)}{(device.Type == DeviceType.Cpu ? " (no TF32 on the CPU)" : "")}";
    }
}
