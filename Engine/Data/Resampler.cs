// Bilinear resampling of an RGB image region straight into a normalised float CHW tensor.
// The filter is the one PIL's Image.resize(BILINEAR, box=...) uses, which is what torchvision
// applies to PIL images: a triangle kernel whose support widens with the downscale factor
// (antialiased when shrinking, plain bilinear when enlarging), window clipped at the edges of
// the source box (torchvision crops, then resizes the crop) and renormalised, pixel centres at +0.5. It is separable: a horizontal pass over the
// rows the vertical pass needs, then the vertical pass. Unlike PIL, the intermediate stays in
// float (PIL rounds to 8 bits between passes), so results differ from PIL by at most ~1/255.
//
// Geometry: the source box [x0, x1) x [y0, y1) (fractional allowed) is resized to a virtual
// OutW x OutH image; destination pixel (u, v) shows virtual pixel (u + OffX, v + OffY), mirrored
// in u when flipping; virtual pixels outside the image are filled with 0 (black) before
// normalisation, which is how padding works. Output value = pixel * Scale[c] + Bias[c].
using System.Buffers;
using System.Runtime.CompilerServices;

namespace ResidualEngine.Data;

internal readonly record struct ResampleGeometry(
    double X0, double Y0, double X1, double Y1,
    int OutW, int OutH, int OffX, int OffY, int DstW, int DstH, bool Flip);

internal static class Resampler
{
    /// <summary>Per-output-pixel filter taps along one axis.</summary>
    private sealed class Axis
    {
        public required int[] Start;   // first input index of each output
        public required int[] Taps;    // number of inputs of each output
        public required float[] W;     // weights, MaxTaps per output
        public required int MaxTaps;
    }

