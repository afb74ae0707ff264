// Crash-safe file replacement: write to a temporary file in the same directory, flush it to the
// disk (fsync through FileStream.Flush(true)), then rename it over the target. A reader sees
// either the old file or the complete new one, never a torn write; a crash leaves at most a
// stray "*.tmp-*" file, which readers ignore and the next save of the same target removes.
namespace ResidualEngine.Training;

public static class AtomicFile
{
    /// <summary>The marker in temporary file names; anything containing it is never read as data.</summary>
    public const string TempMarker = ".tmp-";

    /// <summary>Writes a file atomically through a callback that fills the stream (readable and seekable, positioned at 0).</summary>
    public static void Write(string path, Action<Stream> write)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(write);
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full) ?? throw new ArgumentException($"'{path}' has no directory");
        Directory.CreateDirectory(dir);
        RemoveStaleTemps(full);
        var tmp = full + TempMarker + Environment.ProcessId + "-" + Guid.NewGuid().ToString("N")[..8];
        try
        {
            using (var f = new FileStream(tmp, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 16))
            {
                write(f);
                f.Flush(flushToDisk: true);
            }
            File.Move(tmp, full, overwrite: true);
        }
        catch
        {
            TryDelete(tmp);
            throw;
        }
    }

    public static void WriteAllBytes(string path, ReadOnlySpan<byte> bytes)
    {
        var copy = bytes.ToArray();
        Write(path, s => s.Write(copy));
    }

    public static void WriteAllText(string path, string text) =>
        WriteAllBytes(path, System.Text.Encoding.UTF8.GetBytes(text));

    /// <summary>Copies a file over another atomically (used to refresh "best" from "last").</summary>
    public static void Copy(string source, string destination)
    {
        Write(destination, dst =>
        {
            using var src = File.OpenRead(source);
            src.CopyTo(dst, 1 << 20);
        });
    }

    /// <summary>Deletes temp files left by earlier, interrupted writes of this target.</summary>
    public static void RemoveStaleTemps(string path)
    {
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full);
        if (dir is null || !Directory.Exists(dir)) return;
        foreach (var f in Directory.EnumerateFiles(dir, Path.GetFileName(full) + TempMarker + "*"))
            TryDelete(f);
    }

    private static void TryDelete(string path)
    {
        try { File.Delete(path); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}
