// Bottleneck block, torchvision's "v1.5" (stride on the 3x3, not the first 1x1):
// conv1 1x1 -> bn1 -> relu -> conv2 3x3 (stride, groups) -> bn2 -> relu -> conv3 1x1 (x4) ->
// bn3 -> [se] -> + shortcut -> relu. Inner width = floor(planes * widthPerGroup / 64) * groups,
// which gives ResNeXt (groups 32, 4 per group) and Wide ResNet (128 per group) from one block.
using ResidualEngine.Nn;

namespace ResidualEngine.Models;

public sealed class Bottleneck : ResidualBlock
{
    public const int Expansion = 4;

    public Bottleneck(BlockArgs args) : base(args, Expansion)
    {
        var (rng, dt, cfg) = (args.Rng, args.DType, args.Config);
        Width = cfg.BottleneckWidth(args.Planes);
        Conv1 = RegisterModule("conv1", new Conv2d(InChannels, Width, 1, rng: rng, dtype: dt));
        Bn1 = RegisterModule("bn1", new BatchNorm2d(Width, dtype: dt));
        Conv2 = RegisterModule("conv2", new Conv2d(Width, Width, 3, stride: Stride, padding: 1, groups: cfg.Groups, rng: rng, dtype: dt));
        Bn2 = RegisterModule("bn2", new BatchNorm2d(Width, dtype: dt));
        Conv3 = RegisterModule("conv3", new Conv2d(Width, OutChannels, 1, rng: rng, dtype: dt));
        Bn3 = RegisterModule("bn3", new BatchNorm2d(OutChannels, dtype: dt));
        RegisterTail();
        if (cfg.ZeroInitResidual) ZeroGamma(Bn3);
    }

    public int Width { get; }
    public Conv2d Conv1 { get; }
    public BatchNorm2d Bn1 { get; }
    public Conv2d Conv2 { get; }
    public BatchNorm2d Bn2 { get; }
    public Conv2d Conv3 { get; }
    public BatchNorm2d Bn3 { get; }

    public override Tensor Forward(Tensor x)
    {
        return Conv1.Forward(x, Bn1, relu: true)
            .Then(h => Conv2.Forward(h, Bn2, relu: true))
            .Then(h => CloseBranch(Conv3, Bn3, h, x, x));
    }

    public override Shape Trace(Shape input, ShapeTrace trace)
    {
        var s = Bn1.Trace(Conv1.Trace(input, trace), trace);
        s = Bn2.Trace(Conv2.Trace(s, trace), trace);
        s = Bn3.Trace(Conv3.Trace(s, trace), trace);
        return TraceMerge(s, input, trace);
    }
}
