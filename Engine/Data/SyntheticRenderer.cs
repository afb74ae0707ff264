// Draws one synthetic ImageNet-style picture with SkiaSharp. A class is a shape, a fill texture
// and a colour palette (hue band); a picture shows one object of its class at a random position,
// size and rotation, over a cluttered background (gradient, random strokes and blobs) with
// smaller distractor objects of other classes (one may overlap the main object), then pixel
// noise, and is JPEG-encoded. Hue bands of neighbouring classes overlap and distractors carry
// other classes' cues, so colour or texture alone do not solve it; the dominant object does.
// Everything is drawn from one System.Random, so a seed gives the same bytes every time.
using SkiaSharp;

namespace ResidualEngine.Data;

internal static class SyntheticRenderer
{
    internal static readonly string[] ShapeNames =
        { "circles", "squares", "triangles", "stars", "rings", "crosses", "hexagons", "crescents", "diamonds", "arrows" };

    internal static readonly string[] TextureNames =
        { "solid", "stripes", "checker", "dots", "concentric", "sweep", "gradient" };

    // Texture of each of the ten base classes (later classes combine shape and texture differently).
    private static readonly int[] BaseTexture = { 4, 2, 1, 0, 5, 3, 6, 1, 2, 0 };

    internal static int ShapeOf(int cls) => cls % ShapeNames.Length;

    internal static int TextureOf(int cls) =>
        cls < ShapeNames.Length ? BaseTexture[cls] : (3 * cls + cls / ShapeNames.Length) % TextureNames.Length;

    internal static double HueOf(int cls) =>
        cls < ShapeNames.Length ? cls / (double)ShapeNames.Length : (cls * 0.6180339887) % 1.0;

    /// <summary>Class folder name, e.g. n0000_circles; later classes add their texture.</summary>
    internal static string ClassName(int cls) =>
        cls < ShapeNames.Length
            ? $"n{cls:D4}_{ShapeNames[ShapeOf(cls)]}"
            : $"n{cls:D4}_{ShapeNames[ShapeOf(cls)]}_{TextureNames[TextureOf(cls)]}";

    /// <summary>A JPEG of class <paramref name="cls"/> (of <paramref name="classes"/>), <paramref name="size"/> pixels square.</summary>
    public static byte[] Render(int cls, int classes, int size, int quality, Random rng)
    {
        var info = new SKImageInfo(size, size, SKColorType.Rgba8888, SKAlphaType.Premul);
        using var bmp = new SKBitmap(info);
        using (var canvas = new SKCanvas(bmp))
        {
            float s = size;
            DrawBackground(canvas, s, rng);
            int distractors = classes > 1 ? rng.Next(1, 4) : 0;
            bool occlude = distractors > 0 && rng.NextDouble() < 0.3;
            for (int d = 0; d < distractors - (occlude ? 1 : 0); d++) DrawDistractor(canvas, cls, classes, s, rng);
            float r = s * (float)(0.22 + 0.23 * rng.NextDouble());
            float margin = 0.6f * r;
            float cx = margin + (float)rng.NextDouble() * (s - 2 * margin);
            float cy = margin + (float)rng.NextDouble() * (s - 2 * margin);
            DrawObject(canvas, cls, cx, cy, r, (float)(360 * rng.NextDouble()), rng);
            if (occlude) DrawDistractor(canvas, cls, classes, s, rng);
        }
        AddNoise(bmp, rng);
        using var data = bmp.Encode(SKEncodedImageFormat.Jpeg, quality)
            ?? throw new InvalidOperationException("SkiaSharp could not encode a JPEG");
        return data.ToArray();
    }

    private static SKColor Hsv(double h, double sat, double val, byte alpha = 255) =>
        SKColor.FromHsv((float)(((h % 1.0) + 1.0) % 1.0 * 360.0), (float)(100 * Math.Clamp(sat, 0, 1)), (float)(100 * Math.Clamp(val, 0, 1)), alpha);

    private static double Uniform(Random rng, double lo, double hi) => lo + (hi - lo) * rng.NextDouble();

