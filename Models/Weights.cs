// Saving and loading a module's state dict as safetensors, with the names unchanged, so a
// torchvision ResNet written from Python with safetensors.torch.save_file(model.state_dict())
// loads into ModelZoo.Create("resnet50") as is, and the other way round. Loading also reads
// PyTorch's own torch.save files (.pth/.pt, as torchvision publishes its weights) through the
// restricted reader, which runs no code; the format is told by the file's first bytes.
using ResidualEngine.Nn;
using ResidualEngine.Serialization;

namespace ResidualEngine.Models;

public static class Weights
{
    /// <summary>Where a training checkpoint keeps its optimizer state (momentum buffers).</summary>
    public const string OptimizerPrefix = "optimizer.";
    /// <summary>Where a training checkpoint keeps the moving average of the weights (--model-ema).</summary>
    public const string EmaPrefix = "model_ema.";

    /// <summary>True for a model's own tensors in a training checkpoint (not optimizer state, not the moving average).</summary>
    public static bool IsModelKey(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        return !key.StartsWith(OptimizerPrefix, StringComparison.Ordinal) && !key.StartsWith(EmaPrefix, StringComparison.Ordinal);
    }

    /// <summary>Writes every parameter and buffer (state-dict order and names) to a safetensors file. A ResNet's
    /// file records its model name and class count (<see cref="ModelMetadata"/>); <paramref name="metadata"/> adds to or overrides that.</summary>
    public static void SaveWeights(Module module, string path, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(module);
        ArgumentException.ThrowIfNullOrEmpty(path);
        var meta = new Dictionary<string, string>(StringComparer.Ordinal) { ["format"] = "pt" };
        if (module is ResNet r)
        {
            meta["model"] = r.Config.Name;
            foreach (var (k, v) in new ModelMetadata { Model = r.Config.Name, NumClasses = r.Config.NumClasses }.ToDictionary()) meta[k] = v;
        }
        if (metadata is not null) foreach (var (k, v) in metadata) meta[k] = v;
        SafeTensors.Save(path, module.StateDict(), meta);
    }

    /// <summary>Writes the weights with a full description: model, classes, input size and normalisation.</summary>
    public static void SaveWeights(Module module, string path, ModelMetadata metadata)
    {
        ArgumentNullException.ThrowIfNull(metadata);
        SaveWeights(module, path, metadata.ToDictionary());
    }

    /// <summary>Reads every tensor of a weights file onto the CPU: safetensors, or a PyTorch torch.save
    /// zip (.pth/.pt). Dispose the result to free the tensors.</summary>
    public static SafeTensorsFile ReadFile(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        using var f = ResidualEngine.IO.SafeFile.OpenRead(path, "weights file");
        Span<byte> head = stackalloc byte[4];
        int n = f.ReadAtLeast(head, 4, throwOnEndOfStream: false);
        f.Position = 0;
        bool torch = TorchZipReader.LooksLikeZip(head[..n]) || (n >= 2 && head[0] == 0x80 && head[1] <= 5);
        return torch ? TorchZipReader.Read(f, Path.GetFileName(path)) : SafeTensors.Read(f);
    }

    /// <summary>Loads a safetensors or PyTorch (.pth/.pt) file into the module. Strict: every key must match both ways; all
    /// missing, unexpected and mis-shaped keys are reported together in a StateDictException.</summary>
    public static void LoadWeights(Module module, string path, bool strict = true)
    {
        ArgumentNullException.ThrowIfNull(module);
        ArgumentException.ThrowIfNullOrEmpty(path);
        using var file = ReadFile(path);
        // Our training checkpoints (they name their model) also hold the optimizer's state under
        // "optimizer." and the moving average under "model_ema.": not the weights, so a strict load
        // of a checkpoint does not trip over them.
        IReadOnlyDictionary<string, Tensor> state = file.Tensors;
        if (file.Metadata.ContainsKey(ModelMetadata.ModelKey) && !file.Tensors.Keys.All(IsModelKey))
            state = file.Tensors.Where(kv => IsModelKey(kv.Key)).ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);
        module.LoadStateDict(state, strict);
    }
}
