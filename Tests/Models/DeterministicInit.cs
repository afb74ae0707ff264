// The counter-based weight generator shared with Tools/reference/make_fixtures.py, so whole-model
// parity tests need no stored weights: both sides fill a state dict from (position, name, shape).
//   mix(z) = splitmix64's finaliser; u(seed, i) = (mix(seed + (i + 1) * golden) >> 11) * 2^-53
//   k-th state-dict entry: seed = 1000003 (k + 1), v = 2u - 1, and by name / rank:
//   rank >= 2: v sqrt(3 / fan_in) (fan_in = numel / shape[0]); BN weight 1 + 0.1 v; BN bias 0.1 v;
//   running_mean 0.1 v; running_var 1 + 0.25 u; num_batches_tracked 0; other rank 1: 0.1 v.
// Values are computed in double and converted to the tensor's dtype (float32: round to nearest, as numpy).
namespace ResidualEngine.Tests.Models;

public static class DeterministicInit
{
    private const ulong Golden = 0x9E3779B97F4A7C15UL;

    /// <summary>splitmix64's output function (wrapping uint64 arithmetic).</summary>
    public static ulong Mix(ulong z)
    {
        unchecked
        {
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            return z ^ (z >> 31);
        }
    }

    /// <summary>Uniform in [0, 1) for element <paramref name="i"/> (flat, row-major) of stream <paramref name="seed"/>.</summary>
    public static double U(ulong seed, long i)
    {
        unchecked
        {
            return (Mix(seed + ((ulong)i + 1) * Golden) >> 11) * (1.0 / (1L << 53));
        }
    }

    /// <summary>Seed of the k-th (0-based) state-dict entry.</summary>
    public static ulong SeedOf(int k) => 1000003UL * (ulong)(k + 1);

    /// <summary>Fills every entry in place by its position and name (see the file comment).</summary>
    public static void Apply(OrderedDictionary<string, Tensor> stateDict)
    {
        ArgumentNullException.ThrowIfNull(stateDict);
        using var scope = TensorScope.Begin();
        for (int k = 0; k < stateDict.Count; k++)
        {
            var (name, t) = stateDict.GetAt(k);
            var values = Values(name, t.Shape, SeedOf(k), IsBatchNormMember(stateDict, name));
            var src = Tensor.FromDoubles(values, t.Shape, t.DType, t.Device);
            t.Backend.Copy(t, src);
        }
    }

    /// <summary>The initial values of one entry (double precision).</summary>
    public static double[] Values(string name, Shape shape, ulong seed, bool inBatchNorm)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(shape);
        var v = new double[shape.Numel];
        if (name.EndsWith("num_batches_tracked", StringComparison.Ordinal)) return v;
        Func<double, double> rule;
        if (name.EndsWith("running_mean", StringComparison.Ordinal)) rule = u => 0.1 * (2 * u - 1);
        else if (name.EndsWith("running_var", StringComparison.Ordinal)) rule = u => 1 + 0.25 * u;
        else if (shape.Rank >= 2)
        {
            double bound = Math.Sqrt(3.0 / (shape.Numel / shape[0]));
            rule = u => (2 * u - 1) * bound;
        }
        else if (inBatchNorm && name.EndsWith(".weight", StringComparison.Ordinal)) rule = u => 1 + 0.1 * (2 * u - 1);
        else if (shape.Rank == 1) rule = u => 0.1 * (2 * u - 1);
        else throw new ArgumentException($"no deterministic-init rule for '{name}' of shape {shape}");
        for (long i = 0; i < v.LongLength; i++) v[i] = rule(U(seed, i));
        return v;
    }

    /// <summary>An input tensor x_i = 2 u(seed, i) - 1 (the fixtures use seed 7).</summary>
    public static Tensor Input(Shape shape, ulong seed = 7, DType dtype = DType.F32, Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(shape);
        var v = new double[shape.Numel];
        for (long i = 0; i < v.LongLength; i++) v[i] = 2 * U(seed, i) - 1;
        return Tensor.FromDoubles(v, shape, dtype, device);
    }

    /// <summary>"a.b.weight" belongs to a BatchNorm module when the dict also holds "a.b.running_mean".</summary>
    private static bool IsBatchNormMember(OrderedDictionary<string, Tensor> d, string name)
    {
        int dot = name.LastIndexOf('.');
        string module = dot < 0 ? "" : name[..dot];
        return d.ContainsKey(module.Length == 0 ? "running_mean" : module + ".running_mean");
    }
}