    private static void DrawBackground(SKCanvas canvas, float s, Random rng)
    {
        var a = Hsv(rng.NextDouble(), Uniform(rng, 0.05, 0.45), Uniform(rng, 0.25, 0.9));
        var b = Hsv(rng.NextDouble(), Uniform(rng, 0.05, 0.45), Uniform(rng, 0.25, 0.9));
        double angle = 2 * Math.PI * rng.NextDouble();
        var p0 = new SKPoint(s / 2 - s / 2 * (float)Math.Cos(angle), s / 2 - s / 2 * (float)Math.Sin(angle));
        var p1 = new SKPoint(s - p0.X, s - p0.Y);
        using (var shader = SKShader.CreateLinearGradient(p0, p1, new[] { a, b }, SKShaderTileMode.Clamp))
        using (var paint = new SKPaint { Shader = shader })
            canvas.DrawRect(0, 0, s, s, paint);

        int clutter = rng.Next(4, 11);
        using var p = new SKPaint { IsAntialias = true };
        for (int i = 0; i < clutter; i++)
        {
            p.Color = Hsv(rng.NextDouble(), Uniform(rng, 0.1, 0.8), Uniform(rng, 0.2, 1.0), (byte)rng.Next(60, 170));
            float x = (float)rng.NextDouble() * s, y = (float)rng.NextDouble() * s;
            if (rng.NextDouble() < 0.5)
            {
                p.Style = SKPaintStyle.Stroke;
                p.StrokeWidth = s / 64f * (float)Uniform(rng, 0.7, 3.0);
                canvas.DrawLine(x, y, (float)rng.NextDouble() * s, (float)rng.NextDouble() * s, p);
            }
            else
            {
                p.Style = SKPaintStyle.Fill;
                float rx = s * (float)Uniform(rng, 0.02, 0.12), ry = s * (float)Uniform(rng, 0.02, 0.12);
                canvas.DrawOval(x, y, rx, ry, p);
            }
        }
    }

    private static void DrawDistractor(SKCanvas canvas, int cls, int classes, float s, Random rng)
    {
        int other = rng.Next(classes - 1);
        if (other >= cls) other++;
        float r = s * (float)Uniform(rng, 0.08, 0.22);
        float cx = (float)rng.NextDouble() * s, cy = (float)rng.NextDouble() * s;
        DrawObject(canvas, other, cx, cy, r, (float)(360 * rng.NextDouble()), rng);
    }

    /// <summary>An object of class <paramref name="cls"/> with bounding radius <paramref name="r"/>.</summary>
    private static void DrawObject(SKCanvas canvas, int cls, float cx, float cy, float r, float degrees, Random rng)
    {
        // One object in five takes any hue, so shape and texture must carry the class too.
        double hue = rng.NextDouble() < 0.2 ? rng.NextDouble() : HueOf(cls);
        var c1 = Hsv(hue + Uniform(rng, -0.08, 0.08), Uniform(rng, 0.55, 1.0), Uniform(rng, 0.55, 1.0));
        var c2 = Hsv(hue + 0.12 + Uniform(rng, -0.08, 0.08), Uniform(rng, 0.25, 0.8), Uniform(rng, 0.15, 0.6));
        // Non-uniform stretch so shapes are not always regular.
        float sx = (float)Uniform(rng, 0.8, 1.15), sy = (float)Uniform(rng, 0.8, 1.15);
        canvas.Save();
        canvas.Translate(cx, cy);
        canvas.RotateDegrees(degrees);
        canvas.Scale(r * sx, r * sy);
        using (var path = ShapePath(ShapeOf(cls)))
        using (var shader = Texture(TextureOf(cls), c1, c2))
        using (var fill = new SKPaint { IsAntialias = true, Shader = shader, Style = SKPaintStyle.Fill })
        {
            canvas.DrawPath(path, fill);
            if (rng.NextDouble() < 0.5)
            {
                using var edge = new SKPaint
                {
                    IsAntialias = true, Style = SKPaintStyle.Stroke, StrokeWidth = 0.06f,
                    Color = Hsv(hue, 0.6, Uniform(rng, 0.05, 0.35)),
                };
                canvas.DrawPath(path, edge);
            }
        }
        canvas.Restore();
    }

    /// <summary>The outline of a shape in unit coordinates (radius about 1, centred at 0).</summary>
    private static SKPath ShapePath(int shape)
    {
        using var b = new SKPathBuilder();
        switch (shape)
        {
            case 0: b.AddCircle(0, 0, 1); break;
            case 1: b.AddRect(new SKRect(-0.8f, -0.8f, 0.8f, 0.8f)); break;
            case 2: b.AddPoly(Polygon(3, 1, -90), true); break;
            case 3: b.AddPoly(Star(5, 1, 0.42f), true); break;
            case 4:
                b.FillType = SKPathFillType.EvenOdd;
                b.AddCircle(0, 0, 1);
                b.AddCircle(0, 0, 0.6f);
                break;
            case 5:
                b.AddPoly(new SKPoint[]
                {
                    new(-0.3f, -1), new(0.3f, -1), new(0.3f, -0.3f), new(1, -0.3f), new(1, 0.3f), new(0.3f, 0.3f),
                    new(0.3f, 1), new(-0.3f, 1), new(-0.3f, 0.3f), new(-1, 0.3f), new(-1, -0.3f), new(-0.3f, -0.3f),
                }, true);
                break;
            case 6: b.AddPoly(Polygon(6, 1, 0), true); break;
            case 7:
                {
                    using var outer = Circle(0, 0, 1);
                    using var bite = Circle(0.45f, -0.2f, 0.85f);
                    using var moon = outer.Op(bite, SKPathOp.Difference);
                    if (moon is not null) b.AddPath(moon);
                    break;
                }
            case 8: b.AddPoly(new SKPoint[] { new(0, -1), new(0.55f, 0), new(0, 1), new(-0.55f, 0) }, true); break;
            default:
                b.AddPoly(new SKPoint[]
                {
                    new(-1, -0.22f), new(0.2f, -0.22f), new(0.2f, -0.6f), new(1, 0),
                    new(0.2f, 0.6f), new(0.2f, 0.22f), new(-1, 0.22f),
                }, true);
                break;
        }
        return b.Detach();
    }

