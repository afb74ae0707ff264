// Batch normalisation over (N, H, W) per channel. Parameters weight (gamma, 1) and bias
// (beta, 0); buffers running_mean (0), running_var (1) and num_batches_tracked (an I64 scalar,
// counted up by one per training forward), named as torch.nn.BatchNorm2d so torchvision
// checkpoints load unchanged. The counter is only bookkeeping (momentum is fixed), so on the
// CPU it is bumped in place and on a device it is refilled from a host mirror: no device read
// in the training step. With SyncGroup set (data-parallel training with --sync-bn), training-mode
// statistics are those of every rank's batch together (Ops.SyncBatchNorm2d, torch's SyncBatchNorm).
using ResidualEngine.Distributed;

namespace ResidualEngine.Nn;

public sealed class BatchNorm2d : Module
{
    private long? _trackedHost; // host mirror of num_batches_tracked; null = read it again

    public BatchNorm2d(int numFeatures, double eps = 1e-5, double momentum = 0.1, DType dtype = DType.F32)
    {
        Conv2d.Positive(numFeatures, nameof(numFeatures));
        if (!(eps > 0)) throw new ArgumentException($"BatchNorm2d: eps must be positive, got {eps}", nameof(eps));
        if (!(momentum >= 0 && momentum <= 1)) throw new ArgumentException($"BatchNorm2d: momentum must be in [0, 1], got {momentum}", nameof(momentum));
        NumFeatures = numFeatures;
        Eps = eps;
        Momentum = momentum;
        var c = new Shape(numFeatures);
        RegisterParameter("weight", Init.Constant(c, 1, dtype));
        RegisterParameter("bias", Init.Constant(c, 0, dtype));
        RegisterBuffer("running_mean", Init.Constant(c, 0, dtype));
        RegisterBuffer("running_var", Init.Constant(c, 1, dtype));
        RegisterBuffer("num_batches_tracked", Tensor.Zeros(Shape.Scalar, DType.I64));
    }

    public int NumFeatures { get; }
    public double Eps { get; }
    public double Momentum { get; }

    public Tensor Weight => GetParameter("weight");
    public Tensor Bias => GetParameter("bias");
    public Tensor RunningMean => GetBuffer("running_mean");
    public Tensor RunningVar => GetBuffer("running_var");
    public Tensor NumBatchesTracked => GetBuffer("num_batches_tracked");

    /// <summary>
    /// The ranks whose batches share statistics in training mode (torch.nn.SyncBatchNorm), or null for
    /// this process's batch alone. Code that fuses BN into other ops must not fuse a layer that has one.
    /// </summary>
    public ProcessGroup? SyncGroup { get; set; }

    /// <summary>Sets <see cref="SyncGroup"/> on every BatchNorm2d in <paramref name="root"/> (torch's convert_sync_batchnorm); returns how many.</summary>
    public static int SynchronizeAll(Module root, ProcessGroup? group)
    {
        ArgumentNullException.ThrowIfNull(root);
        int n = 0;
        foreach (var (_, m) in root.NamedModules())
            if (m is BatchNorm2d bn) { bn.SyncGroup = group; n++; }
        return n;
    }

    public override Tensor Forward(Tensor x) => Forward(x, null, false);

    /// <summary>act(bn(x) + residual) in one op (act = ReLU when <paramref name="relu"/>): the "bn -> relu" and
    /// "bn -> + shortcut -> relu" of a residual block in one pass over the activation. With a SyncGroup in
    /// training, the synchronised BN and then the sum and ReLU as separate ops.</summary>
    public Tensor Forward(Tensor x, Tensor? residual, bool relu)
    {
        Tensor y;
        if (Training && SyncGroup is { } g)
        {
            y = Ops.SyncBatchNorm2d(x, Weight, Bias, RunningMean, RunningVar, g, Momentum, Eps);
            if (residual is not null) y = y.Then(t => relu ? Ops.AddRelu(t, residual) : Ops.Add(t, residual));
            else if (relu) y = y.Then(Ops.Relu);
        }
        else y = Ops.BatchNorm2d(x, Weight, Bias, RunningMean, RunningVar, Training, Momentum, Eps, residual, relu);
        if (Training) CountBatch();
        return y;
    }

    private void CountBatch()
    {
        var t = NumBatchesTracked;
        if (t.Device.Type == DeviceType.Cpu)
        {
            t.Span<long>()[0]++;
            return;
        }
        _trackedHost ??= (long)t.Item(); // one read after a load or move, then none
        _trackedHost++;
        t.Backend.Fill(t, _trackedHost.Value);
    }

    protected override void OnStateChanged() => _trackedHost = null;

    public override Shape Trace(Shape input, ShapeTrace trace)
    {
        ArgumentNullException.ThrowIfNull(input);
        input.RequireRank(4, "BatchNorm2d input");
        if (input[1] != NumFeatures)
            throw new ArgumentException($"BatchNorm2d: input has {input[1]} channels, the layer has {NumFeatures}");
        return input;
    }

    public override string ToString() => $"BatchNorm2d({NumFeatures})";
}
