// What a DataLoader reads from: a fixed-size list of samples, each produced (decoded and
// transformed) from its index and a random generator the loader seeds per sample. A sample that
// cannot be read throws SampleLoadException, which the loader treats as "skip and replace";
// any other exception is a bug and surfaces to the consumer.
namespace ResidualEngine.Data;

/// <summary>One transformed sample: CHW floats (Channels x Height x Width) and its class.</summary>
public readonly record struct Sample(float[] Image, int Label, int Height, int Width)
{
    public int Channels => Height * Width == 0 ? 0 : Image.Length / (Height * Width);
}

public interface IDataset
{
    int Count { get; }
    int NumClasses { get; }
    IReadOnlyList<string> Classes { get; }

    /// <summary>Decodes and transforms sample <paramref name="index"/>; all randomness comes from <paramref name="rng"/>.</summary>
    Sample Get(int index, Random rng);
}

/// <summary>
/// A dataset whose samples have a fixed size known in advance and can be written straight into
/// a batch buffer (saves a copy and an allocation per sample). The loader uses it when present.
/// </summary>
internal interface IDirectDataset : IDataset
{
    int SampleSize { get; }

    /// <summary>Writes 3 x SampleSize x SampleSize floats and returns the label.</summary>
    int GetInto(int index, Random rng, Span<float> destination);
}

/// <summary>A sample that cannot be read (missing, truncated, not an image): skipped by the loader.</summary>
public sealed class SampleLoadException : IOException
{
    public SampleLoadException(string path, string reason, Exception? inner = null)
        : base($"{path}: {reason}", inner)
    {
        Path = path;
        Reason = reason;
    }

    public SampleLoadException() : this("(unknown)", "unreadable") { }
    public SampleLoadException(string message) : this("(unknown)", message) { }
    public SampleLoadException(string message, Exception inner) : this("(unknown)", message, inner) { }

    public string Path { get; }
    public string Reason { get; }
}

/// <summary>The images of an <see cref="ImageFolder"/> through a transform.</summary>
public sealed class ImageFolderDataset : IDirectDataset
{
    public ImageFolderDataset(ImageFolder folder, ITransform transform)
    {
        ArgumentNullException.ThrowIfNull(folder);
        ArgumentNullException.ThrowIfNull(transform);
        Folder = folder;
        Transform = transform;
    }

    public ImageFolder Folder { get; }
    public ITransform Transform { get; }
    public int Count => Folder.Count;
    public int NumClasses => Folder.Classes.Count;
    public IReadOnlyList<string> Classes => Folder.Classes;
    public int SampleSize => Transform.OutputSize;

    public Sample Get(int index, Random rng)
    {
        int s = Transform.OutputSize;
        var data = new float[3 * s * s];
        int label = GetInto(index, rng, data);
        return new Sample(data, label, s, s);
    }

    public int GetInto(int index, Random rng, Span<float> destination)
    {
        if ((uint)index >= (uint)Count)
            throw new ArgumentOutOfRangeException(nameof(index), index, $"sample index out of range 0..{Count - 1}");
        var (path, label) = Folder.Samples[index];
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new SampleLoadException(path, e.Message, e);
        }
        try
        {
            using var img = EncodedImage.FromBytes(bytes, path);
            Transform.Apply(img, rng, destination);
        }
        catch (InvalidDataException e)
        {
            // The decoder's messages start with the name; keep only the reason.
            var reason = e.Message.StartsWith(path + ": ", StringComparison.Ordinal) ? e.Message[(path.Length + 2)..] : e.Message;
            throw new SampleLoadException(path, reason, e);
        }
        return label;
    }
}
