// Hostile inputs built in memory or on disk for the data-safety tests: PNGs and JPEGs whose
// headers claim huge sizes, FIFOs, links to devices and files whose names are not UTF-8.
using System.IO.Compression;
using System.Runtime.InteropServices;

namespace ResidualEngine.Tests.Data;

internal static partial class HostileFiles
{
    /// <summary>A small, well-formed PNG (IHDR, one short IDAT, IEND) whose header claims <paramref name="w"/> x <paramref name="h"/>.</summary>
    public static byte[] PngClaiming(int w, int h)
    {
        var ms = new MemoryStream();
        ms.Write([0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A]);
        var ihdr = new byte[13];
        BE(ihdr, 0, (uint)w);
        BE(ihdr, 4, (uint)h);
        ihdr[8] = 8; // bit depth
        ihdr[9] = 2; // RGB
        Chunk(ms, "IHDR", ihdr);
        var z = new MemoryStream();
        using (var zs = new ZLibStream(z, CompressionLevel.Fastest, leaveOpen: true)) zs.Write(new byte[64]);
        Chunk(ms, "IDAT", z.ToArray());
        Chunk(ms, "IEND", []);
        return ms.ToArray();
    }

    /// <summary>A real JPEG with its SOF0 frame header patched to claim <paramref name="w"/> x <paramref name="h"/>.</summary>
    public static byte[] JpegClaiming(int w, int h)
    {
        var jpeg = TestImages.Solid(16, 16, 90, 10, 200);
        for (int i = 2; i + 9 < jpeg.Length; i++)
        {
            if (jpeg[i] != 0xFF || jpeg[i + 1] is not (0xC0 or 0xC1 or 0xC2)) continue;
            jpeg[i + 5] = (byte)(h >> 8);
            jpeg[i + 6] = (byte)h;
            jpeg[i + 7] = (byte)(w >> 8);
            jpeg[i + 8] = (byte)w;
            return jpeg;
        }
        throw new InvalidOperationException("no SOF marker in the test JPEG");
    }

    private static void Chunk(Stream s, string type, byte[] data)
    {
        var len = new byte[4];
        BE(len, 0, (uint)data.Length);
        s.Write(len);
        var body = new byte[4 + data.Length];
        System.Text.Encoding.ASCII.GetBytes(type, body);
        data.CopyTo(body, 4);
        s.Write(body);
        var crc = new byte[4];
        BE(crc, 0, Crc32(body));
        s.Write(crc);
    }

    private static void BE(byte[] b, int o, uint v)
    {
        b[o] = (byte)(v >> 24);
        b[o + 1] = (byte)(v >> 16);
        b[o + 2] = (byte)(v >> 8);
        b[o + 3] = (byte)v;
    }

    private static uint Crc32(byte[] data)
    {
        uint c = 0xFFFFFFFF;
        foreach (var x in data)
        {
            c ^= x;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320 ^ (c >> 1) : c >> 1;
        }
        return ~c;
    }

    /// <summary>Makes a FIFO (named pipe) at <paramref name="path"/>.</summary>
    public static void MakeFifo(string path)
    {
        if (mkfifo(path, 0x1B6 /* 0666 */) != 0)
            throw new IOException($"mkfifo '{path}' failed: errno {Marshal.GetLastPInvokeError()}");
    }

    /// <summary>Creates an empty file in <paramref name="dir"/> whose name is <paramref name="nameBytes"/> as they are (not UTF-8).</summary>
    public static void MakeRawNamedFile(string dir, byte[] nameBytes)
    {
        var path = System.Text.Encoding.UTF8.GetBytes(dir + "/").Concat(nameBytes).Append((byte)0).ToArray();
        int fd = creat(path, 0x1A4 /* 0644 */);
        if (fd < 0) throw new IOException($"creat failed: errno {Marshal.GetLastPInvokeError()}");
        close(fd);
    }

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int mkfifo(string path, uint mode);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int creat(byte[] path, uint mode);

    [LibraryImport("libc")]
    private static partial int close(int fd);
}
