// Parameter initialisation, in one place, each seeded by a caller's Random so a model built
// twice with the same seed is bit-identical:
//   conv weights  Kaiming normal, fan_out mode, ReLU gain: std = sqrt(2 / (K * R * S))
//                 (as torchvision's ResNet; fan_out ignores groups, as PyTorch does);
//   conv bias     uniform +-1/sqrt(fan_in), fan_in = C/groups * R * S (PyTorch's default);
//   linear        PyTorch's default: weight and bias uniform +-1/sqrt(in_features);
//   batch norm    gamma 1, beta 0, running mean 0, running var 1.
// SkipInitialization() turns every helper into a bare allocation on this thread: a model
// built inside it has the right shapes but undefined values, which is all that counting
// parameters or tracing MACs needs (ModelZoo.Describe builds ResNet-152 that way in
// milliseconds).
namespace ResidualEngine.Nn;

public static class Init
{
    [ThreadStatic] private static int t_skipDepth;

    /// <summary>True while a <see cref="SkipInitialization"/> scope is open on this thread.</summary>
    public static bool IsSkipping => t_skipDepth > 0;

    /// <summary>Until disposed, initialisers allocate without writing values (shape-only builds).</summary>
    public static IDisposable SkipInitialization()
    {
        t_skipDepth++;
        return new Restore();
    }

    /// <summary>Kaiming (He) normal with fan_out = shape[0] * prod(shape[2..]) and gain sqrt(2).</summary>
    public static Tensor KaimingNormalFanOut(Shape shape, Random rng, DType dtype = DType.F32)
    {
        ArgumentNullException.ThrowIfNull(shape);
        ArgumentNullException.ThrowIfNull(rng);
        if (shape.Rank < 2) throw new ArgumentException($"KaimingNormalFanOut: needs a weight of rank >= 2, got shape {shape}", nameof(shape));
        long fanOut = shape[0] * Receptive(shape);
        if (IsSkipping) return Tensor.Empty(shape, dtype);
        return Normal(shape, Math.Sqrt(2.0 / Math.Max(1, fanOut)), rng, dtype);
    }

    /// <summary>Normal(0, std) values, written straight into the tensor. The caller's Random gives
    /// one 64-bit seed per tensor; the values come from a splitmix64 stream through Marsaglia's
    /// polar method (no trigonometry, no virtual call per value): building ResNet-152 draws 60M.</summary>
    public static Tensor Normal(Shape shape, double std, Random rng, DType dtype = DType.F32)
    {
        ArgumentNullException.ThrowIfNull(shape);
        ArgumentNullException.ThrowIfNull(rng);
        if (IsSkipping) return Tensor.Empty(shape, dtype);
        if (dtype is not (DType.F32 or DType.F64)) return Tensor.Randn(shape, rng, dtype, std);
        var t = Tensor.Empty(shape, dtype);
        var g = new SplitMix((ulong)rng.NextInt64(long.MinValue, long.MaxValue));
        if (dtype == DType.F32)
        {
            var dst = t.Span<float>();
            for (int i = 0; i < dst.Length; i += 2)
            {
                var (a, b) = g.NormalPair();
                dst[i] = (float)(std * a);
                if (i + 1 < dst.Length) dst[i + 1] = (float)(std * b);
            }
        }
        else
        {
            var dst = t.Span<double>();
            for (int i = 0; i < dst.Length; i += 2)
            {
                var (a, b) = g.NormalPair();
                dst[i] = std * a;
                if (i + 1 < dst.Length) dst[i + 1] = std * b;
            }
        }
        return t;
    }

    /// <summary>splitmix64: a tiny, fast, well-mixed 64-bit generator (one add and three xor-multiplies per value).</summary>
    private struct SplitMix(ulong state)
    {
        private ulong _state = state;

        private ulong Next()
        {
            unchecked
            {
                ulong z = _state += 0x9E3779B97F4A7C15UL;
                z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
                z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
                return z ^ (z >> 31);
            }
        }

        /// <summary>Uniform in (-1, 1) from the top 53 bits.</summary>
        private double Symmetric() => (Next() >> 11) * (2.0 / (1UL << 53)) - 1;

        /// <summary>Two independent standard normal values (Marsaglia's polar method).</summary>
        public (double, double) NormalPair()
        {
            double u, v, s;
            do
            {
                u = Symmetric();
                v = Symmetric();
                s = u * u + v * v;
            } while (s >= 1 || s == 0);
            double f = Math.Sqrt(-2 * Math.Log(s) / s);
            return (u * f, v * f);
        }
    }

    /// <summary>Uniform(-bound, bound) with bound = 1/sqrt(fanIn) (PyTorch's default for linear layers and conv biases).</summary>
    public static Tensor UniformFanIn(Shape shape, long fanIn, Random rng, DType dtype = DType.F32)
    {
        ArgumentNullException.ThrowIfNull(shape);
        ArgumentNullException.ThrowIfNull(rng);
        if (fanIn <= 0) throw new ArgumentException($"UniformFanIn: fan-in must be positive, got {fanIn}", nameof(fanIn));
        if (IsSkipping) return Tensor.Empty(shape, dtype);
        double bound = 1.0 / Math.Sqrt(fanIn);
        return Tensor.Rand(shape, rng, -bound, bound, dtype);
    }

    /// <summary>A linear layer's weight (out, in) as PyTorch initialises it.</summary>
    public static Tensor LinearWeight(int outFeatures, int inFeatures, Random rng, DType dtype = DType.F32) =>
        UniformFanIn(new Shape(outFeatures, inFeatures), inFeatures, rng, dtype);

    /// <summary>A linear layer's bias (out) as PyTorch initialises it.</summary>
    public static Tensor LinearBias(int outFeatures, int inFeatures, Random rng, DType dtype = DType.F32) =>
        UniformFanIn(new Shape(outFeatures), inFeatures, rng, dtype);

    /// <summary>A tensor filled with one value (BN gamma = 1, beta = 0, running statistics).</summary>
    public static Tensor Constant(Shape shape, double value, DType dtype = DType.F32)
    {
        ArgumentNullException.ThrowIfNull(shape);
        // Constants are cheap and BN buffers must be valid even in shape-only builds.
        return Tensor.Full(shape, value, dtype);
    }

    /// <summary>Product of the dimensions after the first two (kernel area for a conv weight).</summary>
    private static long Receptive(Shape s)
    {
        long r = 1;
        for (int i = 2; i < s.Rank; i++) r *= s[i];
        return r;
    }

    private sealed class Restore : IDisposable
    {
        private bool _done;
        public void Dispose()
        {
            if (_done) return;
            _done = true;
            t_skipDepth--;
        }
    }
}
