// Full pre-activation basic block (He et al. 2016, "Identity Mappings"):
//   pre = relu(bn1(x)); y = conv2(relu(bn2(conv1(pre)))); out = y + shortcut
// with no ReLU after the sum. The identity shortcut carries x itself; a projection
// (downsample.0, a 1x1 conv without BN) takes `pre`, so the normalisation is shared.
// Names: bn1 sits before conv1 and normalises the block's input (InChannels features);
// bn2 sits between conv1 and conv2.
using ResidualEngine.Nn;

namespace ResidualEngine.Models;

public sealed class PreActBasicBlock : ResidualBlock
{
    public const int Expansion = 1;

    public PreActBasicBlock(BlockArgs args) : base(args, Expansion)
    {
        var (rng, dt) = (args.Rng, args.DType);
        Bn1 = RegisterModule("bn1", new BatchNorm2d(InChannels, dtype: dt));
        Conv1 = RegisterModule("conv1", new Conv2d(InChannels, args.Planes, 3, stride: Stride, padding: 1, rng: rng, dtype: dt));
        Bn2 = RegisterModule("bn2", new BatchNorm2d(args.Planes, dtype: dt));
        Conv2 = RegisterModule("conv2", new Conv2d(args.Planes, OutChannels, 3, padding: 1, rng: rng, dtype: dt));
        RegisterTail();
        if (args.Config.ZeroInitResidual) ZeroWeight(Conv2);
    }

    public BatchNorm2d Bn1 { get; }
    public Conv2d Conv1 { get; }
    public BatchNorm2d Bn2 { get; }
    public Conv2d Conv2 { get; }

    public override Tensor Forward(Tensor x)
    {
        using var pre = Bn1.Forward(x, null, relu: true);
        return Conv1.Forward(pre, Bn2, relu: true).Then(h => CloseBranch(Conv2, null, h, x, pre));
    }

    public override Shape Trace(Shape input, ShapeTrace trace)
    {
        var s = Conv1.Trace(Bn1.Trace(input, trace), trace);
        s = Conv2.Trace(Bn2.Trace(s, trace), trace);
        return TraceMerge(s, input, trace);
    }
}
