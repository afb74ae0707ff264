// Reading files a user points at (images, safetensors, JSON) without letting the file decide how
// long we block or how much we allocate: only regular files are opened (a FIFO would block
// forever, a link to /dev/zero never ends, a folder is not data), and never more than a cap of
// bytes is read, checked both before opening and while reading (a file may grow meanwhile).
// Errors are IOExceptions whose message names the file and says what it is.
using System.Text;

namespace ResidualEngine.IO;

public static class SafeFile
{
    /// <summary>The default cap for JSON and other small text files (configs, manifests, checkpoint notes).</summary>
    public const long MaxTextBytes = 64L << 20;

    /// <summary>
    /// Throws unless <paramref name="path"/> (links followed) is a regular file of at most
    /// <paramref name="maxBytes"/> bytes; returns its size. <paramref name="what"/> names the file in
    /// messages ("image", "checkpoint", "config file").
    /// </summary>
    public static long RequireRegular(string path, string what, long maxBytes = long.MaxValue)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var st = FileStat.Get(path, followLinks: true);
        switch (st.Kind)
        {
            case FileKind.Missing:
                throw new FileNotFoundException(HasUndecodableName(path)
                    ? $"{what} '{path}' cannot be opened: its name is not valid UTF-8 (shown with U+FFFD), which .NET cannot pass back to the system; rename it"
                    : $"{what} '{path}' does not exist", path);
            case FileKind.Regular:
                break;
            case FileKind.Directory:
                throw new IOException($"{what} '{path}' is a folder, not a file");
            default:
                throw new IOException($"{what} '{path}' is {st.Describe()}, not a regular file; only regular files are read");
        }
        if (st.Size > maxBytes)
            throw new IOException($"{what} '{path}' is {st.Size:N0} bytes, above the limit of {maxBytes:N0} bytes");
        return st.Size;
    }

    /// <summary>Opens a regular file for reading (see <see cref="RequireRegular"/>).</summary>
    public static FileStream OpenRead(string path, string what, long maxBytes = long.MaxValue, int bufferSize = 1 << 16)
    {
        RequireRegular(path, what, maxBytes);
        return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize);
    }

    /// <summary>All bytes of a regular file of at most <paramref name="maxBytes"/> bytes.</summary>
    public static byte[] ReadAllBytes(string path, string what, long maxBytes)
    {
        maxBytes = Math.Min(maxBytes, Array.MaxLength);
        long size = RequireRegular(path, what, maxBytes);
        using var f = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan);
        var buf = new byte[size];
        int total = 0;
        while (total < buf.Length)
        {
            int r = f.Read(buf, total, buf.Length - total);
            if (r <= 0) break;
            total += r;
        }
        if (total < buf.Length) return buf[..total]; // shrank while we read
        // It may also have grown: read on, still within the cap.
        var more = new MemoryStream();
        var chunk = new byte[1 << 16];
        for (int r; (r = f.Read(chunk)) > 0;)
        {
            if (total + more.Length + r > maxBytes)
                throw new IOException($"{what} '{path}' grew past the limit of {maxBytes:N0} bytes while it was read");
            more.Write(chunk, 0, r);
        }
        return more.Length == 0 ? buf : [.. buf, .. more.ToArray()];
    }

    /// <summary>The text (UTF-8) of a regular file of at most <paramref name="maxBytes"/> bytes.</summary>
    public static string ReadAllText(string path, string what, long maxBytes = MaxTextBytes)
    {
        var bytes = ReadAllBytes(path, what, maxBytes);
        return new UTF8Encoding(encoderShouldEmitUTF8Identifier: false).GetString(bytes.AsSpan(bytes.AsSpan().StartsWith("\uFEFF"u8) ? 3 : 0));
    }

    /// <summary>
    /// True when a path holds U+FFFD, what .NET puts in place of bytes of a file name that are not
    /// UTF-8: such a name does not round-trip, so the file cannot be opened by that string.
    /// </summary>
    public static bool HasUndecodableName(string path) => path.Contains('\uFFFD', StringComparison.Ordinal);
}
