// CPU against CUDA for every op of the pointwise family (found by reflection, as in
// Tests/Ops/PointwiseFamilyTests.cs), in F32 and F64, same-shape and broadcast, in place, and
// SumTo in its four shapes; outputs start NaN-poisoned so that an unwritten element shows.
using NUnit.Framework;
using ResidualEngine.Pointwise;
using ResidualEngine.Tests.OpTests;

namespace ResidualEngine.Tests.Backends.Cuda;

[Category("Gpu")]
public class CudaPointwiseParityTests : GpuTestBase
{
    private const double Alpha = 0.75, Beta = -1.25;

    private static IEnumerable<TestCaseData> Cases() =>
        from op in PointwiseCatalog.All()
        from dt in new[] { DType.F32, DType.F64 }
        select new TestCaseData(op, dt).SetArgDisplayNames(op.Name, dt.ToString());

    [TestCaseSource(nameof(Cases))]
    public void MatchesCpu(PointwiseCatalog.OpCase op, DType dt)
    {
        var x = PointwiseCatalog.Inputs(op, new Random(21), new Shape(5, 7, 31), dt);
        var c = CpuOut(x[0].Shape, dt);
        PointwiseCatalog.BackendMap(op, Cpu, c, x, Broadcast.Same(x[0]), Alpha, Beta);
        var g = GpuOut(x[0].Shape, dt);
        PointwiseCatalog.BackendMap(op, Gpu, g, x.Select(G).ToArray(), Broadcast.Same(x[0]), Alpha, Beta);
        Near(g, c, $"{op.Name} {dt}", dt == DType.F64 ? 1e-12 : 1e-5, dt == DType.F64 ? 1e-12 : 1e-5);

        // In place: the output is the first input.
        var gx = x.Select(G).ToArray();
        PointwiseCatalog.BackendMap(op, Gpu, gx[0], gx, Broadcast.Same(x[0]), Alpha, Beta);
        Near(gx[0], c, $"{op.Name} {dt} in place", dt == DType.F64 ? 1e-12 : 1e-5, dt == DType.F64 ? 1e-12 : 1e-5);
    }

    private static IEnumerable<TestCaseData> BroadcastCases() =>
        from op in PointwiseCatalog.All().Where(o => o.Arity == PointwiseCatalog.Arity.Binary)
        from bc in new[] { "rows", "channels", "columns" }
        select new TestCaseData(op, bc).SetArgDisplayNames(op.Name, bc);

    [TestCaseSource(nameof(BroadcastCases))]
    public void BroadcastMatchesCpu(PointwiseCatalog.OpCase op, string kind)
    {
        var rng = new Random(22);
        var a = Rand(rng, 3, 5, 7, 11);
        var (bc, bShape) = kind switch
        {
            "rows" => (Broadcast.Rows(a, 15), new Shape(3, 5)),
            "channels" => (Broadcast.Channels(a), new Shape(5)),
            _ => (Broadcast.Columns(a), new Shape(11)),
        };
        var b = Rand(rng, bShape.ToArray());
        var c = CpuOut(a.Shape);
        PointwiseCatalog.BackendMap(op, Cpu, c, [a, b], bc, Alpha, Beta);
        var g = GpuOut(a.Shape);
        PointwiseCatalog.BackendMap(op, Gpu, g, [G(a), G(b)], bc, Alpha, Beta);
        Near(g, c, $"{op.Name} broadcast {kind}");
    }

    [TestCase(1, 1, 1)]
    [TestCase(1, 1, 1_000_003)]
    [TestCase(67, 45, 1)]
    [TestCase(4, 7, 49)]
    [TestCase(1, 1000, 3)]
    public void SumToMatchesCpu(int outer, int period, int inner)
    {
        var x = Rand(new Random(23), outer, period, inner);
        var bc = new Broadcast(inner, period);
        var c = CpuOut(new Shape(period));
        Cpu.SumTo(c, x, bc);
        var g = GpuOut(new Shape(period));
        Gpu.SumTo(g, G(x), bc);
        Near(g, c, $"SumTo ({outer}, {period}, {inner})");
    }

    [Test]
    public void UnsupportedDtypeNamesTheOp()
    {
        var h = Tensor.Zeros(new Shape(8), DType.I32, Dev);
        var e = Assert.Throws<NotSupportedException>(() => Gpu.Map<Relu>(h, h, 0, 0));
        Assert.That(e!.Message, Does.Contain("relu").And.Contain("I32"));
    }
}
