// What a weights file must say about its model so that evaluation and export need no extra
// flags and never guess: the zoo name, the class count and class names (in label order), the
// input size the net was trained at, and the input normalisation (per-channel mean and std of
// pixels scaled to [0, 1]). Stored as strings in the safetensors `__metadata__` of every file we
// write ("residual.model", "residual.num_classes", "residual.classes" as a JSON array,
// "residual.image_size", "residual.mean" and "residual.std" as JSON arrays), next to the
// "format": "pt" key that safetensors' PyTorch loader expects.
using System.Globalization;
using System.Text.Json;

namespace ResidualEngine.Models;

public sealed record ModelMetadata
{
    public const string ModelKey = "residual.model", NumClassesKey = "residual.num_classes", ClassesKey = "residual.classes",
        ImageSizeKey = "residual.image_size", MeanKey = "residual.mean", StdKey = "residual.std";

    /// <summary>torchvision's ImageNet normalisation (what the trainer uses for every data set).</summary>
    public static IReadOnlyList<double> ImageNetMean { get; } = [0.485, 0.456, 0.406];
    public static IReadOnlyList<double> ImageNetStd { get; } = [0.229, 0.224, 0.225];

    public required string Model { get; init; }
    public required int NumClasses { get; init; }
    /// <summary>Class names in label order; empty when unknown.</summary>
    public IReadOnlyList<string> Classes { get; init; } = [];
    /// <summary>Side of the square input the net was trained on; 0 when unknown.</summary>
    public int ImageSize { get; init; }
    public IReadOnlyList<double> Mean { get; init; } = ImageNetMean;
    public IReadOnlyList<double> Std { get; init; } = ImageNetStd;

    /// <summary>The safetensors metadata entries (merge them into a file's other metadata).</summary>
    public Dictionary<string, string> ToDictionary()
    {
        var d = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["format"] = "pt",
            [ModelKey] = Model,
            [NumClassesKey] = NumClasses.ToString(CultureInfo.InvariantCulture),
            [MeanKey] = JsonSerializer.Serialize(Mean),
            [StdKey] = JsonSerializer.Serialize(Std),
        };
        if (Classes.Count > 0) d[ClassesKey] = JsonSerializer.Serialize(Classes);
        if (ImageSize > 0) d[ImageSizeKey] = ImageSize.ToString(CultureInfo.InvariantCulture);
        return d;
    }

    /// <summary>
    /// Reads the entries back; null when the file names no model (weights from elsewhere). A present
    /// but malformed entry is a FormatException naming it.
    /// </summary>
    public static ModelMetadata? FromDictionary(IReadOnlyDictionary<string, string> meta, string what = "the weights file")
    {
        ArgumentNullException.ThrowIfNull(meta);
        if (!meta.TryGetValue(ModelKey, out var model) || string.IsNullOrWhiteSpace(model)) return null;
        int classes = Int(meta, NumClassesKey, what) ?? throw new FormatException($"{what}: metadata names model '{model}' but has no {NumClassesKey}");
        var names = Json<string[]>(meta, ClassesKey, what) ?? [];
        if (names.Length > 0 && names.Length != classes)
            throw new FormatException($"{what}: metadata {ClassesKey} lists {names.Length} classes but {NumClassesKey} is {classes}");
        var mean = Json<double[]>(meta, MeanKey, what);
        var std = Json<double[]>(meta, StdKey, what);
        if (mean is { Length: not 3 } || std is { Length: not 3 } || (std is not null && std.Any(s => !(s > 0))))
            throw new FormatException($"{what}: metadata {MeanKey}/{StdKey} must be three numbers each (std positive)");
        return new ModelMetadata
        {
            Model = model,
            NumClasses = classes,
            Classes = names,
            ImageSize = Int(meta, ImageSizeKey, what) ?? 0,
            Mean = mean ?? ImageNetMean,
            Std = std ?? ImageNetStd,
        };
    }

    private static int? Int(IReadOnlyDictionary<string, string> meta, string key, string what)
    {
        if (!meta.TryGetValue(key, out var s)) return null;
        return int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out int v) && v > 0
            ? v : throw new FormatException($"{what}: metadata {key} = '{s}' is not a positive integer");
    }

    private static T? Json<T>(IReadOnlyDictionary<string, string> meta, string key, string what) where T : class
    {
        if (!meta.TryGetValue(key, out var s)) return null;
        try
        {
            return JsonSerializer.Deserialize<T>(s) ?? throw new FormatException($"{what}: metadata {key} is null");
        }
        catch (JsonException e)
        {
            throw new FormatException($"{what}: metadata {key} is not valid ({e.Message})");
        }
    }
}
