// The pointwise family on CUDA: one launch path per arity. Kernel names come from the op struct
// (Relu -> relu_f32, relu_bf16; binary ops with a broadcast operand use relu_bcast_f32), instantiated
// from the table in Kernels/pointwise.cu (or the op's own KernelFile). Scalars travel in the compute
// type (float, or double for F64; 16-bit elements compute in float). SumTo picks among the reductions of Kernels/reduce.cu: the
// two-pass full sum, column sums, or one block per plane sum; all accumulate in double.
using System.Reflection;
using ResidualEngine.Pointwise;

namespace ResidualEngine.Backends.Cuda;

public sealed unsafe partial class CudaBackend
{
    public void Map<TOp>(Tensor y, Tensor x, double alpha, double beta) where TOp : struct, IUnaryOp
    {
        Enter();
        var name = PointwiseKernels.Name<TOp>(y.DType, broadcast: false);
        nint py = y.Pointer, px = x.Pointer;
        long n = y.Numel;
        if (y.DType == DType.F64)
        {
            void** args = stackalloc void*[] { &py, &px, &alpha, &beta, &n };
            Launch1D(TOp.KernelFile, name, n, args);
        }
        else
        {
            float fa = (float)alpha, fb = (float)beta;
            void** args = stackalloc void*[] { &py, &px, &fa, &fb, &n };
            Launch1D(TOp.KernelFile, name, n, args);
        }
    }

    public void Map<TOp>(Tensor y, Tensor a, Tensor b, Broadcast bc, double alpha, double beta) where TOp : struct, IBinaryOp
    {
        Enter();
        long n = y.Numel, inner = bc.Inner, period = bc.Period;
        bool bcast = !bc.IsElementwise(n);
        var name = PointwiseKernels.Name<TOp>(y.DType, bcast);
        nint py = y.Pointer, pa = a.Pointer, pb = b.Pointer;
        float fa = (float)alpha, fb = (float)beta;
        void* sa = y.DType == DType.F64 ? &alpha : &fa, sb = y.DType == DType.F64 ? &beta : &fb;
        void** args = stackalloc void*[] { &py, &pa, &pb, sa, sb, &n, &inner, &period };
        Launch1D(TOp.KernelFile, name, n, args);
    }

    public void Map<TOp>(Tensor y, Tensor a, Tensor b, Tensor c, double alpha, double beta) where TOp : struct, ITernaryOp
    {
        Enter();
        long n = y.Numel;
        var name = PointwiseKernels.Name<TOp>(y.DType, broadcast: false);
        nint py = y.Pointer, pa = a.Pointer, pb = b.Pointer, pc = c.Pointer;
        float fa = (float)alpha, fb = (float)beta;
        void* sa = y.DType == DType.F64 ? &alpha : &fa, sb = y.DType == DType.F64 ? &beta : &fb;
        void** args = stackalloc void*[] { &py, &pa, &pb, &pc, sa, sb, &n };
        Launch1D(TOp.KernelFile, name, n, args);
    }

    public void SumTo(Tensor y, Tensor x, Broadcast bc)
    {
        Enter();
        if (y.Numel != bc.Period || y.DType != x.DType)
            throw new ArgumentException($"SumTo: result {y.Describe()} does not hold the {bc.Period} sums of {x.Describe()}");
        long n = x.Numel;
        long outer = bc.Period * bc.Inner == 0 ? 0 : n / (bc.Period * bc.Inner);
        if (bc.Period == 1)
        {
            int blocks = (int)Math.Clamp((n + 511) / 512, 1, 1024);
            using var partials = TakeScratch(blocks * sizeof(double));
            nint pp = partials.Pointer, px = x.Pointer;
            void** a1 = stackalloc void*[] { &pp, &px, &n };
            Launch(CudaKernels.SumPartial.File, CudaKernels.SumPartial.For(x.DType, "SumTo"), ((uint)blocks, 1, 1), (512, 1, 1), a1);
            FinishSum(y, pp, blocks, 1.0);
        }
        else if (bc.Inner == 1)
        {
            // Column sums of x viewed as (outer, period). Block (32, 8): 32 columns, 8 row lanes.
            int rows = checked((int)outer), cols = checked((int)bc.Period);
            nint py = y.Pointer, px = x.Pointer;
            void** a = stackalloc void*[] { &py, &px, &rows, &cols };
            Launch(CudaKernels.SumRows.File, CudaKernels.SumRows.For(x.DType, "SumTo"), ((uint)((cols + 31) / 32), 1, 1), (32, 8, 1), a);
        }
        else
        {
            // One block per target: the planes x[o, k, :] summed over o.
            int outerI = checked((int)outer), k = checked((int)bc.Period);
            long inner = bc.Inner;
            nint py = y.Pointer, px = x.Pointer;
            void** a = stackalloc void*[] { &py, &px, &outerI, &k, &inner };
            LaunchRows(CudaKernels.SumPlanes.File, CudaKernels.SumPlanes.For(x.DType, "SumTo"), k, Threads, a);
        }
    }

