// `residual eval`: loss, top-1 and top-5 of a checkpoint on a val set. The checkpoint is a
// .safetensors file (with or without its .json) or a run directory (its best checkpoint, else
// its last). Model name, classes and crop size come from the checkpoint's description when it
// has one; --data defaults to the data set the run was trained on. --ten-crop averages the
// softmax over ten crops as in the paper.
using System.Globalization;
using System.Text.Json.Nodes;
using ResidualEngine.Tools.Cli;
using ResidualEngine.Training;

namespace ResidualEngine.Tools.Commands;

public static class EvalCommand
{
    public static int Run(string[] args)
    {
        var a = new Args(args, "ten-crop");
        if (a.Help)
        {
            Console.WriteLine(Help);
            return 0;
        }
        var checkpoint = a.String("checkpoint") ?? throw new ArgumentException("option --checkpoint is required (a .safetensors file or a run directory)");
        var request = new EvalRequest(checkpoint, a.String("data"), a.String("model"), a.Flag("ten-crop"),
            a.Int("batch-size", 64, 1), a.Int("workers", 2, 0, 256), a.String("device", "auto").Trim().ToLowerInvariant(), a.Int("image-size", 0, 0, 1024));
        if (a.Positional.Count > 0) throw new ArgumentException($"unexpected argument: {string.Join(" ", a.Positional)}");
        a.RejectUnknown();
        Evaluate(request, Console.Out);
        return 0;
    }

    public sealed record EvalRequest(string Checkpoint, string? Data, string? Model, bool TenCrop, int BatchSize = 64, int Workers = 2, string Device = "auto", int ImageSize = 0);

    public static EvalResult Evaluate(EvalRequest q, TextWriter log)
    {
        ArgumentNullException.ThrowIfNull(q);
        ArgumentNullException.ThrowIfNull(log);
        var path = CheckpointStore.Resolve(q.Checkpoint, preferBest: true);
        var (info, file) = CheckpointStore.Load(path);
        using (file)
        {
            var modelName = q.Model ?? info?.Model ?? (file.Metadata.TryGetValue("residual.model", out var m) ? m : null)
                ?? throw new ArgumentException($"'{path}' does not say which model it holds; pass --model NAME");
            modelName = TrainingSetup.CanonicalModel(modelName);
            if (info is not null && q.Model is not null && !string.Equals(TrainingSetup.CanonicalModel(q.Model), info.Model, StringComparison.Ordinal))
                throw new ArgumentException($"option --model {q.Model}: the checkpoint holds {info.Model}");
            int numClasses = info?.NumClasses ?? (file.Tensors.TryGetValue("fc.weight", out var fc) ? fc.Shape[0]
                : throw new ArgumentException($"'{path}' has no fc.weight, so the number of classes is unknown"));

            var root = q.Data ?? TrainedOn(path)
                ?? throw new ArgumentException("option --data is required (the checkpoint's run directory does not say which data it was trained on)");
            if (!Directory.Exists(root)) throw new ArgumentException($"option --data: directory '{root}' does not exist");
            var val = TrainingSetup.OpenVal(root);
            if (val.Classes.Count != numClasses)
                throw new ArgumentException($"the model has {numClasses} classes but '{val.Root}' has {val.Classes.Count} class folders");
            if (info is { Classes.Count: > 0 } && !info.Classes.SequenceEqual(val.Classes, StringComparer.Ordinal))
                throw new ArgumentException($"the class folders of '{val.Root}' are not the ones the model was trained on");
            int size = q.ImageSize > 0 ? q.ImageSize : info?.ImageSize is > 0 ? info.ImageSize : TrainingSetup.ResolveImageSize(0, modelName, null);
            var device = TrainingSetup.ResolveDevice(q.Device);

            using var model = TrainingSetup.CreateModel(modelName, numClasses, 0);
            model.LoadStateDict(file.Tensors.Where(kv => !kv.Key.StartsWith(CheckpointStore.OptimizerPrefix, StringComparison.Ordinal))
                .ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal));
            model.To(device);
            log.WriteLine($"evaluating {modelName} from {path}{(info is null ? "" : $" (epoch {info.Epoch - 1})")} on {val.Count} images of {val.Root}, " +
                $"{size} px {(q.TenCrop ? "ten-crop" : "centre crop")}, on {device}");
            EvalResult r;
            if (q.TenCrop)
            {
                var loaders = Enumerable.Range(0, 10).Select(c => TrainingSetup.Loader(
                    new Data.ImageFolderDataset(val, new TenCropTransform(size, c)), q.BatchSize, train: false, 0, Math.Max(0, q.Workers / 2), device)).ToList();
                try { r = Evaluator.EvaluateTenCrop(model, loaders); }
                finally { foreach (var l in loaders) l.Dispose(); }
            }
            else
            {
                using var loader = TrainingSetup.Loader(TrainingSetup.EvalDataset(val, size, RunSetting(path, "augment") ?? "imagenet"), q.BatchSize, train: false, 0, q.Workers, device);
                r = Evaluator.Evaluate(model, loader);
            }
            Trainer.PrintEval(log, r);
            return r;
        }
    }

    /// <summary>A top-level option recorded in the run's config.json next to a checkpoint (e.g. "augment"), if any.</summary>
    private static string? RunSetting(string checkpointPath, string key)
    {
        var cfg = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(checkpointPath))!, "config.json");
        if (!File.Exists(cfg)) return null;
        try
        {
            return JsonNode.Parse(File.ReadAllText(cfg))?[key] is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;
        }
        catch (System.Text.Json.JsonException)
        {
            return null;
        }
    }

    /// <summary>The data root recorded in the run's config.json next to a checkpoint, if any.</summary>
    private static string? TrainedOn(string checkpointPath)
    {
        var cfg = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(checkpointPath))!, "config.json");
        if (!File.Exists(cfg)) return null;
        try
        {
            var j = JsonNode.Parse(File.ReadAllText(cfg));
            return j?["_run"]?["data_root"]?.GetValue<string>() ?? j?["data"]?.GetValue<string>();
        }
        catch (System.Text.Json.JsonException)
        {
            return null;
        }
    }

    private static readonly string Help = string.Create(CultureInfo.InvariantCulture, $"""
        usage: residual eval --checkpoint PATH [--data DIR] [--model NAME] [--ten-crop] [options]

          --checkpoint PATH   a .safetensors checkpoint, or a run directory (best, else last)
          --data DIR          data root with val/ (or a folder of class folders); default: what the run trained on
          --model NAME        needed only when the checkpoint does not name its model
          --ten-crop          average the softmax over 4 corners + centre and their mirror images
                              (otherwise the single view that matches the run's --augment: resize + centre crop,
                              or the small-image centre view)
          --image-size N      crop size (default: the checkpoint's, else the model's native size)
          --batch-size N      (default 64)   --workers N (default 2)   --device auto|cpu|cuda
        """);
}
