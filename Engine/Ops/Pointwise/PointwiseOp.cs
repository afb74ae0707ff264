// The pointwise op family: unary, binary and ternary elementwise ops, each described once as a
// struct with static members, and run by one generic path per backend (Cpu/CpuPointwise.cs,
// Cuda/CudaPointwise.cs). A binary op's second operand may be broadcast per row or per channel
// (see Broadcast). An op is:
//   - Apply<T>(...)     its arithmetic on one element in F32 or F64 (the CPU reference);
//   - Apply<T>(spans)   optionally, a vectorised version over a chunk (returns false to use the scalar one);
//   - Saves             which values its gradient needs (inputs, output);
//   - Gradient(...)     its gradient, written with forward ops (usually other pointwise ops);
//   - a line in Kernels/pointwise.cu named after the struct in snake_case (Silu -> silu,
//     SiluBackward -> silu_backward), from which the CUDA kernels NAME_f32 / NAME_f64 (and
//     NAME_bcast_* for binary ops) are instantiated.
// Ops without a gradient rule (the backward ops themselves) leave Gradient out; using one where
// a gradient is needed fails with the op's name. Engine/Ops/Pointwise/Silu.cs is the worked example.
using System.Numerics;
using System.Text;

namespace ResidualEngine.Pointwise;

/// <summary>Values an op's gradient needs, saved by the graph at forward time.</summary>
[Flags]
public enum Saves
{
    None = 0,
    /// <summary>The first input (x of a unary op, a of a binary or ternary op).</summary>
    A = 1,
    B = 2,
    C = 4,
    Output = 8,
}

/// <summary>
/// How a binary op's second operand b lines up with a (and with the output): element i of a uses
/// b[(i / Inner) % Period]. Same shape: Inner 1, Period n. Per row of a (M, ...) with b (M):
/// Inner = n / M, Period M. Per channel of NCHW with b (C): Inner H*W, Period C. A row vector
/// b (N) on every row of a (M, N): Inner 1, Period N.
/// </summary>
public readonly record struct Broadcast(long Inner, long Period)
{
    /// <summary>b has a's shape.</summary>
    public static Broadcast Same(Tensor a) => new(1, a.Numel);

    /// <summary>b (M) scales or shifts each of a's M leading rows (a viewed as (M, n / M)).</summary>
    public static Broadcast Rows(Tensor a, long rows) => new(rows == 0 ? 1 : a.Numel / rows, rows);

    /// <summary>b (C) per channel of an NCHW (or channels-last) tensor.</summary>
    public static Broadcast Channels(Tensor a)
    {
        ArgumentNullException.ThrowIfNull(a);
        if (a.Rank < 2) throw new ArgumentException($"per-channel broadcast needs at least 2 dimensions, got {a.Shape}");
        if (a.Format == MemoryFormat.ChannelsLast) return new(1, a.Shape[1]);
        long inner = 1;
        for (int i = 2; i < a.Rank; i++) inner *= a.Shape[i];
        return new(inner, a.Shape[1]);
    }

    /// <summary>b (N) added to every row of a (M, N).</summary>
    public static Broadcast Columns(Tensor a) => new(1, a.Shape[a.Rank - 1]);

    /// <summary>One value for every element (the target of a full sum).</summary>
    public static Broadcast All(Tensor a) => new(Math.Max(1, a.Numel), 1);

    /// <summary>True when b has as many elements as a, element for element.</summary>
    public bool IsElementwise(long n) => Inner == 1 && Period == n;
}

/// <summary>y = f(x; alpha, beta).</summary>
public interface IUnaryOp
{
    static abstract Saves Saves { get; }

    static abstract T Apply<T>(T x, T alpha, T beta) where T : unmanaged, IFloatingPointIeee754<T>;

    /// <summary>Vectorised form over one chunk (y may alias x); false: use the scalar form.</summary>
    static virtual bool Apply<T>(ReadOnlySpan<T> x, Span<T> y, T alpha, T beta) where T : unmanaged, IFloatingPointIeee754<T> => false;

