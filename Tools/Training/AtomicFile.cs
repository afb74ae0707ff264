// Crash-safe file replacement: write to a temporary file in the same directory, fsync it (the
// result of fsync is checked: a failure is an IOException, never a silent loss), rename it over
// the target, then fsync the directory so that the rename itself survives a power cut. A reader
// sees either the old file or the complete new one, never a torn write. A crash leaves at most a
// stray "<target>.tmp-<pid>-<id>" file, which readers ignore and a later save of the same target
// removes, but only once the process named in it is gone: another process's live temp file is
// never touched. With a backup path, the old target is renamed there just before the new one
// takes its place (so the previous version survives as a second, older file).
using System.Collections.Concurrent;
using System.Diagnostics;
using ResidualEngine.IO;

namespace ResidualEngine.Training;

public static class AtomicFile
{
    /// <summary>The marker in temporary file names; anything containing it is never read as data.</summary>
    public const string TempMarker = ".tmp-";

    // Temp files this process is writing right now (never removed as stale, whatever their PID).
    private static readonly ConcurrentDictionary<string, byte> s_live = new(StringComparer.Ordinal);

    /// <summary>
    /// Writes a file atomically through a callback that fills the stream (readable and seekable,
    /// positioned at 0). With <paramref name="backup"/>, an existing target is first renamed to it.
    /// </summary>
    public static void Write(string path, Action<FileStream> write, string? backup = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(write);
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full) ?? throw new ArgumentException($"'{path}' has no directory");
        Directory.CreateDirectory(dir);
        RemoveStaleTemps(full);
        var tmp = full + TempMarker + Environment.ProcessId + "-" + Guid.NewGuid().ToString("N")[..8];
        s_live[tmp] = 0;
        try
        {
            using (var f = new FileStream(tmp, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 16))
            {
                write(f);
                Durability.FlushToDisk(f);
            }
            if (backup is not null && File.Exists(full)) File.Move(full, Path.GetFullPath(backup), overwrite: true);
            File.Move(tmp, full, overwrite: true);
            Durability.FsyncDirectory(dir);
        }
        catch
        {
            TryDelete(tmp);
            throw;
        }
        finally
        {
            s_live.TryRemove(tmp, out _);
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
            using var src = SafeFile.OpenRead(source, "file", bufferSize: 1 << 20);
            src.CopyTo(dst, 1 << 20);
        });
    }

    /// <summary>Deletes temp files of this target left by processes that no longer run (never another live process's).</summary>
    public static void RemoveStaleTemps(string path)
    {
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full);
        if (dir is null || !Directory.Exists(dir)) return;
        foreach (var f in Directory.EnumerateFiles(dir, Path.GetFileName(full) + TempMarker + "*"))
            if (IsStale(f)) TryDelete(f);
    }

    /// <summary>True for a temp file whose writer has ended: its name's PID is not a running process (and it is not one of ours in flight).</summary>
    internal static bool IsStale(string tempPath)
    {
        if (s_live.ContainsKey(tempPath)) return false;
        var name = Path.GetFileName(tempPath);
        int at = name.LastIndexOf(TempMarker, StringComparison.Ordinal);
        if (at < 0) return false;
        var rest = name[(at + TempMarker.Length)..];
        int dash = rest.IndexOf('-', StringComparison.Ordinal);
        // A name not in our form is not provably ours: left alone.
        if (dash <= 0 || !int.TryParse(rest[..dash], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int pid)) return false;
        if (pid == Environment.ProcessId) return true; // ours, and not in flight: left by an earlier failed write
        return !IsRunning(pid);
    }

    internal static bool IsRunning(int pid)
    {
        try
        {
            using var p = Process.GetProcessById(pid);
            return !p.HasExited;
        }
        catch (ArgumentException)
        {
            return false; // no such process
        }
        catch (InvalidOperationException)
        {
            return false;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return true; // it exists but we may not look at it: assume it runs
        }
    }

    private static void TryDelete(string path)
    {
        try { File.Delete(path); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}
