// What every block shares: the constructor arguments (BlockArgs), the shortcut (identity,
// option-A zero padding, or a 1x1 projection named "downsample" as torchvision's), and the
// tail of the residual branch: squeeze-and-excitation, 1/sqrt(L) scaling, drop-path, then
// the sum. Subclasses build their convolutions and write Forward/Trace explicitly, in the
// order the paper draws them.
using ResidualEngine.Nn;

namespace ResidualEngine.Models;

/// <summary>The one constructor argument of every block type.</summary>
/// <param name="InPlanes">Channels coming in.</param>
/// <param name="Planes">Width of the block before expansion (its output is Planes * Expansion).</param>
/// <param name="Stride">Stride of the block's spatial conv (2 at the first block of a stage).</param>
/// <param name="Config">The network's configuration (shortcut option, groups, SE, plain, ...).</param>
/// <param name="Rng">Seeds the initial weights.</param>
/// <param name="DropPathRate">This block's drop probability (0 for none).</param>
/// <param name="DropPathRng">Draws the per-sample drop-path masks in training.</param>
/// <param name="ResidualScale">Multiplier of the residual branch (1, or 1/sqrt(L)).</param>
public sealed record BlockArgs(int InPlanes, int Planes, int Stride, ResNetConfig Config, Random Rng,
    double DropPathRate = 0, Random? DropPathRng = null, double ResidualScale = 1.0, DType DType = DType.F32);

public abstract class ResidualBlock : Module
{
    private readonly SqueezeExcitation? _se;
    private readonly Sequential? _downsample;
    private readonly Random? _dropRng;