    /// <summary>y[0] = scale * sum of <paramref name="count"/> doubles at <paramref name="partials"/> (one block).</summary>
    internal void FinishSum(Tensor y, nint partials, int count, double scale)
    {
        var name = CudaKernels.SumFinalize.For(y.DType, "Sum");
        nint py = y.Pointer, pp = partials;
        int c = count;
        double sc = scale;
        void** a = stackalloc void*[] { &py, &pp, &c, &sc };
        Launch(CudaKernels.SumFinalize.File, name, (1, 1, 1), (512, 1, 1), a);
    }
}

/// <summary>Kernel names of the pointwise family, derived from the op structs.</summary>
internal static class PointwiseKernels
{
    public static string Name<TOp>(DType t, bool broadcast) => t switch
    {
        DType.F32 => broadcast ? Names<TOp>.BcastF32 : Names<TOp>.F32,
        DType.F64 => broadcast ? Names<TOp>.BcastF64 : Names<TOp>.F64,
        DType.BF16 => broadcast ? Names<TOp>.BcastBF16 : Names<TOp>.BF16,
        DType.F16 => broadcast ? Names<TOp>.BcastF16 : Names<TOp>.F16,
        _ => throw new NotSupportedException($"{Pointwise.PointwiseInfo.KernelName<TOp>()} on CUDA supports F32, F64, BF16 and F16, not {t}"),
    };

    /// <summary>Every (file, kernel) of the family's ops defined in the engine assembly and in <paramref name="extra"/>.</summary>
    public static IEnumerable<(string File, string Name)> All(params Assembly[] extra)
    {
        foreach (var asm in extra.Prepend(typeof(IUnaryOp).Assembly).Distinct())
            foreach (var t in asm.GetTypes().Where(t => t.IsValueType && !t.IsGenericTypeDefinition).OrderBy(t => t.FullName, StringComparer.Ordinal))
            {
                bool unary = typeof(IUnaryOp).IsAssignableFrom(t), binary = typeof(IBinaryOp).IsAssignableFrom(t), ternary = typeof(ITernaryOp).IsAssignableFrom(t);
                if (!unary && !binary && !ternary) continue;
                var helper = unary ? nameof(UnaryFile) : binary ? nameof(BinaryFile) : nameof(TernaryFile);
                var file = (string)typeof(PointwiseKernels).GetMethod(helper, BindingFlags.NonPublic | BindingFlags.Static)!.MakeGenericMethod(t).Invoke(null, null)!;
                var name = Pointwise.PointwiseInfo.SnakeCase(t.Name);
                foreach (var (_, sfx) in KernelRef.Types)
                {
                    yield return (file, $"{name}_{sfx}");
                    if (binary) yield return (file, $"{name}_bcast_{sfx}");
                }
            }
    }

    private static string UnaryFile<TOp>() where TOp : IUnaryOp => TOp.KernelFile;
    private static string BinaryFile<TOp>() where TOp : IBinaryOp => TOp.KernelFile;
    private static string TernaryFile<TOp>() where TOp : ITernaryOp => TOp.KernelFile;

    private static class Names<TOp>
    {
        private static readonly string s_base = Pointwise.PointwiseInfo.KernelName<TOp>();
        public static readonly string F32 = s_base + "_f32", F64 = s_base + "_f64";
        public static readonly string BcastF32 = s_base + "_bcast_f32", BcastF64 = s_base + "_bcast_f64";
        public static readonly string BF16 = s_base + "_bf16", F16 = s_base + "_f16";
        public static readonly string BcastBF16 = s_base + "_bcast_bf16", BcastF16 = s_base + "_bcast_f16";
    }
}
