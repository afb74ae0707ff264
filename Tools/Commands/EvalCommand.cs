// `residual eval`: loss, top-1 and top-5 of a checkpoint on a val set. The checkpoint is a
// .safetensors file (a checkpoint, or plain weights) or a run directory (its best checkpoint, else
// its last). Model name, classes and crop size come from the checkpoint's description when it
// has one, else from the metadata every weights file we write carries (a bare copied
// .safetensors still knows its input size); PyTorch .pth files are read too. --data defaults
// to the data set the run was trained on. --ten-crop averages the softmax over ten crops as in
// the paper. --ema evaluates the run's moving average of the weights (--model-ema) instead.
using System.CommandLine;
using System.Text.Json.Nodes;
using ResidualEngine.Tools.Cli;
using ResidualEngine.Training;

namespace ResidualEngine.Tools.Commands;

public static class EvalCommand
{
    public static Command Create()
    {
        var checkpoint = new Option<string>("--checkpoint") { Description = "a .safetensors checkpoint, a run directory (best, else last), or a PyTorch .pth/.pt state dict", HelpName = "PATH", Required = true };
        var data = new Option<string>("--data") { Description = "data root with val/ (or a folder of class folders); default: what the run trained on", HelpName = "DIR" };
        var model = new Option<string>("--model") { Description = "needed only when the checkpoint does not name its model", HelpName = "NAME" };
        var tenCrop = new Option<bool>("--ten-crop") { Description = "average the softmax over 4 corners + centre and their mirror images (otherwise: the one view that matches the run's --augment)" };
        var imageSize = new Option<int>("--image-size") { Description = "crop size; 0 = the checkpoint's, else the model's native size", HelpName = "N", DefaultValueFactory = _ => 0 };
        var batch = new Option<int>("--batch-size") { Description = "images per batch", HelpName = "N", DefaultValueFactory = _ => 64 };
        var workers = new Option<int>("--workers") { Description = "decoding threads", HelpName = "N", DefaultValueFactory = _ => 2 };
        var device = new Option<string>("--device") { Description = "auto | cpu | cuda | cuda:N", HelpName = "D", DefaultValueFactory = _ => "auto" };
        var maxPixels = new Option<long>("--max-image-pixels")
        {
            Description = "images whose header claims more pixels are skipped as unreadable (default: PIL's limit)", HelpName = "N",
            DefaultValueFactory = _ => Data.EncodedImage.DefaultMaxPixels,
        };
        maxPixels.Validators.Add(r => { if (r.Tokens.Count > 0 && r.GetValueOrDefault<long>() < 1) r.AddError("option --max-image-pixels must be at least 1"); });
        var ema = new Option<bool>("--ema") { Description = "evaluate the checkpoint's moving average of the weights (a run trained with --model-ema) instead of its weights" };
        var json = new Option<bool>("--json") { Description = "print the result as JSON on stdout (schema residual.eval/1, docs/cli-json.md); progress goes to stderr" };
        OptionRules.ZeroOrRange(imageSize, 8, 1024);
        OptionRules.Range(batch, 1, 65536);
        OptionRules.Range(workers, 0, 256);
        var cmd = new Command("eval", "Evaluate a checkpoint: loss, top-1 and top-5 on a validation set.")
        {
            checkpoint, data, model, tenCrop, imageSize, batch, workers, device, maxPixels, ema, json,
        };
        cmd.SetAction(parse =>
        {
            var request = new EvalRequest(parse.GetValue(checkpoint)!, parse.GetValue(data), parse.GetValue(model), parse.GetValue(tenCrop),
                parse.GetValue(batch), parse.GetValue(workers), parse.GetValue(device)!.Trim().ToLowerInvariant(), parse.GetValue(imageSize))
            {
                MaxImagePixels = parse.GetValue(maxPixels),
                Ema = parse.GetValue(ema),
            };
            bool asJson = parse.GetValue(json);
            var report = Run(request, asJson ? Console.Error : Console.Out);
            if (asJson) Console.Out.WriteLine(CliJson.Text(report.ToJson()));
            return 0;
        });
        return cmd;
    }

    public sealed record EvalRequest(string Checkpoint, string? Data, string? Model, bool TenCrop, int BatchSize = 64, int Workers = 2, string Device = "auto", int ImageSize = 0)
    {
        /// <summary>Images whose header claims more pixels are skipped as unreadable.</summary>
        public long MaxImagePixels { get; init; } = ResidualEngine.Data.EncodedImage.DefaultMaxPixels;
        /// <summary>Evaluate the checkpoint's moving average of the weights (--model-ema) instead of its weights.</summary>
        public bool Ema { get; init; }
    }

    /// <summary>What was evaluated and the result.</summary>
    public sealed record EvalReport(EvalResult Result, string Checkpoint, string Model, int? Epoch, string Data, int ImageSize, bool TenCrop, string Device)
    {
        /// <summary>The moving average of the weights was evaluated.</summary>
        public bool Ema { get; init; }

