// Full pre-activation bottleneck (He et al. 2016), the unit of pre-activation ResNet-164/1001:
//   pre = relu(bn1(x)); y = conv1 1x1 (pre); y = conv2 3x3 stride (relu(bn2(y)));
//   y = conv3 1x1 x4 (relu(bn3(y))); out = y + shortcut, no ReLU after the sum.
// The identity shortcut carries x; a projection (downsample.0, 1x1 conv, no BN) takes `pre`.
// Names: bn1 before conv1 (InChannels features), bn2 before conv2, bn3 before conv3.
using ResidualEngine.Nn;

namespace ResidualEngine.Models;

public sealed class PreActBottleneck : ResidualBlock
{
    public const int Expansion = 4;

    public PreActBottleneck(BlockArgs args) : base(args, Expansion)
    {
        var (rng, dt, cfg) = (args.Rng, args.DType, args.Config);
        Width = cfg.BottleneckWidth(args.Planes);
        Bn1 = RegisterModule("bn1", new BatchNorm2d(InChannels, dtype: dt));
        Conv1 = RegisterModule("conv1", new Conv2d(InChannels, Width, 1, rng: rng, dtype: dt));
        Bn2 = RegisterModule("bn2", new BatchNorm2d(Width, dtype: dt));
        Conv2 = RegisterModule("conv2", new Conv2d(Width, Width, 3, stride: Stride, padding: 1, groups: cfg.Groups, rng: rng, dtype: dt));
        Bn3 = RegisterModule("bn3", new BatchNorm2d(Width, dtype: dt));
        Conv3 = RegisterModule("conv3", new Conv2d(Width, OutChannels, 1, rng: rng, dtype: dt));
        RegisterTail();
        if (cfg.ZeroInitResidual) ZeroWeight(Conv3);
    }

    public int Width { get; }
    public BatchNorm2d Bn1 { get; }
    public Conv2d Conv1 { get; }
    public BatchNorm2d Bn2 { get; }
    public Conv2d Conv2 { get; }
    public BatchNorm2d Bn3 { get; }
    public Conv2d Conv3 { get; }

    public override Tensor Forward(Tensor x)
    {
        using var pre = Bn1.Forward(x, null, relu: true);
        return Conv1.Forward(pre, Bn2, relu: true)
            .Then(h => Conv2.Forward(h, Bn3, relu: true))
            .Then(h => CloseBranch(Conv3, null, h, x, pre));
    }

    public override Shape Trace(Shape input, ShapeTrace trace)
    {
        var s = Conv1.Trace(Bn1.Trace(input, trace), trace);
        s = Conv2.Trace(Bn2.Trace(s, trace), trace);
        s = Conv3.Trace(Bn3.Trace(s, trace), trace);
        return TraceMerge(s, input, trace);
    }
}
