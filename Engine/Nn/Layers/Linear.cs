// Fully connected layer: weight (out, in), bias (out), both initialised as PyTorch's default
// (uniform +-1/sqrt(in)). State-dict names "weight" and "bias", as torch.nn.Linear.
namespace ResidualEngine.Nn;

public sealed class Linear : Module
{
    /// <param name="rng">Seeds the initial weights; null uses a fixed seed of 0.</param>
    public Linear(int inFeatures, int outFeatures, bool bias = true, Random? rng = null, DType dtype = DType.F32)
    {
        Conv2d.Positive(inFeatures, nameof(inFeatures));
        Conv2d.Positive(outFeatures, nameof(outFeatures));
        rng ??= new Random(0);
        InFeatures = inFeatures;
        OutFeatures = outFeatures;
        HasBias = bias;
        RegisterParameter("weight", Init.LinearWeight(outFeatures, inFeatures, rng, dtype));
        if (bias) RegisterParameter("bias", Init.LinearBias(outFeatures, inFeatures, rng, dtype));
    }

    public int InFeatures { get; }
    public int OutFeatures { get; }
    public bool HasBias { get; }

    public Tensor Weight => GetParameter("weight");
    public Tensor? Bias => HasBias ? GetParameter("bias") : null;

    public override Tensor Forward(Tensor x) => Ops.Linear(x, Weight, Bias);

    public override Shape Trace(Shape input, ShapeTrace trace)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(trace);
        input.RequireRank(2, "Linear input");
        if (input[1] != InFeatures)
            throw new ArgumentException($"Linear: input has {input[1]} features, the layer expects {InFeatures}");
        trace.AddMacs((long)input[0] * InFeatures * OutFeatures);
        return new Shape(input[0], OutFeatures);
    }

    public override string ToString() => $"Linear({InFeatures}, {OutFeatures}{(HasBias ? "" : ", no bias")})";
}
