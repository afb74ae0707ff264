// Image decoding to 8-bit RGB through SkiaSharp's codecs. The format is found from the content,
// never the extension (a PNG named .JPEG decodes as a PNG). Every image ends as RGB, HWC bytes:
// grayscale is replicated, CMYK/YCCK JPEGs are converted by the codec (Adobe inversion handled),
// and an alpha channel is dropped, keeping the unpremultiplied colour — what PIL's
// convert("RGB") does in torchvision's loader. No colour management (ICC profiles are ignored)
// and no EXIF rotation, also as torchvision. GIF/WebP animations give their first frame.
// JPEGs can be decoded at 1/2, 1/4 or 1/8 scale in the DCT (much faster for large photos) when
// the caller says how many pixels it needs: the smallest scale that still covers them is used.
using System.Buffers;
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

    /// <summary>Reads a file and parses its header; throws <see cref="InvalidDataException"/> naming the file for anything unreadable.</summary>
    public static EncodedImage Open(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        return FromBytes(File.ReadAllBytes(path), path);
    }

    /// <summary>Parses the header of an encoded image held in memory.</summary>
    public static EncodedImage FromBytes(byte[] bytes, string name = "image")
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
    private RgbImage DecodeAt(SKSizeI size)
    {
        // Unpremultiplied RGBA with no colour space: the codec converts gray/CMYK/palette to RGBA
        // and does no colour management; alpha is then dropped.
        var info = new SKImageInfo(size.Width, size.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        int n = size.Width * size.Height;
        var rgba = ArrayPool<byte>.Shared.Rent(4 * n);
        try
        {
            var r = _codec.GetPixels(info, rgba);
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
            var rgb = new byte[3 * n];
            for (int i = 0, j = 0; i < n; i++, j += 3)
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
    public static RgbImage Decode(string path)
    {
        using var img = EncodedImage.Open(path);
        return img.Decode();
    }

    /// <summary>Decodes encoded bytes at full resolution to RGB.</summary>
    public static RgbImage Decode(byte[] bytes, string name = "image")
    {
        using var img = EncodedImage.FromBytes(bytes, name);
        return img.Decode();
    }
}
