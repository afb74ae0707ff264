// Making writes durable and saying so when they are not. fsync(2) is called directly and its
// result checked: a failing fsync (EIO, ENOSPC on a thin volume, a network file system that lost
// the data) means the bytes may never reach the disk, and the caller must not go on as if they
// had. After a rename, the folder itself is fsynced, so the new name survives a power cut too.
// On Windows the file is flushed through FileStream.Flush(true) and folders need no sync.
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace ResidualEngine.IO;

public static partial class Durability
{
    private const int EINVAL = 22, EROFS = 30, ENOTSUP = 95, EBADF = 9;

    /// <summary>Flushes a file's data and metadata to the disk; throws IOException naming the file when the system reports a failure.</summary>
    public static void FlushToDisk(FileStream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        stream.Flush(flushToDisk: false);
        if (OperatingSystem.IsWindows())
        {
            stream.Flush(flushToDisk: true);
            return;
        }
        Fsync(stream.SafeFileHandle, stream.Name);
    }

    /// <summary>fsync of an open handle, with its result checked.</summary>
    public static void Fsync(SafeFileHandle handle, string name)
    {
        ArgumentNullException.ThrowIfNull(handle);
        if (OperatingSystem.IsWindows()) return;
        bool added = false;
        try
        {
            handle.DangerousAddRef(ref added);
            int fd = (int)handle.DangerousGetHandle();
            if (fsync(fd) == 0) return;
            int errno = Marshal.GetLastPInvokeError();
            // Special files (pipes, some devices) cannot be synced, which is not a data loss.
            if (errno is EINVAL or EROFS or ENOTSUP) return;
            throw new IOException($"fsync of '{name}' failed: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno}); " +
                "the data may not be on the disk");
        }
        finally
        {
            if (added) handle.DangerousRelease();
        }
    }

    /// <summary>fsync of a folder, so that a rename or a new file in it survives a crash. Throws IOException when the system reports a failure.</summary>
    public static void FsyncDirectory(string directory)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        if (OperatingSystem.IsWindows()) return;
        int fd = open(directory, 0 /* O_RDONLY: the same value on every Unix */);
        if (fd < 0)
        {
            int e = Marshal.GetLastPInvokeError();
            throw new IOException($"cannot open folder '{directory}' to sync it: {Marshal.GetPInvokeErrorMessage(e)} (errno {e})");
        }
        using var h = new SafeFileHandle(fd, ownsHandle: true);
        int rc = fsync(fd);
        if (rc == 0) return;
        int errno = Marshal.GetLastPInvokeError();
        if (errno is EINVAL or ENOTSUP or EBADF) return; // file systems that cannot sync folders
        throw new IOException($"fsync of folder '{directory}' failed: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno}); " +
            "a file just renamed there may not survive a crash");
    }

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int fsync(int fd);

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int open(string path, int flags);
}
