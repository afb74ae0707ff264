// Saving and loading a module's state dict as safetensors, with the names unchanged, so a
// torchvision ResNet written from Python with safetensors.torch.save_file(model.state_dict())
// loads into ModelZoo.Create("resnet50") as is, and the other way round.
using ResidualEngine.Nn;
using ResidualEngine.Serialization;

namespace ResidualEngine.Models;

public static class Weights
{
    /// <summary>Writes every parameter and buffer (state-dict order and names) to a safetensors file.</summary>
    public static void SaveWeights(Module module, string path, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(module);
        ArgumentException.ThrowIfNullOrEmpty(path);
        var meta = new Dictionary<string, string>(StringComparer.Ordinal) { ["format"] = "pt" };
        if (module is ResNet r) meta["model"] = r.Config.Name;
        if (metadata is not null) foreach (var (k, v) in metadata) meta[k] = v;
        SafeTensors.Save(path, module.StateDict(), meta);
    }

    /// <summary>Loads a safetensors file into the module. Strict: every key must match both ways; all
    /// missing, unexpected and mis-shaped keys are reported together in a StateDictException.</summary>
    public static void LoadWeights(Module module, string path, bool strict = true)
    {
        ArgumentNullException.ThrowIfNull(module);
        ArgumentException.ThrowIfNullOrEmpty(path);
        using var file = SafeTensors.Load(path);
        module.LoadStateDict(file.Tensors, strict);
    }
}