    // Hot loops run once per sample on worker threads: compile them optimised straight away.
    /// <summary>
    /// Writes dst[c, v, u] for c in 0..2. <paramref name="scale"/>/<paramref name="bias"/> map
    /// 0..255 pixel values to the output (e.g. 1/(255 std), -mean/std).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void RenderChw(RgbImage img, in ResampleGeometry g, ReadOnlySpan<float> scale, ReadOnlySpan<float> bias, Span<float> dst)
    {
        if (dst.Length < 3 * g.DstW * g.DstH)
            throw new ArgumentException($"destination holds {dst.Length} values, needs {3 * g.DstW * g.DstH}");
        int plane = g.DstW * g.DstH;
        // Fill everything with the normalised black first; the image part is overwritten.
        for (int c = 0; c < 3; c++) dst.Slice(c * plane, plane).Fill(bias[c]);

        // Destination columns/rows that show the image.
        int u0 = Math.Max(0, -g.OffX), u1 = Math.Min(g.DstW, g.OutW - g.OffX);
        int v0 = Math.Max(0, -g.OffY), v1 = Math.Min(g.DstH, g.OutH - g.OffY);
        if (u0 >= u1 || v0 >= v1) return;

        var ax = Coefficients(img.Width, g.X0, g.X1, g.OutW, g.OffX + u0, u1 - u0);
        var ay = Coefficients(img.Height, g.Y0, g.Y1, g.OutH, g.OffY + v0, v1 - v0);
        int cols = u1 - u0, rows = v1 - v0;

        // Input rows the vertical pass reads.
        int r0 = int.MaxValue, r1 = 0;
        for (int i = 0; i < rows; i++)
        {
            r0 = Math.Min(r0, ay.Start[i]);
            r1 = Math.Max(r1, ay.Start[i] + ay.Taps[i]);
        }

        // Horizontal pass: tmp[(r - r0), col, c].
        var tmp = ArrayPool<float>.Shared.Rent((r1 - r0) * cols * 3);
        try
        {
            Passes(img, g, ax, ay, r0, r1, u0, v0, cols, rows, tmp, scale, bias, dst);
        }
        finally
        {
            ArrayPool<float>.Shared.Return(tmp);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Passes(RgbImage img, in ResampleGeometry g, Axis ax, Axis ay, int r0, int r1, int u0, int v0, int cols, int rows,
        float[] tmp, ReadOnlySpan<float> scale, ReadOnlySpan<float> bias, Span<float> dst)
    {
        int plane = g.DstW * g.DstH;
        var px = img.Pixels;
        int stride = img.Width * 3;
        for (int r = r0; r < r1; r++)
        {
            int rowBase = r * stride, tBase = (r - r0) * cols * 3;
            for (int i = 0; i < cols; i++)
            {
                int s = ax.Start[i], n = ax.Taps[i], wb = i * ax.MaxTaps;
                float a0 = 0, a1 = 0, a2 = 0;
                for (int k = 0; k < n; k++)
                {
                    float w = ax.W[wb + k];
                    int o = rowBase + 3 * (s + k);
                    a0 += w * px[o];
                    a1 += w * px[o + 1];
                    a2 += w * px[o + 2];
                }
                int t = tBase + 3 * i;
                tmp[t] = a0;
                tmp[t + 1] = a1;
                tmp[t + 2] = a2;
            }
        }

        // Vertical pass, normalising and placing (mirrored when flipping).
        for (int j = 0; j < rows; j++)
        {
            int s = ay.Start[j], n = ay.Taps[j], wb = j * ay.MaxTaps;
            int v = v0 + j;
            for (int i = 0; i < cols; i++)
            {
                float a0 = 0, a1 = 0, a2 = 0;
                for (int k = 0; k < n; k++)
                {
                    float w = ay.W[wb + k];
                    int t = ((s + k - r0) * cols + i) * 3;
                    a0 += w * tmp[t];
                    a1 += w * tmp[t + 1];
                    a2 += w * tmp[t + 2];
                }
                int u = u0 + i;
                if (g.Flip) u = g.DstW - 1 - u;
                int o = v * g.DstW + u;
                dst[o] = Clamp255(a0) * scale[0] + bias[0];
                dst[plane + o] = Clamp255(a1) * scale[1] + bias[1];
                dst[2 * plane + o] = Clamp255(a2) * scale[2] + bias[2];
            }
        }
    }

    // The triangle filter has no negative lobes, so this only trims float round-off.
    private static float Clamp255(float x) => x < 0 ? 0 : x > 255 ? 255 : x;

    /// <summary>
    /// Taps for outputs first..first+count-1 of resizing input [b0, b1) (of an axis of
    /// <paramref name="inSize"/> pixels) to <paramref name="outSize"/> pixels.
    /// </summary>
    private static Axis Coefficients(int inSize, double b0, double b1, int outSize, int first, int count)
    {
        double step = (b1 - b0) / outSize;       // input pixels per output pixel
        double widen = Math.Max(step, 1.0);      // antialiasing: stretch the kernel when shrinking
        double support = widen;                  // triangle of radius 1, stretched
        int maxTaps = (int)Math.Ceiling(2 * support) + 2;
        var start = new int[count];
        var taps = new int[count];
        var w = new float[count * maxTaps];
        var tmp = new double[maxTaps];
        // Whole input pixels the box covers (a fractional box from a reduced decode is widened).
        int boxLo = Math.Clamp((int)Math.Floor(b0 + 1e-6), 0, inSize - 1);
        int boxHi = Math.Clamp((int)Math.Ceiling(b1 - 1e-6), boxLo + 1, inSize);
        for (int i = 0; i < count; i++)
        {
            double centre = b0 + (first + i + 0.5) * step;
            // Inputs j whose centre j + 0.5 is within the support of the output centre, and inside
            // the box: torchvision crops first and then resizes the crop alone, so pixels outside
            // the crop never contribute (the window is clipped there and renormalised).
            int lo = Math.Max(boxLo, (int)Math.Floor(centre - support - 0.5));
            int hi = Math.Min(boxHi - 1, (int)Math.Ceiling(centre + support - 0.5));
            double total = 0;
            int n = 0, s = -1;
            for (int j = lo; j <= hi && n < maxTaps; j++)
            {
                double d = Math.Abs(j + 0.5 - centre) / widen;
                double t = d < 1 ? 1 - d : 0;
                if (t <= 0) { if (s < 0) continue; else break; }
                if (s < 0) s = j;
                tmp[n++] = t;
                total += t;
            }
            if (n == 0)
            {
                // Centre outside the image (a box reaching past the edge): nearest edge pixel.
                s = Math.Clamp((int)Math.Floor(centre), boxLo, boxHi - 1);
                tmp[0] = total = 1;
                n = 1;
            }
            start[i] = s;
            taps[i] = n;
            for (int k = 0; k < n; k++) w[i * maxTaps + k] = (float)(tmp[k] / total);
        }
        return new Axis { Start = start, Taps = taps, W = w, MaxTaps = maxTaps };
    }
}
