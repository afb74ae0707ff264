// Geometry of convolutions and pooling windows, shared by every backend. Output sizes follow
// PyTorch: floor((H + 2P - D(R-1) - 1) / S) + 1 (ceil mode for pooling on request).
namespace ResidualEngine.Backends;

public readonly record struct Conv2dParams(
    int StrideH = 1, int StrideW = 1,
    int PadH = 0, int PadW = 0,
    int DilationH = 1, int DilationW = 1,
    int Groups = 1)
{
    public static Conv2dParams Of(int stride = 1, int padding = 0, int dilation = 1, int groups = 1) =>
        new(stride, stride, padding, padding, dilation, dilation, groups);

    /// <summary>Output height and width for an input of H x W and a filter of R x S.</summary>
    public (int P, int Q) OutputSize(int h, int w, int r, int s) =>
        (FloorDiv(h + 2 * PadH - DilationH * (r - 1) - 1, StrideH) + 1,
         FloorDiv(w + 2 * PadW - DilationW * (s - 1) - 1, StrideW) + 1);

    /// <summary>
    /// The one place for a convolution's shape rules: validates the geometry of input x (N, C, H, W)
    /// against a weight (K, C/groups, R, S) and returns the output shape (N, K, P, Q). Used by the op
    /// (Ops.Conv2d) and by the layer's shape trace, so both reject the same inputs with the same words.
    /// </summary>
    public Shape OutputShape(Shape x, Shape weight, string op = "Conv2d")
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(weight);
        if (x.Rank != 4) throw new ArgumentException($"{op}: x must be 4-d (N, C, H, W), got shape {x}");
        if (weight.Rank != 4) throw new ArgumentException($"{op}: weight must be 4-d (K, C/groups, R, S), got shape {weight}");
        Positive(op, StrideH, "stride (height)");
        Positive(op, StrideW, "stride (width)");
        Positive(op, DilationH, "dilation (height)");
        Positive(op, DilationW, "dilation (width)");
        if (PadH < 0 || PadW < 0) throw new ArgumentException($"{op}: padding must not be negative, got {PadH}x{PadW}");
        Positive(op, Groups, "groups");
        int n = x[0], c = x[1], h = x[2], w = x[3];
        int k = weight[0], cw = weight[1], r = weight[2], s = weight[3];
        if (c % Groups != 0)
            throw new ArgumentException($"{op}: input channels ({c}) must be divisible by groups ({Groups})");
        if (k % Groups != 0)
            throw new ArgumentException($"{op}: output channels ({k}) must be divisible by groups ({Groups})");
        if (cw * Groups != c)
            throw new ArgumentException(
                $"{op}: weight has {cw} input channels per group, input has {c} channels in {Groups} group(s) (expected weight of shape ({k}, {c / Groups}, {r}, {s}))");
        if (r == 0 || s == 0)
            throw new ArgumentException($"{op}: weight {weight} has an empty dimension");
        long spanH = (long)DilationH * (r - 1) + 1, spanW = (long)DilationW * (s - 1) + 1;
        long paddedH = h + 2L * PadH, paddedW = w + 2L * PadW;
        if (spanH > paddedH || spanW > paddedW)
        {
            string dil = DilationH == DilationW ? $"{DilationH}" : $"{DilationH}x{DilationW}";
            throw new ArgumentException($"{op}: kernel {r}x{s} (dilation {dil}) is larger than the padded input {paddedH}x{paddedW}");
        }
        var (p, q) = OutputSize(h, w, r, s);
        return new Shape(n, k, p, q);
    }

    private static void Positive(string op, int v, string what)
    {
        if (v <= 0) throw new ArgumentException($"{op}: {what} must be positive, got {v}");
    }

    /// <summary>Division rounding towards negative infinity, so a window larger than the padded
    /// input gives an output size of 0 or less (rejected by the ops) rather than 1.</summary>
    internal static int FloorDiv(int a, int b) => (int)Math.Floor((double)a / b);
}

public readonly record struct Pool2dParams(
    int KernelH, int KernelW,
    int StrideH, int StrideW,
    int PadH = 0, int PadW = 0,
    bool CeilMode = false,
    bool CountIncludePad = true)
{
    public static Pool2dParams Of(int kernel, int stride, int padding = 0, bool ceilMode = false, bool countIncludePad = true) =>
        new(kernel, kernel, stride, stride, padding, padding, ceilMode, countIncludePad);

    public (int P, int Q) OutputSize(int h, int w) => (Out(h, KernelH, StrideH, PadH), Out(w, KernelW, StrideW, PadW));

    /// <summary>
    /// The one place for a pooling window's shape rules (as PyTorch's): validates the window against
    /// x (N, C, H, W) and returns the output shape (N, C, P, Q). Used by the ops and the shape trace.
    /// </summary>
    public Shape OutputShape(Shape x, string op)
    {
        ArgumentNullException.ThrowIfNull(x);
        if (x.Rank != 4) throw new ArgumentException($"{op}: x must be 4-d (N, C, H, W), got shape {x}");
        if (KernelH <= 0 || KernelW <= 0)
            throw new ArgumentException($"{op}: kernel size must be positive, got {KernelH}x{KernelW}");
        if (StrideH <= 0 || StrideW <= 0)
            throw new ArgumentException($"{op}: stride must be positive, got {StrideH}x{StrideW}");
        if (PadH < 0 || PadW < 0)
            throw new ArgumentException($"{op}: padding must not be negative, got {PadH}x{PadW}");
        if (PadH > KernelH / 2 || PadW > KernelW / 2)
            throw new ArgumentException($"{op}: padding should be at most half of the kernel size, got padding {PadH}x{PadW} for kernel {KernelH}x{KernelW}");
        int h = x[2], w = x[3];
        var (p, q) = OutputSize(h, w);
        // A window larger than the padded input has no output (OutputSize floors towards minus infinity, giving 0 or less).
        if (p <= 0 || q <= 0)
            throw new ArgumentException($"{op}: output size is too small ({p}x{q}) for input {h}x{w} with kernel {KernelH}x{KernelW}, stride {StrideH}x{StrideW}, padding {PadH}x{PadW}");
        return new Shape(x[0], x[1], p, q);
    }

    private int Out(int n, int k, int s, int p)
    {
        int span = n + 2 * p - k;
        int o = (CeilMode ? -Conv2dParams.FloorDiv(-span, s) : Conv2dParams.FloorDiv(span, s)) + 1;
        // As PyTorch: in ceil mode the last window must start inside the input or left padding.
        if (CeilMode && (o - 1) * s >= n + p) o--;
        return o;
    }
}
