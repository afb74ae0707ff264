// What an eval-mode Conv2d keeps between calls: the weights with the following BatchNorm2d folded
// in (W' = W * gamma / sqrt(var + eps) per output channel, b' = beta + (b - mean) * gamma /
// sqrt(var + eps)) and, where the backend has such a form, those weights prepared for its kernels
// (the CPU backend packs them for its GEMM). Folding computes scale and shift in double.
// Invalidation: the cache records every source tensor (conv weight and bias, the BN's weight,
// bias, running mean and running variance), its storage and the storage's Version, which changes
// whenever anything takes the data's address (an optimizer step, a state-dict load, a training
// forward updating the running statistics, any kernel or host access); a move to another device
// or a dtype conversion replaces the storage or the tensor. Any difference rebuilds the cache
// before the call, so a stale fold is never used. The layer drops the cache when it trains.
using ResidualEngine.Backends;
using ResidualEngine.Pointwise;

namespace ResidualEngine.Nn;

internal sealed class ConvInferenceCache : IDisposable
{
    private readonly object _lock = new();
    private (Tensor Tensor, Storage Storage, long Version)[]? _sources;
    private BatchNorm2d? _bn;
    private double _eps;
    private Tensor? _weight, _bias; // folded, owned (null: the layer's own)
    private PreparedConvWeights? _prepared;

    /// <summary>True while the cache holds a build.</summary>
    public bool IsBuilt => _sources is not null;

    /// <summary>Times the cache was (re)built, for tests.</summary>
    public int Builds { get; private set; }

    public Tensor Forward(Conv2d conv, BatchNorm2d? bn, Tensor x, Tensor? residual, bool relu)
    {
        lock (_lock)
        {
            if (!IsValid(conv, bn)) Build(conv, bn, x.Backend);
            // With prepared weights the layer's weight only supplies the shape (its data is not read).
            var weight = _weight ?? conv.Weight;
            var bias = bn is null ? conv.Bias : _bias;
            return Ops.Conv2dFused(x, weight, bias, conv.Params, residual, relu, _prepared);
        }
    }

    private static IEnumerable<Tensor> Sources(Conv2d conv, BatchNorm2d? bn)
    {
        yield return conv.Weight;
        if (conv.Bias is { } b) yield return b;
        if (bn is null) yield break;
        yield return bn.Weight;
        yield return bn.Bias;
        yield return bn.RunningMean;
        yield return bn.RunningVar;
    }

    private bool IsValid(Conv2d conv, BatchNorm2d? bn)
    {
        if (_sources is null || !ReferenceEquals(_bn, bn) || (bn is not null && bn.Eps != _eps)) return false;
        if (_prepared is { } p && (p.IsDisposed || !p.IsCurrent)) return false;
        int i = 0;
        foreach (var t in Sources(conv, bn))
        {
            if (i >= _sources.Length) return false;
            var (st, ss, sv) = _sources[i++];
            if (!ReferenceEquals(st, t) || t.IsDisposed || !ReferenceEquals(t.Storage, ss) || ss.Version != sv) return false;
        }
        return i == _sources.Length;
    }

    private void Build(Conv2d conv, BatchNorm2d? bn, IBackend backend)
    {
        Release();
        var w = conv.Weight;
        if (bn is not null)
        {
            int k = w.Shape[0];
            var gamma = bn.Weight.ToDoubles();
            var beta = bn.Bias.ToDoubles();
            var mean = bn.RunningMean.ToDoubles();
            var variance = bn.RunningVar.ToDoubles();
            var convBias = conv.Bias?.ToDoubles();
            var scale = new double[k];
            var shift = new double[k];
            for (int i = 0; i < k; i++)
            {
                scale[i] = gamma[i] / Math.Sqrt(variance[i] + bn.Eps);
                shift[i] = beta[i] + ((convBias?[i] ?? 0) - mean[i]) * scale[i];
            }
            using var s = TensorScope.Detach(Tensor.FromDoubles(scale, new Shape(k), w.DType, w.Device));
            _weight = TensorScope.Detach(Tensor.Empty(w.Shape, w.DType, w.Device));
            backend.Map<Mul>(_weight, w, s, Broadcast.Rows(w, k), 0, 0);
            _bias = TensorScope.Detach(Tensor.FromDoubles(shift, new Shape(k), w.DType, w.Device));
        }
        _prepared = backend.PrepareConvWeights(_weight ?? w, conv.Params);
        if (_prepared is not null && _weight is not null)
        {
            // The prepared form is all the kernels read; the folded tensor only gave its values.
            _weight.Dispose();
            _weight = null;
        }
        _bn = bn;
        _eps = bn?.Eps ?? 0;
        // Versions are read after every read above (reading takes the address too).
        _sources = Sources(conv, bn).Select(t => (t, t.Storage, t.Storage.Version)).ToArray();
        Builds++;
    }

    /// <summary>Frees the cached tensors (the next Forward rebuilds them).</summary>
    public void Release()
    {
        lock (_lock)
        {
            _sources = null;
            _bn = null;
            _weight?.Dispose();
            _bias?.Dispose();
            _prepared?.Dispose();
            (_weight, _bias, _prepared) = (null, null, null);
        }
    }

    public void Dispose() => Release();
}
