// The network builder: reads a ResNetConfig and assembles stem, stages of blocks and head.
// State-dict names are torchvision's for post-activation nets:
//   conv1, bn1, layer1.0.conv1 ... layerK.M.downsample.{0,1}, fc
// and, for pre-activation nets (documented choice, no torchvision counterpart):
//   conv1 (stem conv, no BN: every block normalises its own input), layer1.0.bn1 (before
//   conv1) ..., layerK.M.downsample.0 (1x1 conv only), bn_final (the BN + ReLU before pooling), fc.
// The ImageNet stem is conv 7x7/2 (+ BN + ReLU) + max-pool 3x3/2; the CIFAR stem a 3x3 conv
// (+ BN + ReLU) with no pooling. Max-pool, ReLU and average pool hold no state and are not
// registered, so the state dict lists exactly what torchvision's does.
using ResidualEngine.Nn;

namespace ResidualEngine.Models;

public sealed class ResNet : Module
{
    private readonly List<Sequential> _stages = new();
    private readonly MaxPool2d? _maxPool;
    private readonly SeekableRandom _dropRng;

    /// <summary>Makes the next drop-path masks a pure function of (seed, <paramref name="step"/>), so that a
    /// resumed run draws what an uninterrupted one would (the trainer passes the global step).</summary>
    public void SeekDropPath(long step) => _dropRng.Seek(step);

    /// <param name="seed">Seeds the weights and, separately, the drop-path masks.</param>
    public ResNet(ResNetConfig config, int seed = 0, DType dtype = DType.F32)
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        if (!dtype.IsFloat()) throw new ArgumentException($"ResNet: parameters must be floating point, not {dtype}", nameof(dtype));
        Config = config;
        var rng = new Random(seed);
        var dropRng = _dropRng = new SeekableRandom(unchecked(seed * 7919 + 17));
        try
        {
            (Conv1, Bn1, BnFinal, Fc, Features) = Build(config, rng, dropRng, dtype);
        }
        catch
        {
            Dispose(); // whatever was registered before the failure
            throw;
        }
        if (config.Stem == StemKind.Imagenet) _maxPool = new MaxPool2d(3, 2, 1);
    }

    private (Conv2d, BatchNorm2d?, BatchNorm2d?, Linear, int) Build(ResNetConfig config, Random rng, Random dropRng, DType dtype)
    {
        bool imagenet = config.Stem == StemKind.Imagenet;
        int stem = config.ResolvedStemWidth;
        var conv1 = RegisterModule("conv1", imagenet
            ? new Conv2d(3, stem, 7, stride: 2, padding: 3, rng: rng, dtype: dtype)
            : new Conv2d(3, stem, 3, stride: 1, padding: 1, rng: rng, dtype: dtype));
        var bn1 = config.PreActivation ? null : RegisterModule("bn1", new BatchNorm2d(stem, dtype: dtype));

        int total = config.BlockCount, index = 0, inPlanes = stem;
        double scale = config.ScaleResidual ? 1.0 / Math.Sqrt(total) : 1.0;
        for (int s = 0; s < config.Layers.Count; s++)
        {
            var stage = RegisterModule($"layer{s + 1}", new Sequential()); // registered first: a failing block leaves nothing unowned
            int planes = config.StageWidths[s];
            for (int b = 0; b < config.Layers[s]; b++)
            {
                int stride = s > 0 && b == 0 ? 2 : 1;
                double drop = total > 1 ? config.DropPathRate * index / (total - 1) : 0;
                var args = new BlockArgs(inPlanes, planes, stride, config, rng, drop, dropRng, scale, dtype);
                var block = CreateBlock(args); // a block that throws has allocated nothing
                stage.Add(block);
                inPlanes = block.OutChannels;
                index++;
            }
            _stages.Add(stage);
        }
        var bnFinal = config.PreActivation ? RegisterModule("bn_final", new BatchNorm2d(inPlanes, dtype: dtype)) : null;
        var fc = RegisterModule("fc", new Linear(inPlanes, config.NumClasses, rng: rng, dtype: dtype));
        return (conv1, bn1, bnFinal, fc, inPlanes);
    }

    /// <summary>The block type for a configuration (pre-activation or not, basic or bottleneck).</summary>
    public static ResidualBlock CreateBlock(BlockArgs args)
    {
        ArgumentNullException.ThrowIfNull(args);
        return (args.Config.Block, args.Config.PreActivation) switch
        {
            (BlockKind.Basic, false) => new BasicBlock(args),
            (BlockKind.Bottleneck, false) => new Bottleneck(args),
            (BlockKind.Basic, true) => new PreActBasicBlock(args),
            (BlockKind.Bottleneck, true) => new PreActBottleneck(args),
            _ => throw new ArgumentException($"ResNet: unknown block kind {args.Config.Block}"),
        };
    }

    public ResNetConfig Config { get; }
    public int NativeImageSize => Config.NativeImageSize;
    /// <summary>Channels entering the classifier.</summary>
    public int Features { get; }
    public Conv2d Conv1 { get; }
    public BatchNorm2d? Bn1 { get; }
    public BatchNorm2d? BnFinal { get; }
    public Linear Fc { get; }
    public IReadOnlyList<Sequential> Stages => _stages;
    public IEnumerable<ResidualBlock> Blocks => _stages.SelectMany(s => s.Layers.Cast<ResidualBlock>());

    /// <summary>Images (N, 3, H, W) to logits (N, classes).</summary>
    public override Tensor Forward(Tensor x)
    {
        ArgumentNullException.ThrowIfNull(x);
        if (x.Rank != 4 || x.Shape[1] != 3)
            throw new ArgumentException($"{Config.Name}: expects images of shape (N, 3, H, W), got {x.Shape}", nameof(x));
        // Every intermediate is disposed as soon as the next layer has consumed it (Then).
        var y = Conv1.Forward(x, Bn1, relu: Bn1 is not null);
        if (_maxPool is not null) y = y.Then(_maxPool.Forward);
        foreach (var stage in _stages) y = y.Then(stage.Forward);
        if (BnFinal is not null) y = y.Then(t => BnFinal.Forward(t, null, relu: true));
        return y.Then(Ops.GlobalAvgPool2d).Then(t => Ops.Flatten(t, 1)).Then(Fc.Forward);
    }

    public override Shape Trace(Shape input, ShapeTrace trace)
    {
        ArgumentNullException.ThrowIfNull(input);
        input.RequireRank(4, $"{Config.Name} input");
        var s = Conv1.Trace(input, trace);
        if (Bn1 is not null) s = Bn1.Trace(s, trace);
        if (_maxPool is not null) s = _maxPool.Trace(s, trace);
        foreach (var stage in _stages) s = stage.Trace(s, trace);
        if (BnFinal is not null) s = BnFinal.Trace(s, trace);
        return Fc.Trace(new Shape(s[0], s[1]), trace);
    }

    /// <summary>Multiply-accumulates of a forward pass of <paramref name="batch"/> images at the given size (native size by default).</summary>
    public long ForwardMacs(int? imageSize = null, int batch = 1)
    {
        int hw = imageSize ?? NativeImageSize;
        var trace = new ShapeTrace();
        Trace(new Shape(batch, 3, hw, hw), trace);
        return trace.Macs;
    }

    public override string ToString() => Config.Describe();
}
