// Every op of the pointwise family, found by reflection (an op added to Engine/Ops/Pointwise is
// picked up with no test change): F64 gradcheck for ops with a gradient rule, F32 against F64 on
// the CPU, the vectorised span form against the scalar form, broadcast forms, aliasing, and
// SumTo in its four shapes. CPU against CUDA is in Backends/Cuda/CudaPointwiseParityTests.cs.
using System.Reflection;
using NUnit.Framework;
using ResidualEngine.Backends;
using ResidualEngine.Backends.Cpu;
using ResidualEngine.Pointwise;

namespace ResidualEngine.Tests.OpTests;

/// <summary>The family's ops and generic entry points to them, for tests.</summary>
public static class PointwiseCatalog
{
    public enum Arity { Unary = 1, Binary = 2, Ternary = 3 }

    public sealed record OpCase(Type Type, Arity Arity, bool HasGradient)
    {
        public string Name => PointwiseInfo.SnakeCase(Type.Name);
        public override string ToString() => Name;
    }

    public static IEnumerable<OpCase> All() =>
        typeof(IUnaryOp).Assembly.GetTypes()
            .Where(t => t.IsValueType && (typeof(IUnaryOp).IsAssignableFrom(t) || typeof(IBinaryOp).IsAssignableFrom(t) || typeof(ITernaryOp).IsAssignableFrom(t)))
            .OrderBy(t => t.Name, StringComparer.Ordinal)
            .Select(t => new OpCase(t,
                typeof(IUnaryOp).IsAssignableFrom(t) ? Arity.Unary : typeof(IBinaryOp).IsAssignableFrom(t) ? Arity.Binary : Arity.Ternary,
                t.GetMethod("Gradient", BindingFlags.Public | BindingFlags.Static) is not null));

    public static IEnumerable<TestCaseData> Cases() => All().Select(c => new TestCaseData(c).SetArgDisplayNames(c.Name));

    public static IEnumerable<TestCaseData> GradientCases() => All().Where(c => c.HasGradient).Select(c => new TestCaseData(c).SetArgDisplayNames(c.Name));

    /// <summary>Ops.Map on the op (records autograd): inputs beyond the arity are ignored.</summary>
    public static Tensor Map(OpCase op, Tensor[] x, double alpha, double beta) =>
        (Tensor)Generic(op, "Map" + op.Arity).Invoke(null, [x, alpha, beta])!;

    /// <summary>The backend's Map into y, with b broadcast as bc (binary only).</summary>
    public static void BackendMap(OpCase op, IBackend be, Tensor y, Tensor[] x, Broadcast bc, double alpha, double beta) =>
        Generic(op, "Backend" + op.Arity).Invoke(null, [be, y, x, bc, alpha, beta]);

    private static MethodInfo Generic(OpCase op, string name) =>
        typeof(PointwiseCatalog).GetMethod(name, BindingFlags.NonPublic | BindingFlags.Static)!.MakeGenericMethod(op.Type);

    private static Tensor MapUnary<T>(Tensor[] x, double a, double b) where T : struct, IUnaryOp => Ops.Map<T>(x[0], a, b);
    private static Tensor MapBinary<T>(Tensor[] x, double a, double b) where T : struct, IBinaryOp => Ops.Map<T>(x[0], x[1], a, b);
    private static Tensor MapTernary<T>(Tensor[] x, double a, double b) where T : struct, ITernaryOp => Ops.Map<T>(x[0], x[1], x[2], a, b);
    private static void BackendUnary<T>(IBackend be, Tensor y, Tensor[] x, Broadcast bc, double a, double b) where T : struct, IUnaryOp => be.Map<T>(y, x[0], a, b);
    private static void BackendBinary<T>(IBackend be, Tensor y, Tensor[] x, Broadcast bc, double a, double b) where T : struct, IBinaryOp => be.Map<T>(y, x[0], x[1], bc, a, b);
    private static void BackendTernary<T>(IBackend be, Tensor y, Tensor[] x, Broadcast bc, double a, double b) where T : struct, ITernaryOp => be.Map<T>(y, x[0], x[1], x[2], a, b);

    /// <summary>Inputs of an odd size, away from the kinks of relu-like ops (|x| &gt;= 0.05).</summary>
    public static Tensor[] Inputs(OpCase op, Random rng, Shape shape, DType dt)
    {
        var x = new Tensor[(int)op.Arity];
        for (int i = 0; i < x.Length; i++)
        {
            var v = new double[shape.Numel];
            for (int j = 0; j < v.Length; j++)
            {
                double s = Tensor.NextGaussian(rng);
                v[j] = Math.Abs(s) < 0.05 ? 0.05 * Math.Sign(s == 0 ? 1 : s) + s : s;
            }
            x[i] = Tensor.FromDoubles(v, shape, dt);
        }
        return x;
    }
}

