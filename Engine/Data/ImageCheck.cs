// Reads and decodes every image of an ImageFolder the way training does (regular files only, the
// same size and pixel caps, full decode), and lists each file that fails with its reason. One
// bad file never stops the check: everything a file's bytes can make the decoder do is caught
// and reported against that file.
using System.Collections.Concurrent;
using ResidualEngine.IO;

namespace ResidualEngine.Data;

/// <summary>A file that could not be read or decoded, and why.</summary>
public readonly record struct BadImage(string Path, string Reason);

public static class ImageCheck
{
    /// <summary>The bad files of <paramref name="folder"/>, sorted by path.</summary>
    public static List<BadImage> Run(ImageFolder folder, long maxPixels = EncodedImage.DefaultMaxPixels, int threads = 0, CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(folder);
        var bad = new ConcurrentBag<BadImage>();
        var po = new ParallelOptions { CancellationToken = cancel, MaxDegreeOfParallelism = threads > 0 ? threads : Environment.ProcessorCount };
        Parallel.ForEach(folder.Samples, po, s =>
        {
            if (Check(s.Path, maxPixels) is { } why) bad.Add(new BadImage(s.Path, why));
        });
        var list = bad.ToList();
        list.Sort((a, b) => string.CompareOrdinal(a.Path, b.Path));
        return list;
    }

    /// <summary>Null when the file reads and decodes; otherwise the reason.</summary>
    public static string? Check(string path, long maxPixels = EncodedImage.DefaultMaxPixels)
    {
        try
        {
            var bytes = SafeFile.ReadAllBytes(path, "image", EncodedImage.DefaultMaxFileBytes);
            using var img = EncodedImage.FromBytes(bytes, path, maxPixels);
            img.Decode();
            return null;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            var reason = ImageFolderDataset.Reason(e, path);
            return e is IOException or InvalidDataException or UnauthorizedAccessException ? reason : $"{e.GetType().Name}: {reason}";
        }
    }
}
