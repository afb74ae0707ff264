// A model rebuilt from what the user points at — a run directory (its best checkpoint, else
// last), a checkpoint .safetensors (training state in its header; older ones with a .json beside), bare weights we wrote, or a
// PyTorch .pth/.pt — with its description: model name, classes, input size and normalisation,
// taken from the checkpoint's .json, else from the file's metadata, else from the options the
// caller passes (a PyTorch file names no model). Shared by `residual eval` and `residual export`;
// either can take the run's moving average of the weights (--model-ema) instead of the weights.
// Weights holding NaN or infinities load, with a warning naming each such tensor.
using ResidualEngine.Models;

namespace ResidualEngine.Training;

public sealed class LoadedModel : IDisposable
{
    private LoadedModel(string path, ResNet model, ModelMetadata metadata, CheckpointInfo? info, bool sizeRecorded, IReadOnlyList<string> warnings)
    {
        Path = path;
        Model = model;
        Metadata = metadata;
        Info = info;
        SizeRecorded = sizeRecorded;
        Warnings = warnings;
    }

    /// <summary>What is wrong with the weights but does not stop their use (tensors holding NaN or infinities), one line each.</summary>
    public IReadOnlyList<string> Warnings { get; }

    /// <summary>The weights file that was read.</summary>
    public string Path { get; }
    /// <summary>The network on the CPU, in eval mode.</summary>
    public ResNet Model { get; }
    /// <summary>Model, classes, input size (as recorded, or the option, or the native size) and normalisation.</summary>
    public ModelMetadata Metadata { get; }
    /// <summary>The checkpoint's training state, when it is a checkpoint.</summary>
    public CheckpointInfo? Info { get; }
    /// <summary>False when the file did not record its input size and no size was given (the native size is assumed).</summary>
    public bool SizeRecorded { get; }

    /// <param name="target">A run directory or a weights file.</param>
    /// <param name="model">The zoo name, for files that do not record it; must agree with a recorded one.</param>
    /// <param name="imageSize">Overrides the recorded input size when above 0.</param>
    /// <param name="ema">Load the checkpoint's moving average of the weights (--model-ema) instead of the weights.</param>
    public static LoadedModel Open(string target, string? model = null, int imageSize = 0, bool ema = false)
    {
        ArgumentException.ThrowIfNullOrEmpty(target);
        var path = CheckpointStore.Resolve(target, preferBest: true);
        bool torch = path.EndsWith(".pth", StringComparison.OrdinalIgnoreCase) || path.EndsWith(".pt", StringComparison.OrdinalIgnoreCase);
        var (info, file) = torch ? (null, Weights.ReadFile(path)) : CheckpointStore.Load(path);
        using (file)
        {
            var meta = ModelMetadata.FromDictionary(file.Metadata, $"'{path}'");
            var recorded = info?.Model ?? meta?.Model;
            var name = model ?? recorded ?? throw new ArgumentException($"'{path}' does not say which model it holds; pass --model NAME");
            name = TrainingSetup.CanonicalModel(name);
            if (recorded is not null && model is not null && !string.Equals(name, TrainingSetup.CanonicalModel(recorded), StringComparison.Ordinal))
                throw new ArgumentException($"option --model {model}: the checkpoint holds {recorded}");
            var state = ema ? CheckpointStore.Section(file.Tensors, CheckpointStore.EmaPrefix)
                : file.Tensors.Where(kv => CheckpointStore.IsModelKey(kv.Key)).ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);
            if (ema && !state.Remove(ModelEma.CounterName))
                throw new ArgumentException($"option --ema: '{path}' holds no moving average of the weights (train with --model-ema to keep one)");
            int classes = info?.NumClasses ?? meta?.NumClasses ?? (state.TryGetValue("fc.weight", out var fc) && fc.Rank == 2 ? fc.Shape[0]
                : throw new ArgumentException($"'{path}' has no fc.weight, so the number of classes is unknown"));
            int recordedSize = info?.ImageSize is > 0 ? info.ImageSize : meta?.ImageSize ?? 0;
            int size = imageSize > 0 ? imageSize : recordedSize > 0 ? recordedSize : ModelZoo.Config(name).NativeImageSize;
            var description = new ModelMetadata
            {
                Model = name,
                NumClasses = classes,
                Classes = info is { Classes.Count: > 0 } ? info.Classes : meta?.Classes ?? [],
                ImageSize = size,
                Mean = meta?.Mean ?? ModelMetadata.ImageNetMean,
                Std = meta?.Std ?? ModelMetadata.ImageNetStd,
            };
            var warnings = NonFiniteWeights(state);
            var net = TrainingSetup.CreateModel(name, classes, 0);
            try
            {
                net.LoadStateDict(state);
            }
            catch (Nn.StateDictException e)
            {
                net.Dispose();
                throw new ArgumentException($"'{path}' does not fit {name} with {classes} classes: {e.Message}", e);
            }
            net.Eval();
            return new LoadedModel(path, net, description, info, imageSize > 0 || recordedSize > 0, warnings);
        }
    }

    /// <summary>A warning per floating-point tensor holding NaN or infinite values (what such weights compute means nothing).</summary>
    public static List<string> NonFiniteWeights(IEnumerable<KeyValuePair<string, Tensor>> tensors)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        var warnings = new List<string>();
        foreach (var (name, t) in tensors)
        {
            if (!t.DType.IsFloat()) continue;
            int nan = 0, inf = 0;
            foreach (var v in t.ToDoubles())
            {
                if (double.IsNaN(v)) nan++;
                else if (double.IsInfinity(v)) inf++;
            }
            if (nan + inf > 0)
                warnings.Add($"warning: weights tensor '{name}' holds {(nan > 0 ? $"{nan} NaN" : "")}{(nan > 0 && inf > 0 ? " and " : "")}{(inf > 0 ? $"{inf} infinite" : "")} " +
                    $"value{(nan + inf == 1 ? "" : "s")} of {t.Shape.Numel:N0}; what the model computes is not meaningful (a diverged run?)");
        }
        return warnings;
    }

    public void Dispose() => Model.Dispose();
}
