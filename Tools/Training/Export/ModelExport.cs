// `residual export` as a library call: a checkpoint (run directory, .safetensors or .pth) becomes
// an ONNX model for inference engines, or bare safetensors weights with torchvision's names that
// torchvision.models.X loads strictly. Both carry the model's description (classes, input size,
// normalisation). The output is written atomically; an existing file is replaced only when asked,
// and never the checkpoint being read.
using ResidualEngine.Serialization;

namespace ResidualEngine.Training.Export;

public enum ExportFormat
{
    Onnx,
    Safetensors,
}

public sealed record ExportRequest(string Checkpoint, ExportFormat Format, string Out)
{
    /// <summary>The zoo name, for weights that do not record it.</summary>
    public string? Model { get; init; }
    /// <summary>Input size of the ONNX graph; 0 = the recorded one (else the model's native size).</summary>
    public int ImageSize { get; init; }
    public int Opset { get; init; } = 13;
    /// <summary>Replace an existing output file.</summary>
    public bool Force { get; init; }
    /// <summary>Export the checkpoint's moving average of the weights (--model-ema) instead of its weights.</summary>
    public bool Ema { get; init; }
}

public static class ModelExport
{
    /// <summary>Writes the export; returns a line that says what was written.</summary>
    public static string Run(ExportRequest r)
    {
        ArgumentNullException.ThrowIfNull(r);
        ArgumentException.ThrowIfNullOrEmpty(r.Out);
        var outPath = Path.GetFullPath(r.Out);
        if (Directory.Exists(outPath)) throw new ArgumentException($"option --out: '{r.Out}' is a directory; give a file name");
        using var loaded = LoadedModel.Open(r.Checkpoint, r.Model, r.ImageSize, r.Ema);
        if (string.Equals(outPath, Path.GetFullPath(loaded.Path), StringComparison.Ordinal))
            throw new ArgumentException($"option --out: '{r.Out}' is the checkpoint being exported");
        if (File.Exists(outPath) && !r.Force) throw new ArgumentException($"option --out: '{r.Out}' exists; pass --force to replace it");
        var meta = loaded.Metadata;
        switch (r.Format)
        {
            case ExportFormat.Onnx:
                AtomicFile.Write(outPath, s => OnnxExporter.Export(loaded.Model, s, new OnnxExportOptions { Opset = r.Opset, ImageSize = meta.ImageSize, Metadata = meta }));
                break;
            case ExportFormat.Safetensors:
                AtomicFile.Write(outPath, s => SafeTensors.Write(s, loaded.Model.StateDict(), meta.ToDictionary()));
                break;
            default:
                throw new ArgumentException($"unknown export format {r.Format}");
        }
        var size = new FileInfo(outPath).Length;
        return $"wrote {r.Out} ({r.Format.ToString().ToLowerInvariant()}, {size:N0} bytes): {meta.Model}, {meta.NumClasses} classes, " +
            $"input (batch, 3, {meta.ImageSize}, {meta.ImageSize}){(loaded.SizeRecorded ? "" : " (the file did not record its input size; the model's native size was used, pass --image-size to choose)")}";
    }
}
