// Squeeze-and-excitation (Hu et al. 2018): global average pool, 1x1 conv down by the
// reduction (with bias), ReLU, 1x1 conv back up (with bias), sigmoid, and a per-channel gate
// through Ops.ScaleRows. Named "se.fc1" / "se.fc2" with conv-shaped weights (C', C, 1, 1), as
// timm's SE-ResNets, so their checkpoints map one to one.
using ResidualEngine.Nn;

namespace ResidualEngine.Models;

public sealed class SqueezeExcitation : Module
{
    public SqueezeExcitation(int channels, int reduction, Random rng, DType dtype = DType.F32)
    {
        if (channels < 1) throw new ArgumentException($"SqueezeExcitation: channels must be positive, got {channels}", nameof(channels));
        if (reduction < 1) throw new ArgumentException($"SqueezeExcitation: reduction must be positive, got {reduction}", nameof(reduction));
        Channels = channels;
        Reduced = Math.Max(1, channels / reduction);
        Fc1 = RegisterModule("fc1", new Conv2d(channels, Reduced, 1, bias: true, rng: rng, dtype: dtype));
        Fc2 = RegisterModule("fc2", new Conv2d(Reduced, channels, 1, bias: true, rng: rng, dtype: dtype));
    }

    public int Channels { get; }
    public int Reduced { get; }
    public Conv2d Fc1 { get; }
    public Conv2d Fc2 { get; }

    public override Tensor Forward(Tensor x)
    {
        var s = Ops.GlobalAvgPool2d(x)             // (N, C, 1, 1)
            .Then(Fc1.Forward).Then(Ops.Relu)      // (N, C', 1, 1)
            .Then(Fc2.Forward).Then(Ops.Sigmoid);  // (N, C, 1, 1)
        return s.Then(gate => Ops.ScaleRows(x, gate));
    }

    public override Shape Trace(Shape input, ShapeTrace trace)
    {
        ArgumentNullException.ThrowIfNull(input);
        input.RequireRank(4, "SqueezeExcitation input");
        var pooled = new Shape(input[0], input[1], 1, 1);
        Fc2.Trace(Fc1.Trace(pooled, trace), trace);
        return input;
    }
}
