// TFRecord framing, the container of TensorBoard's event files: per record a little-endian
// uint64 length, the masked CRC32C of those 8 bytes, the data, and the masked CRC32C of the data.
// CRC32C is the Castagnoli CRC (BitOperations.Crc32C: SSE4.2/ARM instructions where present);
// the mask rotates it right by 15 bits and adds 0xa282ead8, as TensorFlow does, so a CRC stored
// inside checksummed data does not weaken the outer checksum. The reader checks both CRCs of
// every record and names the record and the offset of any damage.
using System.Buffers.Binary;
using System.Numerics;

namespace ResidualEngine.Training.TensorBoard;

public static class TfRecord
{
    private const uint MaskDelta = 0xa282ead8;

    /// <summary>Records above this size are refused when reading (TensorBoard's are a few hundred bytes).</summary>
    public const long MaxRecordBytes = 64L << 20;

    /// <summary>CRC32C (Castagnoli, reflected, initial value and final xor 0xFFFFFFFF) of <paramref name="data"/>.</summary>
    public static uint Crc32C(ReadOnlySpan<byte> data)
    {
        uint crc = 0xFFFFFFFF;
        int i = 0;
        for (; i + 8 <= data.Length; i += 8) crc = BitOperations.Crc32C(crc, BinaryPrimitives.ReadUInt64LittleEndian(data[i..]));
        for (; i < data.Length; i++) crc = BitOperations.Crc32C(crc, data[i]);
        return ~crc;
    }

    public static uint Mask(uint crc) => ((crc >> 15) | (crc << 17)) + MaskDelta;

    public static uint Unmask(uint masked)
    {
        uint r = masked - MaskDelta;
        return (r >> 17) | (r << 15);
    }

    /// <summary>Appends one record holding <paramref name="data"/>.</summary>
    public static void Write(Stream stream, ReadOnlySpan<byte> data)
    {
        ArgumentNullException.ThrowIfNull(stream);
        Span<byte> header = stackalloc byte[12];
        BinaryPrimitives.WriteUInt64LittleEndian(header, (ulong)data.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(header[8..], Mask(Crc32C(header[..8])));
        Span<byte> footer = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(footer, Mask(Crc32C(data)));
        stream.Write(header);
        stream.Write(data);
        stream.Write(footer);
    }

    /// <summary>Every record of a stream, each checked against both of its CRCs; damage is a FormatException
    /// naming the record (0-based) and its byte offset. A file that ends inside a record is damage too.</summary>
    public static IEnumerable<byte[]> Read(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        var header = new byte[12];
        var footer = new byte[4];
        long offset = 0;
        for (int index = 0; ; index++)
        {
            int got = stream.ReadAtLeast(header, 12, throwOnEndOfStream: false);
            if (got == 0) yield break;
            if (got < 12) throw new FormatException($"TFRecord {index} at byte {offset}: the file ends inside the record header");
            if (Unmask(BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(8))) != Crc32C(header.AsSpan(0, 8)))
                throw new FormatException($"TFRecord {index} at byte {offset}: the length's CRC does not match");
            ulong length = BinaryPrimitives.ReadUInt64LittleEndian(header);
            if (length > MaxRecordBytes) throw new FormatException($"TFRecord {index} at byte {offset}: length {length} is above the limit of {MaxRecordBytes}");
            var data = new byte[(int)length];
            if (stream.ReadAtLeast(data, data.Length, throwOnEndOfStream: false) < data.Length || stream.ReadAtLeast(footer, 4, throwOnEndOfStream: false) < 4)
                throw new FormatException($"TFRecord {index} at byte {offset}: the file ends inside the record");
            if (Unmask(BinaryPrimitives.ReadUInt32LittleEndian(footer)) != Crc32C(data))
                throw new FormatException($"TFRecord {index} at byte {offset}: the data's CRC does not match");
            offset += 16 + data.Length;
            yield return data;
        }
    }
}
