// Image decoding to 8-bit RGB through SkiaSharp's codecs. The format is found from the content,
// never the extension (a PNG named .JPEG decodes as a PNG). Every image ends as RGB, HWC bytes:
// grayscale is replicated, CMYK/YCCK JPEGs are converted by the codec (Adobe inversion handled),
// and an alpha channel is dropped, keeping the unpremultiplied colour — what PIL's
// convert("RGB") does in torchvision's loader. No colour management (ICC profiles are ignored)
// and no EXIF rotation, also as torchvision. GIF/WebP animations give their first frame.
// JPEGs can be decoded at 1/2, 1/4 or 1/8 scale in the DCT (much faster for large photos) when
// the caller says how many pixels it needs: the smallest scale that still covers them is used.
// Nothing in a header is trusted: an image whose header claims more than a pixel limit (PIL's,
// by default) is refused before anything is allocated, sizes are computed in 64-bit arithmetic,
// and the codec is never handed a buffer smaller than what it writes.
using System.Buffers;
using ResidualEngine.IO;
using SkiaSharp;

namespace ResidualEngine.Data;

/// <summary>An image whose size is known before its pixels are decoded.</summary>
public interface IImageSource
{
    /// <summary>Full-resolution width in pixels.</summary>
    int Width { get; }

    /// <summary>Full-resolution height in pixels.</summary>
    int Height { get; }

    /// <summary>
    /// The pixels, possibly at a reduced scale that is still at least
    /// <paramref name="minWidth"/> x <paramref name="minHeight"/> (0, 0 means full resolution).
    /// </summary>
    RgbImage Decode(int minWidth = 0, int minHeight = 0);
}

/// <summary>Decoded 8-bit RGB pixels, row-major, 3 bytes per pixel (HWC).</summary>
public sealed class RgbImage : IImageSource
{
    public RgbImage(int width, int height, byte[] pixels)
    {
        ArgumentNullException.ThrowIfNull(pixels);
        if (width <= 0 || height <= 0)
            throw new ArgumentException($"image size must be positive, got {width}x{height}");
        if (pixels.LongLength != 3L * width * height)
            throw new ArgumentException($"an RGB image of {width}x{height} needs {3L * width * height} bytes, got {pixels.LongLength}", nameof(pixels));
        Width = width;
        Height = height;
        Pixels = pixels;
    }

    public int Width { get; }
    public int Height { get; }

    /// <summary>RGB bytes, pixel (x, y) at offset 3 * (y * Width + x).</summary>
    public byte[] Pixels { get; }

    public (byte R, byte G, byte B) GetPixel(int x, int y)
    {
        int o = 3 * (y * Width + x);
        return (Pixels[o], Pixels[o + 1], Pixels[o + 2]);
    }

    /// <summary>Already decoded: returns itself whatever size is asked for.</summary>
    public RgbImage Decode(int minWidth = 0, int minHeight = 0) => this;
}

/// <summary>An encoded image (any format SkiaSharp reads), decoded on demand.</summary>
public sealed class EncodedImage : IImageSource, IDisposable
{
    private static readonly float[] JpegScales = { 0.125f, 0.25f, 0.5f };

    /// <summary>
    /// Images whose header claims more pixels than this are refused (before any pixel is
    /// allocated): 178,956,970, where PIL raises DecompressionBombError (it warns at half that).
    /// </summary>
    public const long DefaultMaxPixels = 178_956_970;

    /// <summary>Image files larger than this are not read (1 GiB).</summary>
    public const long DefaultMaxFileBytes = 1L << 30;

    private readonly SKData _data;
    private readonly SKCodec _codec;

    private EncodedImage(SKData data, SKCodec codec, string name)
    {
        _data = data;
        _codec = codec;
        Name = name;
        Width = codec.Info.Width;
        Height = codec.Info.Height;
    }

    /// <summary>The file path or name used in error messages.</summary>
    public string Name { get; }
    public int Width { get; }
    public int Height { get; }

    /// <summary>The format found from the content: "Jpeg", "Png", "Webp", "Gif", "Bmp", ...</summary>
    public string Format => _codec.EncodedFormat.ToString();