        public System.Text.Json.Nodes.JsonObject ToJson()
        {
            var j = CliJson.Document("eval");
            j["checkpoint"] = Path.GetFullPath(Checkpoint);
            j["model"] = Model;
            j["epoch"] = Epoch;
            j["data"] = Path.GetFullPath(Data);
            j["image_size"] = ImageSize;
            j["ten_crop"] = TenCrop;
            j["ema"] = Ema;
            j["device"] = Device;
            foreach (var (k, v) in CliJson.Metrics(Result)) j[k] = v?.DeepClone();
            return j;
        }
    }

    public static EvalResult Evaluate(EvalRequest q, TextWriter log) => Run(q, log).Result;

    public static EvalReport Run(EvalRequest q, TextWriter log)
    {
        ArgumentNullException.ThrowIfNull(q);
        ArgumentNullException.ThrowIfNull(log);
        // The same range as train's: a crop smaller than 8 px is no image the nets can take.
        if (q.ImageSize != 0 && (q.ImageSize < 8 || q.ImageSize > 1024))
            throw new ArgumentException($"option --image-size must be 0 (the checkpoint's size) or in [8, 1024], got {q.ImageSize}");
        using var loaded = LoadedModel.Open(q.Checkpoint, q.Model, q.ImageSize, q.Ema);
        var (path, meta, info) = (loaded.Path, loaded.Metadata, loaded.Info);
        foreach (var warning in loaded.Warnings) log.WriteLine(warning);
        var root = q.Data ?? info?.Config?["_run"]?["data_root"]?.GetValue<string>() ?? TrainedOn(path)
            ?? throw new ArgumentException("option --data is required (the checkpoint's run directory does not say which data it was trained on)");
        if (!Directory.Exists(root)) throw new ArgumentException($"option --data: directory '{root}' does not exist");
        var val = TrainingSetup.OpenVal(root);
        if (val.Classes.Count != meta.NumClasses)
            throw new ArgumentException($"the model has {meta.NumClasses} classes but '{val.Root}' has {val.Classes.Count} class folders");
        if (meta.Classes.Count > 0 && !meta.Classes.SequenceEqual(val.Classes, StringComparer.Ordinal))
            throw new ArgumentException($"the class folders of '{val.Root}' are not the ones the model was trained on");
        int size = meta.ImageSize;
        if (!loaded.SizeRecorded)
            log.WriteLine($"note: '{path}' does not record its input size; using {meta.Model}'s native {size} px (pass --image-size N to choose)");
        var norm = TrainingSetup.NormalizationOf(meta);
        var device = TrainingSetup.ResolveDevice(q.Device);
        var model = loaded.Model;
        model.To(device);
        log.WriteLine($"evaluating {(q.Ema ? "the moving average of " : "")}{meta.Model} from {path}{(info is null ? "" : $" (epoch {info.Epoch - 1})")} on {val.Count} images of {val.Root}, " +
            $"{size} px {(q.TenCrop ? "ten-crop" : "centre crop")}, on {device}");
        EvalResult r;
        if (q.TenCrop)
        {
            var loaders = Enumerable.Range(0, 10).Select(c => TrainingSetup.Loader(
                new Data.ImageFolderDataset(val, new TenCropTransform(size, c, norm)) { MaxPixels = q.MaxImagePixels }, q.BatchSize, train: false, 0, Math.Max(0, q.Workers / 2), device)).ToList();
            try { r = Evaluator.EvaluateTenCrop(model, loaders); }
            finally { foreach (var l in loaders) l.Dispose(); }
        }
        else
        {
            // The single view that matches the run's --augment: resize + centre crop, or the small-image centre view.
            Data.ITransform view = RunSetting(path, "augment") == "cifar" ? new Data.CifarTransform(size, train: false, norm) : new Data.EvalTransform(size, norm);
            using var loader = TrainingSetup.Loader(new Data.ImageFolderDataset(val, view) { MaxPixels = q.MaxImagePixels }, q.BatchSize, train: false, 0, q.Workers, device);
            r = Evaluator.Evaluate(model, loader);
        }
        Trainer.PrintEval(log, r);
        return new EvalReport(r, path, meta.Model, info is null ? null : info.Epoch - 1, val.Root, size, q.TenCrop, device.ToString()) { Ema = q.Ema };
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
            var j = JsonNode.Parse(ResidualEngine.IO.SafeFile.ReadAllText(cfg, "run config"));
            return j?["_run"]?["data_root"]?.GetValue<string>() ?? j?["data"]?.GetValue<string>();
        }
        catch (Exception e) when (e is System.Text.Json.JsonException or IOException or InvalidOperationException)
        {
            return null;
        }
    }
}
