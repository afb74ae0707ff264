// What a path is, as the operating system sees it: its kind (regular file, folder, link, FIFO,
// device, socket), its size, and its identity (device + inode). Readers of user data use it to
// refuse anything that is not a regular file before opening it (opening a FIFO blocks, and a link
// to /dev/zero never ends), and folder walkers use the identity to visit a folder once however
// many links lead to it. On Linux this is statx(2), whose structure has one layout on every
// architecture; elsewhere (or where statx is missing) a managed fallback gives the kind the BCL
// can tell (file or folder) and identifies a path by its final, link-free form.
using System.Runtime.InteropServices;

namespace ResidualEngine.IO;

public enum FileKind
{
    Missing,
    Regular,
    Directory,
    SymbolicLink,
    Fifo,
    CharacterDevice,
    BlockDevice,
    Socket,
    Other,
}

/// <summary>
/// The identity of a file: device and inode on Unix, or the final path where the platform gives
/// no inode (then <see cref="Device"/> is 0 and <see cref="Path"/> holds it).
/// </summary>
public readonly record struct FileId(ulong Device, ulong Inode, string? Path);

/// <summary>The kind, size and identity of a path.</summary>
public readonly record struct FileStatus(FileKind Kind, long Size, FileId Id)
{
    public bool Exists => Kind != FileKind.Missing;

    /// <summary>"a FIFO (named pipe)", "a character device", ... for error messages.</summary>
    public string Describe() => Kind switch
    {
        FileKind.Missing => "missing",
        FileKind.Regular => "a regular file",
        FileKind.Directory => "a folder",
        FileKind.SymbolicLink => "a symbolic link",
        FileKind.Fifo => "a FIFO (named pipe)",
        FileKind.CharacterDevice => "a character device",
        FileKind.BlockDevice => "a block device",
        FileKind.Socket => "a socket",
        _ => "a special file",
    };
}

public static partial class FileStat
{
    private const int AtFdCwd = -100;
    private const int AtSymlinkNoFollow = 0x100;
    private const uint StatxBasic = 0x7ff;
    private const int ENOENT = 2, ENOTDIR = 20, ELOOP = 40, ENAMETOOLONG = 36;

    private static volatile bool s_noStatx = !OperatingSystem.IsLinux();

    /// <summary>
    /// The status of <paramref name="path"/>, following symbolic links when <paramref name="followLinks"/>
    /// (a dangling link or a link loop is then <see cref="FileKind.Missing"/>). Permission and other
    /// I/O errors throw IOException naming the path.
    /// </summary>
    public static FileStatus Get(string path, bool followLinks = true)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!s_noStatx)
        {
            try
            {
                return Statx(path, followLinks);
            }
            catch (EntryPointNotFoundException)
            {
                s_noStatx = true;
            }
            catch (DllNotFoundException)
            {
                s_noStatx = true;
            }
        }
        return Managed(path, followLinks);
    }

    private static unsafe FileStatus Statx(string path, bool follow)
    {
        byte* buf = stackalloc byte[256];
        int rc = statx(AtFdCwd, path, follow ? 0 : AtSymlinkNoFollow, StatxBasic, buf);
        if (rc != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            if (errno is ENOENT or ENOTDIR or ELOOP) return new FileStatus(FileKind.Missing, 0, default);
            if (errno == 38) { s_noStatx = true; return Managed(path, follow); } // ENOSYS: an old kernel
            throw new IOException($"cannot examine '{path}': {Marshal.GetPInvokeErrorMessage(errno)}" +
                (errno == ENAMETOOLONG ? " (path too long)" : ""));
        }
        uint mode = *(ushort*)(buf + 28);
        ulong ino = *(ulong*)(buf + 32);
        long size = *(long*)(buf + 40);
        uint devMajor = *(uint*)(buf + 136), devMinor = *(uint*)(buf + 140);
        var kind = (mode & 0xF000) switch
        {
            0x8000 => FileKind.Regular,
            0x4000 => FileKind.Directory,
            0xA000 => FileKind.SymbolicLink,
            0x1000 => FileKind.Fifo,
            0x2000 => FileKind.CharacterDevice,
            0x6000 => FileKind.BlockDevice,
            0xC000 => FileKind.Socket,
            _ => FileKind.Other,
        };
        return new FileStatus(kind, size, new FileId(((ulong)devMajor << 32) | devMinor, ino, null));
    }

    private static FileStatus Managed(string path, bool follow)
    {
        FileSystemInfo info = new FileInfo(path);
        if (!info.Exists)
        {
            info = new DirectoryInfo(path);
            if (!info.Exists && info.LinkTarget is null) return new FileStatus(FileKind.Missing, 0, default);
        }
        if (info.LinkTarget is not null)
        {
            if (!follow) return new FileStatus(FileKind.SymbolicLink, 0, new FileId(0, 0, Path.GetFullPath(path)));
            string real;
            try { real = RealPath(path); }
            catch (IOException) { return new FileStatus(FileKind.Missing, 0, default); }
            return Managed(real, follow: false);
        }
        var id = new FileId(0, 0, follow ? RealPath(path) : Path.GetFullPath(path));
        return info is FileInfo f
            ? new FileStatus((f.Attributes & FileAttributes.Device) != 0 ? FileKind.CharacterDevice : FileKind.Regular, f.Length, id)
            : new FileStatus(FileKind.Directory, 0, id);
    }

    /// <summary>
    /// The absolute path of <paramref name="path"/> with every symbolic link on the way resolved
    /// (managed, component by component). Throws IOException for a link loop.
    /// </summary>
    public static string RealPath(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        // No lexical GetFullPath: "link/.." must go to the parent of the link's target, not back here.
        var full = Path.IsPathFullyQualified(path) ? path : Path.Combine(Directory.GetCurrentDirectory(), path);
        var root = Path.GetPathRoot(full) ?? "/";
        var parts = new Queue<string>(Split(full[root.Length..]));
        var current = root;
        int hops = 0;
        while (parts.Count > 0)
        {
            var part = parts.Dequeue();
            if (part == ".") continue;
            if (part == "..")
            {
                current = Path.GetDirectoryName(current) ?? current;
                continue;
            }
            var next = Path.Combine(current, part);
            FileSystemInfo fi = Directory.Exists(next) ? new DirectoryInfo(next) : new FileInfo(next);
            var target = fi.LinkTarget;
            if (target is null)
            {
                current = next;
                continue;
            }
            if (++hops > 40) throw new IOException($"too many levels of symbolic links resolving '{path}'");
            var rest = parts.ToArray();
            if (Path.IsPathRooted(target))
            {
                current = Path.GetPathRoot(target) ?? root;
                target = target[current.Length..];
            }
            parts = new Queue<string>(Split(target).Concat(rest));
        }
        return current;
    }

    private static string[] Split(string p) =>
        p.Split([Path.DirectorySeparatorChar, Path.AltDirectorySeparatorChar], StringSplitOptions.RemoveEmptyEntries);

    [LibraryImport("libc", EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int statx(int dirfd, string path, int flags, uint mask, byte* buffer);
}
