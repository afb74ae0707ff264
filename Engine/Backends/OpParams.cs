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

    private int Out(int n, int k, int s, int p)
    {
        int span = n + 2 * p - k;
        int o = (CeilMode ? -Conv2dParams.FloorDiv(-span, s) : Conv2dParams.FloorDiv(span, s)) + 1;
        // As PyTorch: in ceil mode the last window must start inside the input or left padding.
        if (CeilMode && (o - 1) * s >= n + p) o--;
        return o;
    }
}