    protected ResidualBlock(BlockArgs a, int expansion)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(a.Config);
        ArgumentNullException.ThrowIfNull(a.Rng);
        if (a.InPlanes < 1 || a.Planes < 1) throw new ArgumentException($"{GetType().Name}: planes must be positive (in {a.InPlanes}, planes {a.Planes})");
        if (a.Stride < 1) throw new ArgumentException($"{GetType().Name}: stride must be positive, got {a.Stride}");
        if (!(a.DropPathRate >= 0 && a.DropPathRate < 1)) throw new ArgumentException($"{GetType().Name}: drop-path rate must be in [0, 1), got {a.DropPathRate}");
        if (a.DropPathRate > 0 && a.Config.Plain) throw new ArgumentException($"{GetType().Name}: drop-path needs a shortcut, but the network is plain");
        // Every check comes before the first allocation, so a rejected block leaves nothing behind.
        var cfg = a.Config;
        if (expansion == 1 && (cfg.Groups != 1 || cfg.WidthPerGroup != 64))
            throw new ArgumentException($"{GetType().Name}: basic blocks support only groups = 1 and width per group = 64 (got {cfg.Groups}, {cfg.WidthPerGroup})");
        if (expansion != 1 && cfg.Shortcut == ShortcutOption.A && !cfg.Plain)
            throw new ArgumentException($"{GetType().Name}: option A (zero-padding) shortcuts are defined for basic blocks only; use option B or C");
        if (expansion != 1 && cfg.BottleneckWidth(a.Planes) < Math.Max(1, cfg.Groups))
            throw new ArgumentException($"{GetType().Name}: width {cfg.BottleneckWidth(a.Planes)} of {a.Planes} planes is smaller than groups = {cfg.Groups}");
        Args = a;
        InChannels = a.InPlanes;
        OutChannels = a.Planes * expansion;
        Stride = a.Stride;
        Plain = a.Config.Plain;
        PreActivation = a.Config.PreActivation;
        if (a.DropPathRate > 0) _dropRng = a.DropPathRng ?? throw new ArgumentException($"{GetType().Name}: drop-path rate {a.DropPathRate} needs a DropPathRng");
        bool changes = Stride != 1 || InChannels != OutChannels;
        Shortcut = Plain ? ShortcutKind.None
            : a.Config.Shortcut switch
            {
                ShortcutOption.A => changes ? ShortcutKind.ZeroPad : ShortcutKind.Identity,
                ShortcutOption.B => changes ? ShortcutKind.Projection : ShortcutKind.Identity,
                _ => ShortcutKind.Projection,
            };
        if (Shortcut == ShortcutKind.ZeroPad && OutChannels < InChannels)
            throw new ArgumentException($"{GetType().Name}: an option-A shortcut cannot reduce channels ({InChannels} -> {OutChannels})");
        if (a.Config.SqueezeExcitation)
            _se = new SqueezeExcitation(OutChannels, a.Config.SeReduction, a.Rng, a.DType);
        if (Shortcut == ShortcutKind.Projection)
        {
            // Post-activation: conv + BN (torchvision's downsample.0 / downsample.1). Pre-activation:
            // the conv alone, applied to the already normalised and activated input (He et al. 2016).
            var conv = new Conv2d(InChannels, OutChannels, 1, stride: Stride, rng: a.Rng, dtype: a.DType);
            _downsample = PreActivation ? new Sequential(conv) : new Sequential(conv, new BatchNorm2d(OutChannels, dtype: a.DType));
        }
    }

    /// <summary>How the block's input reaches its output.</summary>
    public enum ShortcutKind
    {
        None,
        Identity,
        ZeroPad,
        Projection,
    }

    public BlockArgs Args { get; }
    public int InChannels { get; }
    public int OutChannels { get; }
    public int Stride { get; }
    public bool Plain { get; }
    public bool PreActivation { get; }
    public ShortcutKind Shortcut { get; }

    /// <summary>Registers the members that follow the convolutions (torchvision/timm order: se, then downsample).</summary>
    protected void RegisterTail()
    {
        if (_se is not null) RegisterModule("se", _se);
        if (_downsample is not null) RegisterModule("downsample", _downsample);
    }

    /// <summary>Sets a branch-closing BN's gamma to zero (post-activation zero-init).</summary>
    protected static void ZeroGamma(BatchNorm2d bn)
    {
        ArgumentNullException.ThrowIfNull(bn);
        bn.Weight.Backend.Fill(bn.Weight, 0);
    }

    /// <summary>Sets a branch-closing conv's weight to zero (pre-activation zero-init: zeroing the BN
    /// before a ReLU would also zero the gradient that could revive it).</summary>
    protected static void ZeroWeight(Conv2d conv)
    {
        ArgumentNullException.ThrowIfNull(conv);
        conv.Weight.Backend.Fill(conv.Weight, 0);
    }

    /// <summary>The shortcut's value. <paramref name="preActivated"/> is what a pre-activation projection sees.</summary>
    protected Tensor ShortcutOf(Tensor x, Tensor preActivated) => Shortcut switch
    {
        ShortcutKind.Identity => x.Alias(),
        ShortcutKind.ZeroPad => Ops.ShortcutA(x, OutChannels, Stride),
        ShortcutKind.Projection => Project(PreActivation ? preActivated : x),
        _ => throw new InvalidOperationException($"{GetType().Name}: a plain block has no shortcut"),
    };

    /// <summary>The projection shortcut: its conv with its BN (post-activation) as one call, so that in eval
    /// mode the BN is folded into the conv.</summary>
    private Tensor Project(Tensor x)
    {
        var conv = (Conv2d)_downsample![0];
        return conv.Forward(x, _downsample.Count > 1 ? (BatchNorm2d)_downsample[1] : null);
    }

    /// <summary>
    /// The branch's last convolution (and its BN, when it has one) followed by the merge with the
    /// shortcut. When nothing stands between them (no SE, residual scaling or drop-path), the sum
    /// and the final ReLU are fused into that BN (training) or into the convolution's epilogue
    /// (eval, BN folded); otherwise this is Merge of the branch. Consumes nothing: h belongs to the caller.
    /// </summary>
    protected Tensor CloseBranch(Conv2d conv, BatchNorm2d? bn, Tensor h, Tensor x, Tensor preActivated)
    {
        ArgumentNullException.ThrowIfNull(conv);
        bool act = !PreActivation;
        if (_se is null && Plain) return conv.Forward(h, bn, null, act);
        if (_se is not null || Args.ResidualScale != 1.0 || (Training && _dropRng is not null))
            return Merge(conv.Forward(h, bn), x, preActivated);
        using var sc = ShortcutOf(x, preActivated);
        return conv.Forward(h, bn, sc, act);
    }

    /// <summary>SE, scaling and drop-path on the branch, then the sum with the shortcut (and the final
    /// ReLU for post-activation blocks). A plain block returns the branch, activated when post-activation.
    /// Consumes <paramref name="branch"/> (its handle is disposed); x and preActivated belong to the caller.</summary>
    protected Tensor Merge(Tensor branch, Tensor x, Tensor preActivated)
    {
        if (_se is not null) branch = branch.Then(_se.Forward);
        if (Plain) return PreActivation ? branch : branch.Then(Ops.Relu);
        if (Args.ResidualScale != 1.0) branch = branch.Then(b => Ops.Scale(b, Args.ResidualScale));
        if (Training && _dropRng is not null) branch = branch.Then(DropPath);
        using var sc = ShortcutOf(x, preActivated);
        return branch.Then(b => PreActivation ? Ops.Add(b, sc) : Ops.AddRelu(b, sc));
    }

    /// <summary>Zeroes the whole branch of each sample with probability p and scales survivors by 1/(1-p).</summary>
    private Tensor DropPath(Tensor branch)
    {
        double keep = 1 - Args.DropPathRate;
        int n = branch.Shape[0];
        var mask = new double[n];
        for (int i = 0; i < n; i++) mask[i] = _dropRng!.NextDouble() < keep ? 1 / keep : 0;
        using var m = Tensor.FromDoubles(mask, new Shape(n), branch.DType, branch.Device);
        return Ops.ScaleRows(branch, m);
    }

    /// <summary>Shape check of the merge for Trace: branch and shortcut must agree.</summary>
    protected Shape TraceMerge(Shape branch, Shape input, ShapeTrace trace)
    {
        ArgumentNullException.ThrowIfNull(branch);
        ArgumentNullException.ThrowIfNull(input);
        if (_se is not null) branch = _se.Trace(branch, trace);
        Shape? sc = Shortcut switch
        {
            ShortcutKind.None => null,
            ShortcutKind.Identity => input,
            ShortcutKind.ZeroPad => new Shape(input[0], OutChannels, (input[2] + Stride - 1) / Stride, (input[3] + Stride - 1) / Stride),
            _ => _downsample!.Trace(input, trace),
        };
        if (sc is not null && sc != branch)
            throw new ArgumentException($"{GetType().Name}: residual branch gives {branch} but the shortcut gives {sc} for input {input}");
        return branch;
    }

    public override string ToString() =>
        $"{GetType().Name}({InChannels} -> {OutChannels}, stride {Stride}, shortcut {Shortcut})";
}
