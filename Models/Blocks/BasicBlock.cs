// Basic residual block (He et al. 2015, two 3x3 convs): conv1 (stride) -> bn1 -> relu ->
// conv2 -> bn2 -> [se] -> + shortcut -> relu. Names as torchvision's: conv1, bn1, conv2,
// bn2, downsample.0 (1x1 conv) / downsample.1 (BN). Plain: the same without the sum.
using ResidualEngine.Nn;

namespace ResidualEngine.Models;

public sealed class BasicBlock : ResidualBlock
{
    public const int Expansion = 1;

    public BasicBlock(BlockArgs args) : base(args, Expansion)
    {
        var (rng, dt) = (args.Rng, args.DType);
        Conv1 = RegisterModule("conv1", new Conv2d(InChannels, args.Planes, 3, stride: Stride, padding: 1, rng: rng, dtype: dt));
        Bn1 = RegisterModule("bn1", new BatchNorm2d(args.Planes, dtype: dt));
        Conv2 = RegisterModule("conv2", new Conv2d(args.Planes, OutChannels, 3, padding: 1, rng: rng, dtype: dt));
        Bn2 = RegisterModule("bn2", new BatchNorm2d(OutChannels, dtype: dt));
        RegisterTail();
        if (args.Config.ZeroInitResidual) ZeroGamma(Bn2);
    }

    public Conv2d Conv1 { get; }
    public BatchNorm2d Bn1 { get; }
    public Conv2d Conv2 { get; }
    public BatchNorm2d Bn2 { get; }

    public override Tensor Forward(Tensor x)
    {
        return Conv1.Forward(x, Bn1, relu: true).Then(h => CloseBranch(Conv2, Bn2, h, x, x));
    }

    public override Shape Trace(Shape input, ShapeTrace trace)
    {
        var s = Bn1.Trace(Conv1.Trace(input, trace), trace);
        s = Bn2.Trace(Conv2.Trace(s, trace), trace);
        return TraceMerge(s, input, trace);
    }
}