    /// <summary>dX from dY (and the saved values), with forward ops.</summary>
    static virtual Tensor Gradient(in UnaryGradient g) => throw PointwiseInfo.NoGradient();

    /// <summary>The kernel file holding this op's table line.</summary>
    static virtual string KernelFile => PointwiseInfo.DefaultKernelFile;
}

/// <summary>y = f(a, b; alpha, beta), b possibly broadcast.</summary>
public interface IBinaryOp
{
    static abstract Saves Saves { get; }

    static abstract T Apply<T>(T a, T b, T alpha, T beta) where T : unmanaged, IFloatingPointIeee754<T>;

    /// <summary>Vectorised form over one chunk of equal-length spans (y may alias a or b); false: use the scalar form.</summary>
    static virtual bool Apply<T>(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> y, T alpha, T beta) where T : unmanaged, IFloatingPointIeee754<T> => false;

    /// <summary>(dA, dB) from dY, with forward ops; dB has a's shape (the engine sums it down to b's when b is broadcast).
    /// Either may be null when not needed (g.NeedA, g.NeedB).</summary>
    static virtual (Tensor? DA, Tensor? DB) Gradient(in BinaryGradient g) => throw PointwiseInfo.NoGradient();

    static virtual string KernelFile => PointwiseInfo.DefaultKernelFile;
}

/// <summary>y = f(a, b, c; alpha, beta), all of one shape.</summary>
public interface ITernaryOp
{
    static abstract Saves Saves { get; }

    static abstract T Apply<T>(T a, T b, T c, T alpha, T beta) where T : unmanaged, IFloatingPointIeee754<T>;

    static virtual (Tensor? DA, Tensor? DB, Tensor? DC) Gradient(in TernaryGradient g) => throw PointwiseInfo.NoGradient();

    static virtual string KernelFile => PointwiseInfo.DefaultKernelFile;
}

/// <summary>What a unary op's gradient sees. X and Y are set when the op saves them.</summary>
public readonly record struct UnaryGradient(Tensor DY, Tensor? X, Tensor? Y, double Alpha, double Beta);

/// <summary>What a binary op's gradient sees. B is b as given (broadcast per <see cref="Broadcast"/>).</summary>
public readonly record struct BinaryGradient(Tensor DY, Tensor? A, Tensor? B, Tensor? Y, double Alpha, double Beta,
    Broadcast Broadcast, bool NeedA, bool NeedB);

public readonly record struct TernaryGradient(Tensor DY, Tensor? A, Tensor? B, Tensor? C, Tensor? Y, double Alpha, double Beta,
    bool NeedA, bool NeedB, bool NeedC);

/// <summary>Names and helpers shared by the family.</summary>
public static class PointwiseInfo
{
    public const string DefaultKernelFile = "pointwise.cu";

    /// <summary>The kernel base name of an op: its type name in snake_case (AddRelu -> add_relu).</summary>
    public static string KernelName<TOp>() => Names<TOp>.Value;

    /// <summary>Snake case of a PascalCase identifier.</summary>
    public static string SnakeCase(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        var sb = new StringBuilder(name.Length + 4);
        for (int i = 0; i < name.Length; i++)
        {
            char c = name[i];
            if (char.IsUpper(c))
            {
                if (i > 0 && (char.IsLower(name[i - 1]) || char.IsDigit(name[i - 1]) || (i + 1 < name.Length && char.IsLower(name[i + 1])))) sb.Append('_');
                sb.Append(char.ToLowerInvariant(c));
            }
            else sb.Append(c);
        }
        return sb.ToString();
    }

    internal static NotSupportedException NoGradient() => new("this pointwise op has no gradient rule");

    private static class Names<TOp>
    {
        public static readonly string Value = SnakeCase(typeof(TOp).Name);
    }
}