    private static SKPath Circle(float x, float y, float r)
    {
        using var b = new SKPathBuilder();
        b.AddCircle(x, y, r);
        return b.Detach();
    }

    private static SKPoint[] Polygon(int n, float r, float startDegrees)
    {
        var pts = new SKPoint[n];
        for (int i = 0; i < n; i++)
        {
            double a = (startDegrees + 360.0 * i / n) * Math.PI / 180;
            pts[i] = new SKPoint(r * (float)Math.Cos(a), r * (float)Math.Sin(a));
        }
        return pts;
    }

    private static SKPoint[] Star(int points, float outer, float inner)
    {
        var pts = new SKPoint[2 * points];
        for (int i = 0; i < pts.Length; i++)
        {
            double a = (-90 + 180.0 * i / points) * Math.PI / 180;
            float r = i % 2 == 0 ? outer : inner;
            pts[i] = new SKPoint(r * (float)Math.Cos(a), r * (float)Math.Sin(a));
        }
        return pts;
    }

    /// <summary>A fill pattern in the object's unit coordinates (so it turns and scales with it).</summary>
    private static SKShader Texture(int texture, SKColor c1, SKColor c2)
    {
        switch (texture)
        {
            case 0: return SKShader.CreateColor(c1);
            case 1:
                return SKShader.CreateLinearGradient(new SKPoint(0, -0.25f), new SKPoint(0, 0.25f),
                    new[] { c1, c1, c2, c2 }, new[] { 0f, 0.5f, 0.5f, 1f }, SKShaderTileMode.Repeat);
            case 2:
            case 3:
                {
                    // A small tile: a 2x2 checker or a dot, repeated.
                    int n = texture == 2 ? 2 : 8;
                    using var tile = new SKBitmap(new SKImageInfo(n, n, SKColorType.Rgba8888, SKAlphaType.Premul));
                    using (var tc = new SKCanvas(tile))
                    {
                        tc.Clear(c1);
                        using var tp = new SKPaint { Color = c2, IsAntialias = texture == 3 };
                        if (texture == 2) { tc.DrawRect(0, 0, 1, 1, tp); tc.DrawRect(1, 1, 1, 1, tp); }
                        else tc.DrawCircle(4, 4, 2.6f, tp);
                    }
                    float cell = texture == 2 ? 0.22f : 0.05f;
                    using var image = SKImage.FromBitmap(tile);
                    return image.ToShader(SKShaderTileMode.Repeat, SKShaderTileMode.Repeat,
                        new SKSamplingOptions(texture == 2 ? SKFilterMode.Nearest : SKFilterMode.Linear), SKMatrix.CreateScale(cell, cell));
                }
            case 4:
                return SKShader.CreateRadialGradient(new SKPoint(0, 0), 0.3f, new[] { c1, c2 }, SKShaderTileMode.Mirror);
            case 5:
                return SKShader.CreateSweepGradient(new SKPoint(0, 0), new[] { c1, c2, c1, c2, c1 }, null);
            default:
                return SKShader.CreateLinearGradient(new SKPoint(-1, -1), new SKPoint(1, 1), new[] { c1, c2 }, SKShaderTileMode.Clamp);
        }
    }

    // Standard normal values drawn once with a fixed seed; each picture reads them from a random
    // start with a random odd stride, far cheaper than a Box-Muller pair per pixel.
    private static readonly float[] Gauss = MakeGauss();

    private static float[] MakeGauss()
    {
        var rng = new Random(12345);
        var g = new float[1 << 16];
        for (int i = 0; i < g.Length; i++) g[i] = (float)Tensor.NextGaussian(rng);
        return g;
    }

    /// <summary>Gaussian pixel noise of a random strength (sigma 3 to 14 levels).</summary>
    private static void AddNoise(SKBitmap bmp, Random rng)
    {
        float sigma = (float)Uniform(rng, 3, 14);
        int at = rng.Next(Gauss.Length), stride = rng.Next(Gauss.Length) | 1, mask = Gauss.Length - 1;
        var px = bmp.GetPixelSpan();
        for (int i = 0; i < px.Length; i++)
        {
            if ((i & 3) == 3) continue; // alpha
            at = (at + stride) & mask;
            int v = (int)MathF.Round(px[i] + sigma * Gauss[at]);
            px[i] = (byte)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
    }
}
