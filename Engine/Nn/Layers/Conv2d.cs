// Convolution layer: weight (K, C/groups, R, S) with Kaiming normal (fan_out) initialisation,
// optional bias (K). State-dict names "weight" and "bias", as torch.nn.Conv2d.
// Forward(x, bn, residual, relu) is a block's "conv -> bn -> [+ shortcut] -> [relu]" in one call:
// in training (or whenever a gradient is recorded) the conv op and then the BN layer's fused
// bn + activation; in eval mode without a gradient, one fused convolution with the BN folded into
// the weights and bias and the rest done by the convolution's epilogue, from weights folded and
// prepared once (ConvInferenceCache) and rebuilt whenever any of their sources changes.
using ResidualEngine.Autograd;
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

    private ConvInferenceCache? _inference;

    public override Tensor Forward(Tensor x) => Forward(x, null);

    /// <summary>act(bn(conv(x)) + residual): <paramref name="bn"/> and <paramref name="residual"/> optional,
    /// act = ReLU when <paramref name="relu"/>. See the file comment for how it runs in training and in eval.</summary>
    public Tensor Forward(Tensor x, BatchNorm2d? bn, Tensor? residual = null, bool relu = false)
    {
        ArgumentNullException.ThrowIfNull(x);
        if (CanFold(x, bn, residual)) return (_inference ??= new ConvInferenceCache()).Forward(this, bn, x, residual, relu);
        // Training changes the weights: a cache kept from an earlier evaluation would only hold memory.
        if (Training) _inference?.Release();
        var y = Ops.Conv2d(x, Weight, Bias, Params);
        if (bn is not null) return y.Then(t => bn.Forward(t, residual, relu));
        if (residual is not null) return y.Then(t => relu ? Ops.AddRelu(t, residual) : Ops.Add(t, residual));
        return relu ? y.Then(Ops.Relu) : y;
    }

    /// <summary>Times the eval-mode cache of folded/prepared weights was built (tests check invalidation with it).</summary>
    internal int InferenceBuilds => _inference?.Builds ?? 0;

    /// <summary>True while folded/prepared weights are held (tests).</summary>
    internal bool HasInferenceCache => _inference?.IsBuilt ?? false;

    /// <summary>Eval mode, no gradient to record, and tensors the fused path takes (F32/F64, NCHW, one device and dtype).</summary>
    private bool CanFold(Tensor x, BatchNorm2d? bn, Tensor? residual)
    {
        if (Training || (bn is not null && bn.Training)) return false;
        var w = Weight;
        if (x.IsDisposed || x.DType != w.DType || x.DType is not (DType.F32 or DType.F64) || x.Device != w.Device) return false;
        if (x.Format != MemoryFormat.Contiguous || x.Rank != 4) return false;
        if (GradMode.ShouldRecord([x, w, Bias, residual])) return false;
        if (bn is not null && (GradMode.ShouldRecord(bn.Weight, bn.Bias) || bn.Weight.DType != w.DType || bn.NumFeatures != OutChannels)) return false;
        return residual is null || residual.Format == MemoryFormat.Contiguous;
    }

    protected override void OnStateChanged() => _inference?.Release();

    public override void Dispose()
    {
        _inference?.Dispose();
        base.Dispose();
    }

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
