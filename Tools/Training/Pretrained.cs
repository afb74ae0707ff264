// Fine-tuning: a fresh model takes its weights from a file (safetensors, or a PyTorch .pth/.pt
// state dict such as torchvision publishes), strictly by name. Our own checkpoints' optimizer
// state and DataParallel's "module." prefix are dropped. When the file's classifier has another
// class count than this data set, the head (fc) keeps the model's fresh initialisation and the
// log says so; every other tensor must be present and of the same shape, or the error lists
// what does not fit. Freezing keeps the backbone as loaded: its parameters get no gradients (so
// the optimizer leaves them alone) and its batch-norm layers stay in eval mode (their running
// statistics are not updated); only the head trains.
using ResidualEngine.Models;
using ResidualEngine.Nn;
using ResidualEngine.Serialization;

namespace ResidualEngine.Training;

public static class Pretrained
{
    private const string Head = "fc.";

    /// <summary>What <see cref="Load"/> did: tensors copied, and whether the head was replaced (with the file's class count).</summary>
    public sealed record Result(int Loaded, bool HeadReplaced, int FileClasses, string Description);

    /// <summary>Loads <paramref name="path"/> into <paramref name="model"/> (a fresh model of the run's class count).</summary>
    public static Result Load(ResNet model, string path)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path)) throw new ArgumentException($"option --weights: file '{path}' does not exist");
        SafeTensorsFile file;
        try
        {
            file = Weights.ReadFile(path);
        }
        catch (FormatException e)
        {
            throw new ArgumentException($"option --weights: {e.Message}", e);
        }
        using (file)
        {
            var state = new Dictionary<string, Tensor>(StringComparer.Ordinal);
            bool prefixed = file.Tensors.Keys.Where(CheckpointStore.IsModelKey).All(k => k.StartsWith("module.", StringComparison.Ordinal));
            foreach (var (k, t) in file.Tensors)
            {
                if (!CheckpointStore.IsModelKey(k)) continue;
                state[prefixed ? k["module.".Length..] : k] = t;
            }
            var own = model.StateDict();
            var ownHead = own[Head + "weight"];
            bool replace = false;
            int fileClasses = ownHead.Shape[0];
            if (state.TryGetValue(Head + "weight", out var w) && w.Rank == 2 && w.Shape != ownHead.Shape && w.Shape[1] == ownHead.Shape[1])
            {
                replace = true;
                fileClasses = w.Shape[0];
                foreach (var k in own.Keys.Where(k => k.StartsWith(Head, StringComparison.Ordinal))) state[k] = own[k];
            }
            try
            {
                model.LoadStateDict(state);
            }
            catch (StateDictException e)
            {
                throw new ArgumentException($"option --weights: '{path}' does not fit {model.Config.Name}: {e.Message}", e);
            }
            int loaded = state.Count - (replace ? own.Keys.Count(k => k.StartsWith(Head, StringComparison.Ordinal)) : 0);
            var what = $"initialised {model.Config.Name} from {path} ({loaded} tensors)";
            if (replace)
                what += $"; its head has {fileClasses} classes and this data set {ownHead.Shape[0]}, so the head (fc) was replaced and re-initialised";
            return new Result(loaded, replace, fileClasses, what);
        }
    }

    /// <summary>
    /// Freezes everything but the head: no gradients for the backbone's parameters, and a hook for
    /// the training step that keeps the backbone's batch-norm layers in eval mode. Returns the hook.
    /// </summary>
    public static ITrainingHook FreezeBackbone(ResNet model)
    {
        ArgumentNullException.ThrowIfNull(model);
        foreach (var (name, p) in model.NamedParameters())
            if (!name.StartsWith(Head, StringComparison.Ordinal))
            {
                p.Grad?.Dispose();
                p.Grad = null;
                p.RequiresGrad = false;
            }
        return new FrozenNorms(model.NamedModules().Where(m => m.Module is BatchNorm2d && !m.Name.StartsWith(Head, StringComparison.Ordinal))
            .Select(m => m.Module).ToList());
    }

    private sealed class FrozenNorms(List<Module> norms) : ITrainingHook
    {
        public void BeforeForward(StepContext step)
        {
            foreach (var m in norms) m.Train(false);
        }
    }
}
