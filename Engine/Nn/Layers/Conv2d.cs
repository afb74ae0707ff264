// Convolution layer: weight (K, C/groups, R, S) with Kaiming normal (fan_out) initialisation,
// optional bias (K). State-dict names "weight" and "bias", as torch.nn.Conv2d.
using ResidualEngine.Backends;

namespace ResidualEngine.Nn;

public sealed class Conv2d : Module
{
    /// <param name="rng">Seeds the initial weights; null uses a fixed seed of 0.</param>
    public Conv2d(int inChannels, int outChannels, int kernelSize, int stride = 1, int padding = 0, int groups = 1,
        bool bias = false, int dilation = 1, Random? rng = null, DType dtype = DType.F32)
    {
        Positive(inChannels, nameof(inChannels));
        Positive(outChannels, nameof(outChannels));
        Positive(kernelSize, nameof(kernelSize));
        Positive(stride, nameof(stride));
        Positive(groups, nameof(groups));
        Positive(dilation, nameof(dilation));
        if (padding < 0) throw new ArgumentException($"Conv2d: padding must not be negative, got {padding}", nameof(padding));
        if (inChannels % groups != 0 || outChannels % groups != 0)
            throw new ArgumentException($"Conv2d: {inChannels} input and {outChannels} output channels must both be divisible by groups = {groups}", nameof(groups));
        rng ??= new Random(0);
        InChannels = inChannels;
        OutChannels = outChannels;
        KernelSize = kernelSize;
        Params = Conv2dParams.Of(stride, padding, dilation, groups);
        var wShape = new Shape(outChannels, inChannels / groups, kernelSize, kernelSize); // (K, C/groups, R, S)
        RegisterParameter("weight", Init.KaimingNormalFanOut(wShape, rng, dtype));
        if (bias)
            RegisterParameter("bias", Init.UniformFanIn(new Shape(outChannels), (long)inChannels / groups * kernelSize * kernelSize, rng, dtype));
        HasBias = bias;
    }

    public int InChannels { get; }
    public int OutChannels { get; }
    public int KernelSize { get; }
    public Conv2dParams Params { get; }
    public bool HasBias { get; }

    public Tensor Weight => GetParameter("weight");
    public Tensor? Bias => HasBias ? GetParameter("bias") : null;

    public override Tensor Forward(Tensor x) => Ops.Conv2d(x, Weight, Bias, Params);

    public override Shape Trace(Shape input, ShapeTrace trace)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(trace);
        var y = Params.OutputShape(input, Weight.Shape);
        trace.AddMacs(y.Numel * (InChannels / Params.Groups) * KernelSize * KernelSize);
        return y;
    }

    public override string ToString() =>
        $"Conv2d({InChannels}, {OutChannels}, kernel={KernelSize}, stride={Params.StrideH}, padding={Params.PadH}" +
        (Params.Groups != 1 ? $", groups={Params.Groups}" : "") + (HasBias ? ", bias" : "") + ")";

    internal static void Positive(int v, string name)
    {
        if (v <= 0) throw new ArgumentException($"{name} must be positive, got {v}", name);
    }
}
