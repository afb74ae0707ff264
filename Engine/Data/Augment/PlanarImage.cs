// An 8-bit image stored as channel planes (CHW), the layout of torchvision's uint8 image tensors,
// on which the AutoAugment operations work (ImageOps, AffineOps). The training transforms round
// their resampled crop to it (as PIL's resize rounds to 8 bits) when an auto-augment policy is
// set, and normalise it afterwards.
namespace ResidualEngine.Data;

public sealed class PlanarImage
{
    public PlanarImage(int channels, int height, int width, byte[]? data = null)
    {
        if (channels <= 0 || height <= 0 || width <= 0)
            throw new ArgumentException($"image dimensions must be positive, got {channels}x{height}x{width}");
        long n = (long)channels * height * width;
        if (n > Array.MaxLength) throw new ArgumentException($"image of {channels}x{height}x{width} is too large");
        if (data is not null && data.LongLength != n)
            throw new ArgumentException($"a {channels}x{height}x{width} image needs {n} bytes, got {data.LongLength}", nameof(data));
        Channels = channels;
        Height = height;
        Width = width;
        Data = data ?? new byte[n];
    }

    public int Channels { get; }
    public int Height { get; }
    public int Width { get; }

    /// <summary>The pixels, plane after plane: value (c, y, x) at c * Height * Width + y * Width + x.</summary>
    public byte[] Data { get; }

    public int PlaneSize => Height * Width;

    public Span<byte> Plane(int c) => Data.AsSpan(c * PlaneSize, PlaneSize);

    public PlanarImage Clone() => new(Channels, Height, Width, (byte[])Data.Clone());

    /// <summary>Rounds 0..255 float CHW values (clamped) to bytes, as PIL rounds a resampled image.</summary>
    public static PlanarImage FromFloats(ReadOnlySpan<float> chw, int channels, int height, int width)
    {
        var img = new PlanarImage(channels, height, width);
        if (chw.Length < img.Data.Length) throw new ArgumentException($"need {img.Data.Length} values, got {chw.Length}");
        for (int i = 0; i < img.Data.Length; i++)
        {
            float v = chw[i];
            img.Data[i] = v <= 0 ? (byte)0 : v >= 255 ? (byte)255 : (byte)(v + 0.5f);
        }
        return img;
    }

    /// <summary>Writes (value * scale[c] + bias[c]) per channel to <paramref name="dst"/> (CHW floats).</summary>
    public void Normalize(ReadOnlySpan<float> scale, ReadOnlySpan<float> bias, Span<float> dst)
    {
        int plane = PlaneSize;
        if (dst.Length < Data.Length) throw new ArgumentException($"destination holds {dst.Length} values, needs {Data.Length}");
        for (int c = 0; c < Channels; c++)
        {
            var src = Data.AsSpan(c * plane, plane);
            var d = dst.Slice(c * plane, plane);
            float s = scale[c], b = bias[c];
            for (int i = 0; i < plane; i++) d[i] = src[i] * s + b;
        }
    }
}
