// The CPU GEMM against a naive triple loop: every transpose combination, sizes that are not
// multiples of the micro-tile or block sizes (edge tiles, several k blocks, several column
// chunks and threads), alpha/beta, F32 and F64, and every kernel family this machine can run.
// Also the row-vector helpers used by Linear.
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using NUnit.Framework;
using ResidualEngine.Backends.Cpu;

namespace ResidualEngine.Tests.Backends;

public class GemmTests
{
    /// <summary>Kernel families this machine can execute (Portable always).</summary>
    internal static IEnumerable<GemmIsa> Isas()
    {
        yield return GemmIsa.Portable;
        if (Vector256.IsHardwareAccelerated && Fma.IsSupported) yield return GemmIsa.Avx2;
        if (Vector512.IsHardwareAccelerated && Avx512F.IsSupported) yield return GemmIsa.Avx512;
    }

    /// <summary>Runs <paramref name="body"/> with the GEMM forced to one kernel family.</summary>
    internal static void WithIsa(GemmIsa isa, Action body)
    {
        var saved = CpuGemm.Isa;
        CpuGemm.Isa = isa;
        try { body(); }
        finally { CpuGemm.Isa = saved; }
    }

    private static double[] Reference(double[] a, double[] b, double[] c0, int m, int n, int k, bool ta, bool tb, double alpha, double beta)
    {
        var c = new double[m * n];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double s = 0;
                for (int p = 0; p < k; p++)
                    s += (ta ? a[p * m + i] : a[i * k + p]) * (tb ? b[j * k + p] : b[p * n + j]);
                c[i * n + j] = alpha * s + (beta == 0 ? 0 : beta * c0[i * n + j]);
            }
        return c;
    }

    private static void CheckOne(DType dt, int m, int n, int k, bool ta, bool tb, double alpha, double beta, int seed)
    {
        using var scope = TensorScope.Begin();
        var rng = new Random(seed);
        var a = Tensor.Randn(ta ? new Shape(k, m) : new Shape(m, k), rng, dt);
        var b = Tensor.Randn(tb ? new Shape(n, k) : new Shape(k, n), rng, dt);
        var c = Tensor.Randn(new Shape(m, n), rng, dt);
        var expected = Reference(a.ToDoubles(), b.ToDoubles(), c.ToDoubles(), m, n, k, ta, tb, alpha, beta);
        if (beta == 0) c.Backend.Fill(c, double.NaN); // beta = 0 must ignore whatever C held
        c.Backend.Gemm(c, a, b, ta, tb, alpha, beta);
        double tol = dt == DType.F32 ? 2e-5 * Math.Sqrt(k + 1) : 1e-12 * (k + 1);
        Close.Assert(c.ToDoubles(), expected, tol, dt == DType.F32 ? 1e-4 : 1e-10,
            $"{dt} {m}x{n}x{k} transA {ta} transB {tb} alpha {alpha} beta {beta} ({CpuGemm.Isa})");
    }

    private static readonly (int M, int N, int K)[] Sizes =
    [
        (1, 1, 1), (3, 5, 2), (8, 48, 16), (9, 49, 17), (13, 31, 7), (37, 53, 300), (66, 401, 45), (5, 900, 3),
    ];

    [Test]
    public void MatchesNaiveProductForEveryTransposeAndKernel([Values(DType.F32, DType.F64)] DType dt)
    {
        foreach (var isa in Isas())
            WithIsa(isa, () =>
            {
                int seed = 1;
                foreach (var (m, n, k) in Sizes)
                    foreach (bool ta in new[] { false, true })
                        foreach (bool tb in new[] { false, true })
                            CheckOne(dt, m, n, k, ta, tb, 1, 0, seed++);
            });
    }

    [Test]
    public void AlphaAndBetaScaleAsSpecified([Values(DType.F32, DType.F64)] DType dt)
    {
        foreach (var isa in Isas())
            WithIsa(isa, () =>
            {
                int seed = 100;
                foreach (var (alpha, beta) in new[] { (0.5, 0.0), (1.0, 1.0), (-1.5, 0.75), (2.0, -1.0), (0.0, 0.5) })
                {
                    CheckOne(dt, 19, 70, 260, false, true, alpha, beta, seed++);
                    CheckOne(dt, 7, 3, 5, true, false, alpha, beta, seed++);
                }
            });
    }

    [Test]
    public void SingleThreadAndManyThreadsAgree()
    {
        int saved = CpuBackend.Threads;
        try
        {
            foreach (int t in new[] { 1, 3 })
            {
                CpuBackend.Threads = t;
                CheckOne(DType.F64, 70, 500, 270, false, false, 1, 0, 7);
                CheckOne(DType.F64, 3, 20, 400, true, true, 1, 0, 8); // few columns: rows are split instead
            }
        }
        finally { CpuBackend.Threads = saved; }
    }

    [Test]
    public void EmptyReductionScalesC()
    {
        using var scope = TensorScope.Begin();
        var a = Tensor.Zeros(new Shape(2, 0), DType.F64);
        var b = Tensor.Zeros(new Shape(0, 3), DType.F64);
        var c = Tensor.Full(new Shape(2, 3), 2.0, DType.F64);
        c.Backend.Gemm(c, a, b, false, false, 1, 0.5);
        Assert.That(c.ToArray<double>(), Is.All.EqualTo(1.0));
    }

    [Test]
    public void MismatchedShapesAreRejected()
    {
        using var scope = TensorScope.Begin();
        var a = Tensor.Zeros(new Shape(2, 3));
        var b = Tensor.Zeros(new Shape(4, 5));
        var c = Tensor.Zeros(new Shape(2, 5));
        var e = Assert.Throws<ArgumentException>(() => c.Backend.Gemm(c, a, b, false, false, 1, 0));
        Assert.That(e!.Message, Does.Contain("Gemm").And.Contain("2x3"));
        var i = Tensor.Zeros(new Shape(2, 3), DType.I32);
        Assert.Throws<NotSupportedException>(() => i.Backend.Gemm(i, i, i, false, false, 1, 0));
    }

    [Test]
    public void RowVectorHelpers([Values(DType.F32, DType.F64)] DType dt)
    {
        using var scope = TensorScope.Begin();
        var rng = new Random(3);
        var x = Tensor.Randn(new Shape(5, 7), rng, dt);
        var bias = Tensor.Randn(new Shape(7), rng, dt);
        var xv = x.ToDoubles();
        var bv = bias.ToDoubles();
        var y = x.To(dt);
        y.Backend.Map<Pointwise.Add>(y, y, bias, Pointwise.Broadcast.Columns(y), 0, 0);
        var sums = Tensor.Empty(new Shape(7), dt);
        x.Backend.SumTo(sums, x, Pointwise.Broadcast.Columns(x));
        var expectY = new double[35];
        var expectS = new double[7];
        for (int i = 0; i < 5; i++)
            for (int j = 0; j < 7; j++) { expectY[i * 7 + j] = xv[i * 7 + j] + bv[j]; expectS[j] += xv[i * 7 + j]; }
        Close.Assert(y.ToDoubles(), expectY, 1e-6, 1e-6, "row-vector add");
        Close.Assert(sums.ToDoubles(), expectS, 1e-5, 1e-6, "column sums");
    }
}
