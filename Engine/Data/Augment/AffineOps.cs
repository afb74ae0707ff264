// The geometric AutoAugment operations (shear, translate, rotate) with nearest-neighbour
// sampling and zero fill, as torchvision.transforms.functional.affine/rotate (0.14) on uint8
// tensors, so results are bitwise equal: the inverse matrix of (centre, angle, translation,
// shear) is computed in double (_get_inverse_affine_matrix), rounded to float32, applied to the
// output pixel centres (x - W/2 + 0.5, y - H/2 + 0.5) normalised by W/2 and H/2, and
// grid_sample's nearest mode (align_corners false) picks source pixel
// round_half_even((g + 1) * W/2 - 0.5); a source outside the image gives 0.
// AutoAugment's conventions (torchvision's _apply_op): ShearX/Y take the shear's tangent and
// pivot on the top-left corner; TranslateX/Y move by whole pixels (the magnitude truncated);
// Rotate turns by degrees counter-clockwise about the centre.
namespace ResidualEngine.Data;

public static class AffineOps
{
    private const double DegToRad = Math.PI / 180.0, RadToDeg = 180.0 / Math.PI;

    /// <summary>Shears along x by <paramref name="magnitude"/> (the tangent of the shear angle), pivot at the top-left corner.</summary>
    public static void ShearX(PlanarImage img, double magnitude) =>
        Apply(img, Inverse(Corner(img), 0, 0, 0, Math.Atan(magnitude) * RadToDeg, 0));

    /// <summary>Shears along y by <paramref name="magnitude"/> (the tangent of the shear angle), pivot at the top-left corner.</summary>
    public static void ShearY(PlanarImage img, double magnitude) =>
        Apply(img, Inverse(Corner(img), 0, 0, 0, 0, Math.Atan(magnitude) * RadToDeg));

    /// <summary>Moves the image right by (int)<paramref name="magnitude"/> pixels (left when negative).</summary>
    public static void TranslateX(PlanarImage img, double magnitude) => Apply(img, Inverse((0, 0), 0, (int)magnitude, 0, 0, 0));

    /// <summary>Moves the image down by (int)<paramref name="magnitude"/> pixels (up when negative).</summary>
    public static void TranslateY(PlanarImage img, double magnitude) => Apply(img, Inverse((0, 0), 0, 0, (int)magnitude, 0, 0));

    /// <summary>Rotates by <paramref name="degrees"/> counter-clockwise about the centre (torchvision's rotate).</summary>
    public static void Rotate(PlanarImage img, double degrees) => Apply(img, Inverse((0, 0), -degrees, 0, 0, 0, 0));

    // The top-left corner in centred coordinates: torchvision's center=[0, 0] as 1.0 * (c - size * 0.5).
    private static (double X, double Y) Corner(PlanarImage img)
    {
        ArgumentNullException.ThrowIfNull(img);
        return (1.0 * (0 - img.Width * 0.5), 1.0 * (0 - img.Height * 0.5));
    }

    /// <summary>
    /// torchvision's _get_inverse_affine_matrix(center, angle, translate, scale 1, shear) in
    /// centred coordinates: the matrix taking output pixel positions to input positions.
    /// </summary>
    public static double[] Inverse((double X, double Y) center, double angle, double tx, double ty, double shearX, double shearY)
    {
        double rot = angle * DegToRad, sx = shearX * DegToRad, sy = shearY * DegToRad;
        double a = Math.Cos(rot - sy) / Math.Cos(sy);
        double b = -Math.Cos(rot - sy) * Math.Tan(sx) / Math.Cos(sy) - Math.Sin(rot);
        double c = Math.Sin(rot - sy) / Math.Cos(sy);
        double d = -Math.Sin(rot - sy) * Math.Tan(sx) / Math.Cos(sy) + Math.Cos(rot);
        double[] m = [d, -b, 0.0, -c, a, 0.0];
        double cx = center.X, cy = center.Y;
        m[2] += m[0] * (-cx - tx) + m[1] * (-cy - ty);
        m[5] += m[3] * (-cx - tx) + m[4] * (-cy - ty);
        m[2] += cx;
        m[5] += cy;
        return m;
    }

    /// <summary>Resamples the image through the inverse matrix <paramref name="m"/> (nearest, zero fill), in place.</summary>
    public static void Apply(PlanarImage img, double[] m)
    {
        ArgumentNullException.ThrowIfNull(img);
        ArgumentNullException.ThrowIfNull(m);
        if (m.Length != 6) throw new ArgumentException($"an affine matrix has 6 entries, got {m.Length}");
        int h = img.Height, w = img.Width, plane = img.PlaneSize;
        float halfW = (float)(0.5 * w), halfH = (float)(0.5 * h);
        float r00 = (float)m[0] / halfW, r10 = (float)m[1] / halfW, r20 = (float)m[2] / halfW;
        float r01 = (float)m[3] / halfH, r11 = (float)m[4] / halfH, r21 = (float)m[5] / halfH;
        float scaleW = (float)w / 2, scaleH = (float)h / 2;
        var xs = Linspace.Float32((float)(-w * 0.5 + 0.5), (float)(w * 0.5 + 0.5 - 1), w);
        var ys = Linspace.Float32((float)(-h * 0.5 + 0.5), (float)(h * 0.5 + 0.5 - 1), h);
        var src = (byte[])img.Data.Clone();
        var dst = img.Data;
        for (int v = 0; v < h; v++)
        {
            float by = ys[v];
            for (int u = 0; u < w; u++)
            {
                float bx = xs[u];
                float gx = bx * r00 + by * r10 + r20;
                float gy = bx * r01 + by * r11 + r21;
                float ix = MathF.Round((gx + 1f) * scaleW - 0.5f, MidpointRounding.ToEven);
                float iy = MathF.Round((gy + 1f) * scaleH - 0.5f, MidpointRounding.ToEven);
                int o = v * w + u;
                if (ix >= 0 && ix < w && iy >= 0 && iy < h)
                {
                    int s = (int)iy * w + (int)ix;
                    for (int c = 0; c < img.Channels; c++) dst[c * plane + o] = src[c * plane + s];
                }
                else
                {
                    for (int c = 0; c < img.Channels; c++) dst[c * plane + o] = 0;
                }
            }
        }
    }
}

/// <summary>torch.linspace in float32 on the CPU, value for value (torch 1.13's kernel, see Float32).</summary>
public static class Linspace
{
    /// <summary>
    /// step = (end - start) / (steps - 1); the first half counts up from start, the rest down from
    /// end, each with one rounding (a fused multiply-add, as torch's compiled kernel does); runs of
    /// 16 values at the start are filled in two vectors of 8 as base + k * step.
    /// </summary>
    public static float[] Float32(float start, float end, int steps)
    {
        if (steps < 0) throw new ArgumentException($"linspace needs steps >= 0, got {steps}");
        var r = new float[steps];
        if (steps == 0) return r;
        if (steps == 1)
        {
            r[0] = start;
            return r;
        }
        float step = (end - start) / (steps - 1);
        int half = steps / 2;
        float At(int i) => i < half ? MathF.FusedMultiplyAdd(step, i, start) : MathF.FusedMultiplyAdd(-step, steps - i - 1, end);
        int idx = 0;
        const int lanes = 8;
        for (; idx + 2 * lanes <= steps; idx += 2 * lanes)
            for (int v = idx; v < idx + 2 * lanes; v += lanes)
            {
                float b = At(v);
                r[v] = b;
                for (int k = 1; k < lanes; k++) r[v + k] = b + k * step;
            }
        for (; idx < steps; idx++) r[idx] = At(idx);
        return r;
    }
}
