// What a DataLoader reads from: a fixed-size list of samples, each produced (decoded and
// transformed) from its index and a random generator the loader seeds per sample. A sample that
// cannot be read throws SampleLoadException, which the loader treats as "skip and replace";
// any other exception is a bug and surfaces to the consumer.
using ResidualEngine.IO;

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

    /// <summary>Images whose header claims more pixels are bad files (default: PIL's limit).</summary>
    public long MaxPixels { get; init; } = EncodedImage.DefaultMaxPixels;

    /// <summary>Image files larger than this are bad files.</summary>
    public long MaxFileBytes { get; init; } = EncodedImage.DefaultMaxFileBytes;
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
        try
        {
            var bytes = SafeFile.ReadAllBytes(path, "image", MaxFileBytes);
            using var img = EncodedImage.FromBytes(bytes, path, MaxPixels);
            Transform.Apply(img, rng, destination);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // Whatever one file does to the reader or the decoder (IOException and
            // InvalidDataException for what we detect, anything else from the codec), that file
            // is bad and the run goes on without it.
            throw new SampleLoadException(path, e is IOException or InvalidDataException or UnauthorizedAccessException
                ? Reason(e, path) : $"{e.GetType().Name}: {Reason(e, path)}", e);
        }
        return label;
    }

    /// <summary>The message without the leading "path: " or "image 'path' " the readers put in.</summary>
    internal static string Reason(Exception e, string path)
    {
        var m = e.Message;
        if (m.StartsWith(path + ": ", StringComparison.Ordinal)) return m[(path.Length + 2)..];
        var quoted = $"image '{path}' ";
        return m.StartsWith(quoted, StringComparison.Ordinal) ? m[quoted.Length..] : m;
    }
}