public class PointwiseFamilyTests
{
    private const double Alpha = 0.75, Beta = -1.25;

    [Test]
    public void FamilyIsFoundAndHoldsTheEngineOps()
    {
        var names = PointwiseCatalog.All().Select(c => c.Name).ToList();
        Assert.That(names, Is.SupersetOf(new[] { "add", "sub", "mul", "axpby", "scale", "relu", "add_relu", "sigmoid", "silu", "mul_add", "relu_backward", "silu_backward" }));
    }

    [TestCaseSource(typeof(PointwiseCatalog), nameof(PointwiseCatalog.GradientCases))]
    public void GradCheck(PointwiseCatalog.OpCase op)
    {
        using var scope = TensorScope.Begin();
        var x = PointwiseCatalog.Inputs(op, new Random(op.Name.Length * 31 + 7), new Shape(3, 7), DType.F64);
        foreach (var t in x) t.RequiresGrad = true;
        Tests.GradCheck.Run(t => PointwiseCatalog.Map(op, t, Alpha, Beta), x);
    }

    [TestCaseSource(typeof(PointwiseCatalog), nameof(PointwiseCatalog.Cases))]
    public void F32MatchesF64(PointwiseCatalog.OpCase op)
    {
        using var scope = TensorScope.Begin();
        var x64 = PointwiseCatalog.Inputs(op, new Random(11), new Shape(5, 1031), DType.F64);
        var x32 = x64.Select(t => t.To(DType.F32)).ToArray();
        var y64 = PointwiseCatalog.Map(op, x64, Alpha, Beta).ToDoubles();
        var y32 = PointwiseCatalog.Map(op, x32, Alpha, Beta).ToDoubles();
        for (int i = 0; i < y64.Length; i++)
            Assert.That(y32[i], Is.EqualTo(y64[i]).Within(1e-5 + 1e-5 * Math.Abs(y64[i])), $"{op.Name} element {i}");
    }

    [TestCaseSource(typeof(PointwiseCatalog), nameof(PointwiseCatalog.Cases))]
    public void VectorisedFormMatchesScalarFormAndOutputMayAliasInput(PointwiseCatalog.OpCase op)
    {
        // A large tensor goes through the chunked (and span) path; compare with per-element
        // calls of the scalar form, and run once more in place (y == first input).
        using var scope = TensorScope.Begin();
        var x = PointwiseCatalog.Inputs(op, new Random(12), new Shape(3, 40_009), DType.F32);
        var y = PointwiseCatalog.Map(op, x, Alpha, Beta).ToFloats();
        var scalar = ScalarReference(op, x.Select(t => t.ToFloats()).ToArray(), Alpha, Beta);
        for (int i = 0; i < y.Length; i++)
            Assert.That(y[i], Is.EqualTo(scalar[i]).Within(2e-6 + 2e-6 * Math.Abs(scalar[i])), $"{op.Name} element {i}");
        var copy = x[0].Clone();
        x[0] = copy;
        PointwiseCatalog.BackendMap(op, CpuBackend.Instance, copy, x, Broadcast.Same(copy), Alpha, Beta);
        Assert.That(copy.ToFloats(), Is.EqualTo(y), $"{op.Name} in place");
    }

    private static float[] ScalarReference(PointwiseCatalog.OpCase op, float[][] x, double alpha, double beta)
    {
        var m = typeof(PointwiseFamilyTests).GetMethod("Scalar" + (int)op.Arity, BindingFlags.NonPublic | BindingFlags.Static)!.MakeGenericMethod(op.Type);
        return (float[])m.Invoke(null, [x, (float)alpha, (float)beta])!;
    }

    private static float[] Scalar1<T>(float[][] x, float a, float b) where T : struct, IUnaryOp => x[0].Select(v => T.Apply(v, a, b)).ToArray();
    private static float[] Scalar2<T>(float[][] x, float a, float b) where T : struct, IBinaryOp => x[0].Select((v, i) => T.Apply(v, x[1][i], a, b)).ToArray();
    private static float[] Scalar3<T>(float[][] x, float a, float b) where T : struct, ITernaryOp => x[0].Select((v, i) => T.Apply(v, x[1][i], x[2][i], a, b)).ToArray();