    /// <summary>
    /// Reads a regular file (at most <see cref="DefaultMaxFileBytes"/>) and parses its header; throws
    /// <see cref="InvalidDataException"/> naming the file for anything undecodable, IOException for anything unreadable.
    /// </summary>
    public static EncodedImage Open(string path, long maxPixels = DefaultMaxPixels)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        return FromBytes(SafeFile.ReadAllBytes(path, "image", DefaultMaxFileBytes), path, maxPixels);
    }

    /// <summary>Parses the header of an encoded image held in memory; more than <paramref name="maxPixels"/> pixels is an <see cref="InvalidDataException"/>.</summary>
    public static EncodedImage FromBytes(byte[] bytes, string name = "image", long maxPixels = DefaultMaxPixels)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        name ??= "image";
        if (bytes.Length == 0) throw new InvalidDataException($"{name}: empty file (0 bytes)");
        var data = SKData.CreateCopy(bytes);
        var codec = SKCodec.Create(data);
        if (codec is null)
        {
            data.Dispose();
            var head = Convert.ToHexString(bytes, 0, Math.Min(8, bytes.Length));
            var kind = Sniff(bytes);
            throw new InvalidDataException(kind is null
                ? $"{name}: not an image SkiaSharp can decode ({bytes.Length} bytes, starting {head})"
                : $"{name}: truncated or corrupt {kind} ({bytes.Length} bytes; its header could not be read)");
        }
        if (codec.Info.Width <= 0 || codec.Info.Height <= 0)
        {
            codec.Dispose();
            data.Dispose();
            throw new InvalidDataException($"{name}: image header gives an empty size");
        }
        int w = codec.Info.Width, h = codec.Info.Height;
        long pixels = (long)w * h;
        if (pixels > maxPixels)
        {
            codec.Dispose();
            data.Dispose();
            throw new InvalidDataException(
                $"{name}: {w}x{h} = {pixels:N0} pixels, above the limit of {maxPixels:N0} (a decompression bomb or a damaged header; raise --max-image-pixels to accept it)");
        }
        return new EncodedImage(data, codec, name);
    }

    /// <summary>The format a file's signature announces, for error messages.</summary>
    private static string? Sniff(ReadOnlySpan<byte> b)
    {
        if (b.StartsWith((ReadOnlySpan<byte>)[0xFF, 0xD8, 0xFF])) return "JPEG";
        if (b.StartsWith((ReadOnlySpan<byte>)[0x89, (byte)'P', (byte)'N', (byte)'G'])) return "PNG";
        if (b.StartsWith("GIF8"u8)) return "GIF";
        if (b.Length >= 12 && b.StartsWith("RIFF"u8) && b.Slice(8, 4).SequenceEqual("WEBP"u8)) return "WebP";
        if (b.StartsWith("BM"u8)) return "BMP";
        return null;
    }

    public RgbImage Decode(int minWidth = 0, int minHeight = 0)
    {
        var size = new SKSizeI(Width, Height);
        if (_codec.EncodedFormat == SKEncodedImageFormat.Jpeg && (minWidth > 0 || minHeight > 0))
        {
            foreach (var s in JpegScales)
            {
                var d = _codec.GetScaledDimensions(s);
                if (d.Width >= minWidth && d.Height >= minHeight && d.Width > 0 && d.Height > 0) { size = d; break; }
            }
        }
        return DecodeAt(size);
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    private unsafe RgbImage DecodeAt(SKSizeI size)
    {
        // Unpremultiplied RGBA with no colour space: the codec converts gray/CMYK/palette to RGBA
        // and does no colour management; alpha is then dropped.
        var info = new SKImageInfo(size.Width, size.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        long n = (long)size.Width * size.Height;
        long rowBytes = 4L * size.Width, need = rowBytes * size.Height;
        if (size.Width <= 0 || size.Height <= 0 || need > Array.MaxLength || rowBytes > int.MaxValue || need != info.BytesSize64)
            throw new InvalidDataException($"{Name}: {size.Width}x{size.Height} is too large to decode in memory ({need:N0} bytes of pixels)");
        var rgba = ArrayPool<byte>.Shared.Rent((int)need);
        try
        {
            SKCodecResult r;
            fixed (byte* p = rgba) r = _codec.GetPixels(info, (IntPtr)p, (int)rowBytes, SKCodecOptions.Default);
            if (r != SKCodecResult.Success)
            {
                var why = r switch
                {
                    SKCodecResult.IncompleteInput => "truncated image data (the file ends before the image does)",
                    SKCodecResult.ErrorInInput => "corrupt image data",
                    _ => $"decoder failed ({r})",
                };
                throw new InvalidDataException($"{Name}: {why}");
            }
            int count = (int)n; // 4n fits an array, checked above
            var rgb = new byte[3 * count];
            for (int i = 0, j = 0; i < count; i++, j += 3)
            {
                rgb[j] = rgba[4 * i];
                rgb[j + 1] = rgba[4 * i + 1];
                rgb[j + 2] = rgba[4 * i + 2];
            }
            return new RgbImage(size.Width, size.Height, rgb);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rgba);
        }
    }

    public void Dispose()
    {
        _codec.Dispose();
        _data.Dispose();
    }
}

/// <summary>One-call decoding helpers.</summary>
public static class ImageDecoder
{
    /// <summary>Decodes a file at full resolution to RGB.</summary>
    public static RgbImage Decode(string path, long maxPixels = EncodedImage.DefaultMaxPixels)
    {
        using var img = EncodedImage.Open(path, maxPixels);
        return img.Decode();
    }

    /// <summary>Decodes encoded bytes at full resolution to RGB.</summary>
    public static RgbImage Decode(byte[] bytes, string name = "image")
    {
        using var img = EncodedImage.FromBytes(bytes, name);
        return img.Decode();
    }
}
