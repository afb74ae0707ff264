// An ImageNet-style folder of images: root/<class>/.../<file>. Classes are the immediate
// sub-folders sorted ordinally (label = position in that list), files are found recursively and
// kept when their extension (case-insensitive) is one SkiaSharp can decode. The sample order
// follows torchvision's ImageFolder: directories visited in ordinal order of their full path,
// files ordinal within a directory, so labels and sample indices agree with PyTorch.
// Differences from torchvision, by necessity: .tif/.tiff/.ppm/.pgm are not listed (SkiaSharp has
// no decoder for them), .gif is (first frame); and symbolic links cannot make a folder or a file
// count twice or take another class's label (FolderWalk), where torchvision would loop.
namespace ResidualEngine.Data;

/// <summary>One file of an <see cref="ImageFolder"/> and its class index.</summary>
public readonly record struct ImageFolderEntry(string Path, int Label);

public sealed class ImageFolder
{
    /// <summary>File extensions (lower case, with the dot) that are listed as images.</summary>
    public static IReadOnlyList<string> Extensions { get; } = new[] { ".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif" };

    private ImageFolder(string root, IReadOnlyList<string> classes, IReadOnlyList<ImageFolderEntry> samples, IReadOnlyList<string> notes)
    {
        Root = root;
        Classes = classes;
        Samples = samples;
        Notes = notes;
    }

    /// <summary>What the listing left out and why (links that loop or lead into another class, undecodable names).</summary>
    public IReadOnlyList<string> Notes { get; }

    /// <summary>Full path of the folder that was opened.</summary>
    public string Root { get; }

    /// <summary>Class names; a sample's label is the index of its class here.</summary>
    public IReadOnlyList<string> Classes { get; }

    /// <summary>Every image, in torchvision's order.</summary>
    public IReadOnlyList<ImageFolderEntry> Samples { get; }

    public int Count => Samples.Count;

    /// <summary>Number of samples per class index.</summary>
    public int[] CountsPerClass()
    {
        var c = new int[Classes.Count];
        foreach (var s in Samples) c[s.Label]++;
        return c;
    }

    /// <summary>True when the file name has one of the <see cref="Extensions"/> (any letter case).</summary>
    public static bool IsImageFile(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        var ext = System.IO.Path.GetExtension(path);
        foreach (var e in Extensions)
            if (string.Equals(ext, e, StringComparison.OrdinalIgnoreCase)) return true;
        return false;
    }

    /// <summary>
    /// Lists root/&lt;class&gt;/**. With <paramref name="classes"/> given (e.g. the train split's list),
    /// labels come from that list, and a class folder not in it is an error; classes of the list
    /// without a folder are allowed (a validation split may lack some).
    /// </summary>
    public static ImageFolder Open(string root, IReadOnlyList<string>? classes = null, CancellationToken cancel = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(root);
        var full = System.IO.Path.GetFullPath(root);
        if (!Directory.Exists(full))
            throw new DirectoryNotFoundException($"image folder '{full}' does not exist");

        var folders = Directory.GetDirectories(full).Select(d => System.IO.Path.GetFileName(d)).ToList();
        folders.Sort(StringComparer.Ordinal);
        var undecodable = folders.FirstOrDefault(IO.SafeFile.HasUndecodableName);
        if (undecodable is not null)
            throw new InvalidDataException($"class folder '{System.IO.Path.Combine(full, undecodable)}' has a name that is not valid UTF-8 (shown with U+FFFD), which .NET cannot open; rename it");
        if (folders.Count == 0)
            throw new InvalidDataException($"image folder '{full}' has no class folders (expected {full}/<class>/<image files>)");

        IReadOnlyList<string> classList;
        Dictionary<string, int> labelOf;
        if (classes is null)
        {
            classList = folders;
            labelOf = folders.Select((c, i) => (c, i)).ToDictionary(t => t.c, t => t.i, StringComparer.Ordinal);
        }
        else
        {
            classList = classes.ToArray();
            labelOf = new Dictionary<string, int>(StringComparer.Ordinal);
            for (int i = 0; i < classList.Count; i++)
                if (!labelOf.TryAdd(classList[i], i))
                    throw new ArgumentException($"class list has '{classList[i]}' twice", nameof(classes));
            var unknown = folders.Where(f => !labelOf.ContainsKey(f)).ToList();
            if (unknown.Count > 0)
                throw new InvalidDataException(
                    $"image folder '{full}' has class folder{(unknown.Count > 1 ? "s" : "")} not in the class list " +
                    $"({classList.Count} classes): {string.Join(", ", unknown.Take(10))}{(unknown.Count > 10 ? ", ..." : "")}");
        }

        var (files, notes) = FolderWalk.Run(full, folders.Select(f => System.IO.Path.Combine(full, f)).ToList(), cancel);
        var samples = new List<ImageFolderEntry>();
        for (int i = 0; i < folders.Count; i++)
        {
            if (files[i].Count == 0)
                throw new InvalidDataException(
                    $"class folder '{System.IO.Path.Combine(full, folders[i])}' holds no images (looked recursively for {string.Join(" ", Extensions)}, any letter case)");
            int label = labelOf[folders[i]];
            foreach (var file in files[i]) samples.Add(new ImageFolderEntry(file, label));
        }
        return new ImageFolder(full, classList, samples, notes);
    }

    /// <summary>
    /// Opens root/train and root/val; the validation split uses the training split's class list,
    /// so the same class has the same label in both.
    /// </summary>
    public static (ImageFolder Train, ImageFolder Val) OpenSplits(string root, CancellationToken cancel = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(root);
        var full = System.IO.Path.GetFullPath(root);
        var trainDir = System.IO.Path.Combine(full, "train");
        var valDir = System.IO.Path.Combine(full, "val");
        if (!Directory.Exists(trainDir))
            throw new DirectoryNotFoundException($"dataset '{full}' has no train folder (expected {trainDir}/<class>/<images>)");
        if (!Directory.Exists(valDir))
            throw new DirectoryNotFoundException($"dataset '{full}' has no val folder (expected {valDir}/<class>/<images>)");
        var train = Open(trainDir, null, cancel);
        ImageFolder val;
        try
        {
            val = Open(valDir, train.Classes, cancel);
        }
        catch (InvalidDataException e) when (e.Message.Contains("not in the class list", StringComparison.Ordinal))
        {
            throw new InvalidDataException($"validation classes must also exist in the training split '{trainDir}': {e.Message}", e);
        }
        return (train, val);
    }
}