    [TestCase(1, 7)]       // one row: every element scaled by one value
    [TestCase(6, 35)]      // per row
    [TestCase(12, 1)]      // inner 1: b the same size as a
    public void ScaleRowsIsMulWithAPerRowOperand(int m, int inner)
    {
        using var scope = TensorScope.Begin();
        var rng = new Random(13);
        var x = Tensor.Randn(new Shape(m, inner), rng, DType.F64);
        var s = Tensor.Randn(new Shape(m), rng, DType.F64);
        var y = Ops.ScaleRows(x, s).ToArray<double>();
        var xv = x.ToArray<double>();
        var sv = s.ToArray<double>();
        for (int i = 0; i < y.Length; i++) Assert.That(y[i], Is.EqualTo(xv[i] * sv[i / inner]));
        x.RequiresGrad = true;
        s.RequiresGrad = true;
        Tests.GradCheck.Run(t => Ops.ScaleRows(t[0], t[1]), [x, s]);
    }

    [Test]
    public void PerChannelAndRowVectorBroadcastsMatchTheirDefinition()
    {
        using var scope = TensorScope.Begin();
        var rng = new Random(14);
        var a = Tensor.Randn(new Shape(2, 3, 4, 5), rng, DType.F64);
        var c = Tensor.Randn(new Shape(3), rng, DType.F64);
        var y = Ops.Map<Pointwise.Add>(a, c, Broadcast.Channels(a)).ToArray<double>();
        var av = a.ToArray<double>();
        var cv = c.ToArray<double>();
        for (int i = 0; i < y.Length; i++) Assert.That(y[i], Is.EqualTo(av[i] + cv[(i / 20) % 3]));
        var m = Tensor.Randn(new Shape(6, 5), rng, DType.F64);
        var r = Tensor.Randn(new Shape(5), rng, DType.F64);
        var yr = Ops.Map<Pointwise.Mul>(m, r, Broadcast.Columns(m)).ToArray<double>();
        var mv = m.ToArray<double>();
        var rv = r.ToArray<double>();
        for (int i = 0; i < yr.Length; i++) Assert.That(yr[i], Is.EqualTo(mv[i] * rv[i % 5]));
        a.RequiresGrad = c.RequiresGrad = true;
        Tests.GradCheck.Run(t => Ops.Map<Pointwise.Mul>(t[0], t[1], Broadcast.Channels(t[0])), [a, c]);
    }

    [TestCase(1, 1, 100_003)]  // full sum
    [TestCase(67, 45, 1)]      // column sums
    [TestCase(4, 7, 49)]       // per channel
    [TestCase(1, 9, 1000)]     // per row
    public void SumToMatchesADoubleLoop(int outer, int period, int inner)
    {
        using var scope = TensorScope.Begin();
        var x = Tensor.Randn(new Shape(outer, period, inner), new Random(15), DType.F32);
        var bc = new Broadcast(inner, period);
        var y = Ops.SumTo(x, bc, new Shape(period)).ToDoubles();
        var xv = x.ToDoubles();
        for (int k = 0; k < period; k++)
        {
            double s = 0;
            for (int o = 0; o < outer; o++)
                for (int j = 0; j < inner; j++) s += xv[((long)o * period + k) * inner + j];
            Assert.That(y[k], Is.EqualTo(s).Within(1e-4 + 1e-6 * Math.Abs(s)), $"sum {k}");
        }
    }

    [Test]
    public void BackwardOnlyOpsNameThemselvesWhenAGradientIsNeeded()
    {
        using var scope = TensorScope.Begin();
        var a = Tensor.FromArray(new double[] { 1, 2 }, 2);
        var b = Tensor.FromArray(new double[] { 1, -1 }, 2);
        a.RequiresGrad = true;
        var y = Ops.Sum(Ops.Map<ReluBackward>(a, b));
        var e = Assert.Throws<NotSupportedException>(() => y.Backward());
        Assert.That(e!.Message, Does.Contain("relu_backward"));
    }

    [Test]
    public void SnakeCaseNamesFollowTheStructs()
    {
        Assert.That(PointwiseInfo.KernelName<AddRelu>(), Is.EqualTo("add_relu"));
        Assert.That(PointwiseInfo.KernelName<SiluBackward>(), Is.EqualTo("silu_backward"));
        Assert.That(PointwiseInfo.SnakeCase("ReLU6"), Is.EqualTo("re_lu6"));
        Assert.That(PointwiseInfo.SnakeCase("GeluTanh"), Is.EqualTo("gelu_tanh"));
    }
}
