// Parameter-free layers: ReLU, Identity, Flatten, MaxPool2d and AdaptiveAvgPool2d (output 1x1
// only, which is what every ResNet head uses). Each is a thin wrapper over its op so that a
// network can be written as data (a Sequential of modules) and traced for shapes.
using ResidualEngine.Backends;

namespace ResidualEngine.Nn;

public sealed class ReLU : Module
{
    public override Tensor Forward(Tensor x) => Ops.Relu(x);
    public override Shape Trace(Shape input, ShapeTrace trace) => input;
    public override string ToString() => "ReLU()";
}

public sealed class Identity : Module
{
    /// <summary>A new handle to x (no copy, same autograd history): the caller owns what Forward returns.</summary>
    public override Tensor Forward(Tensor x) => x.Alias();
    public override Shape Trace(Shape input, ShapeTrace trace) => input;
    public override string ToString() => "Identity()";
}

public sealed class Flatten(int startDim = 1) : Module
{
    public int StartDim { get; } = startDim >= 0 ? startDim : throw new ArgumentException($"Flatten: startDim must not be negative, got {startDim}", nameof(startDim));

    public override Tensor Forward(Tensor x) => Ops.Flatten(x, StartDim);

    public override Shape Trace(Shape input, ShapeTrace trace)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (StartDim >= Math.Max(1, input.Rank))
            throw new ArgumentException($"Flatten: startDim {StartDim} is out of range for shape {input}");
        var d = new int[StartDim + 1];
        for (int i = 0; i < StartDim; i++) d[i] = input[i];
        long rest = 1;
        for (int i = StartDim; i < input.Rank; i++) rest *= input[i];
        d[StartDim] = checked((int)rest);
        return new Shape(d);
    }

    public override string ToString() => $"Flatten({StartDim})";
}

public sealed class MaxPool2d : Module
{
    public MaxPool2d(int kernelSize, int? stride = null, int padding = 0, bool ceilMode = false)
    {
        Conv2d.Positive(kernelSize, nameof(kernelSize));
        if (stride is { } s) Conv2d.Positive(s, nameof(stride));
        if (padding < 0 || 2 * padding > kernelSize)
            throw new ArgumentException($"MaxPool2d: padding must be between 0 and half the kernel ({kernelSize}), got {padding}", nameof(padding));
        Params = Pool2dParams.Of(kernelSize, stride ?? kernelSize, padding, ceilMode);
    }

    public Pool2dParams Params { get; }

    public override Tensor Forward(Tensor x) => Ops.MaxPool2d(x, Params);

    public override Shape Trace(Shape input, ShapeTrace trace)
    {
        ArgumentNullException.ThrowIfNull(input);
        return Params.OutputShape(input, "MaxPool2d");
    }

    public override string ToString() => $"MaxPool2d(kernel={Params.KernelH}, stride={Params.StrideH}, padding={Params.PadH})";
}

public sealed class AdaptiveAvgPool2d : Module
{
    public AdaptiveAvgPool2d(int outputSize = 1)
    {
        if (outputSize != 1)
            throw new NotSupportedException($"AdaptiveAvgPool2d: only output size 1 (global average pooling) is supported, got {outputSize}");
    }

    public override Tensor Forward(Tensor x) => Ops.GlobalAvgPool2d(x);

    public override Shape Trace(Shape input, ShapeTrace trace)
    {
        ArgumentNullException.ThrowIfNull(input);
        input.RequireRank(4, "AdaptiveAvgPool2d input");
        return new Shape(input[0], input[1], 1, 1);
    }

    public override string ToString() => "AdaptiveAvgPool2d(1)";
}
