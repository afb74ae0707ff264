// One writer per run directory. The writer holds an exclusive lock on RUNDIR/run.lock for its
// whole life: on Unix an flock(2) taken by the system (released by the kernel when the process
// ends, however it ends, so a crash leaves no stale lock to clean up by hand), on Windows the
// file opened without write sharing. The file itself says who holds it (PID, host, start time),
// so a second writer is refused with a message naming the holder. The lock file stays in the
// directory (deleting it would let two processes lock two different files of the same name).
using System.Globalization;
using System.Runtime.InteropServices;

namespace ResidualEngine.Training;

/// <summary>The run directory is locked by another process.</summary>
public sealed class RunLockedException(string message) : IOException(message);

public sealed partial class RunLock : IDisposable
{
    public const string FileName = "run.lock";

    private const int LOCK_EX = 2, LOCK_NB = 4, EWOULDBLOCK = 11, EAGAIN_BSD = 35;

    private FileStream? _file;

    private RunLock(string directory, FileStream file)
    {
        Directory = directory;
        _file = file;
    }

    /// <summary>The locked run directory (full path).</summary>
    public string Directory { get; }

    public bool IsHeld => _file is not null;

    /// <summary>
    /// Locks <paramref name="runDir"/> (created if missing) for this process, or throws
    /// <see cref="RunLockedException"/> naming the process that holds it.
    /// </summary>
    public static RunLock Acquire(string runDir)
    {
        ArgumentException.ThrowIfNullOrEmpty(runDir);
        var dir = Path.GetFullPath(runDir);
        System.IO.Directory.CreateDirectory(dir);
        var path = Path.Combine(dir, FileName);
        FileStream f;
        try
        {
            // Unix: FileShare.None makes .NET take flock(LOCK_EX | LOCK_NB) on the file.
            f = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite,
                OperatingSystem.IsWindows() ? FileShare.Read : FileShare.None, 1);
        }
        catch (IOException e) when (IsSharingViolation(e))
        {
            throw Locked(dir, path);
        }
        try
        {
            // Also when .NET's own locking is switched off (DOTNET_SYSTEM_IO_DISABLEFILELOCKING).
            if (!OperatingSystem.IsWindows() && flock((int)f.SafeFileHandle.DangerousGetHandle(), LOCK_EX | LOCK_NB) != 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                if (errno is EWOULDBLOCK or EAGAIN_BSD) throw Locked(dir, path);
            }
            var owner = string.Create(CultureInfo.InvariantCulture,
                $"pid {Environment.ProcessId} on {Environment.MachineName} since {DateTimeOffset.Now:yyyy-MM-dd HH:mm:ss zzz}\n");
            f.SetLength(0);
            f.Write(System.Text.Encoding.UTF8.GetBytes(owner));
            f.Flush();
            return new RunLock(dir, f);
        }
        catch
        {
            f.Dispose();
            throw;
        }
    }

    /// <summary>The holder as its lock file describes it ("pid 123 on host since ..."), or null.</summary>
    public static string? Holder(string runDir)
    {
        var path = Path.Combine(Path.GetFullPath(runDir), FileName);
        try
        {
            var text = OperatingSystem.IsWindows() ? ReadShared(path) : ReadIgnoringLocks(path);
            text = text?.Trim();
            return string.IsNullOrEmpty(text) ? null : text;
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
    }

    // .NET reports a held flock as an IOException whose HResult is the errno (EWOULDBLOCK), and a
    // Windows sharing or lock violation by its HRESULT.
    private static bool IsSharingViolation(IOException e) =>
        e.HResult is EWOULDBLOCK or EAGAIN_BSD or unchecked((int)0x80070020) or unchecked((int)0x80070021);

    private static RunLockedException Locked(string dir, string path)
    {
        string? who = null;
        // The holder writes its line right after locking; give it a moment if we came in between.
        for (int i = 0; i < 20 && who is null; i++)
        {
            who = Holder(dir);
            if (who is null) Thread.Sleep(25);
        }
        return new RunLockedException($"run directory '{dir}' is in use by another residual process ({who ?? "holder unknown"}; lock file {path}); " +
            "wait for it to finish or stop it, or choose another --out");
    }

    private static string? ReadShared(string path)
    {
        using var f = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        using var r = new StreamReader(f);
        return r.ReadToEnd();
    }

    // .NET's FileStream would ask for a shared flock and fail against the holder's exclusive one;
    // plain open(2) + read(2) are not subject to advisory locks.
    private static unsafe string? ReadIgnoringLocks(string path)
    {
        int fd = open(path, 0);
        if (fd < 0) return null;
        try
        {
            var buf = new byte[512];
            nint n;
            fixed (byte* p = buf) n = read(fd, p, buf.Length);
            return n <= 0 ? null : System.Text.Encoding.UTF8.GetString(buf, 0, (int)n);
        }
        finally
        {
            close(fd);
        }
    }

    /// <summary>Releases the lock (the kernel would also release it when the process ends).</summary>
    public void Dispose()
    {
        var f = Interlocked.Exchange(ref _file, null);
        if (f is null) return;
        try { f.SetLength(0); }
        catch (IOException) { }
        f.Dispose();
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int flock(int fd, int operation);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int open(string path, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static unsafe partial nint read(int fd, byte* buffer, nint count);

    [LibraryImport("libc")]
    private static partial int close(int fd);
}
