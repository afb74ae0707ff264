// The CPU backend on 16-bit and channels-last tensors, op by op (Backends/OpVariants.cs):
//  - a BF16/F16 run is exactly the F32 kernel on the widened inputs, each output rounded to nearest
//    even into its type (statistics and BN parameter gradients stay F32): arithmetic in F32, as on the GPU;
//  - a channels-last run equals the NCHW run element for element, in F64, F32 and BF16 (the kernels
//    run on NCHW copies), except sums whose order follows the layout, which agree to 1e-12.
using NUnit.Framework;
using ResidualEngine.Backends.Cpu;
using ResidualEngine.Tests.Backends;

namespace ResidualEngine.Tests.OpTests;

public class MixedPrecisionBackendTests
{
    private static IEnumerable<TestCaseData> SixteenBitCases() =>
        from c in OpVariants.All
        from dt in new[] { DType.BF16, DType.F16 }
        select new TestCaseData(c, dt).SetArgDisplayNames(c.Name, dt.ToString());

    [TestCaseSource(nameof(SixteenBitCases))]
    public void SixteenBitIsTheF32KernelOnWidenedInputsRounded(OpCase c, DType dt)
    {
        var cpu = CpuBackend.Instance;
        var half = OpVariants.Run(c, cpu, new Variant(dt, MemoryFormat.Contiguous, Device.Cpu));
        var reference = OpVariants.Run(c, cpu, new Variant(DType.F32, MemoryFormat.Contiguous, Device.Cpu) { RoundVia = dt });
        Assert.That(half, Has.Length.EqualTo(reference.Length));
        for (int i = 0; i < half.Length; i++)
        {
            var (values, type) = half[i];
            var expectedType = reference[i].DType == DType.F32 && IsActivation(c, i) ? dt : reference[i].DType;
            Assert.That(type, Is.EqualTo(expectedType), $"{c.Name} output {i} dtype");
            var expected = reference[i].Values.Select(v => type.IsFloat() ? (double)Float16.RoundTo(type, (float)v) : v).ToArray();
            Assert.That(values, Is.EqualTo(expected), $"{c.Name} output {i} ({type}) vs the F32 kernel rounded");
            Assert.That(values, Has.None.NaN, $"{c.Name} output {i}: NaN left");
        }
    }

    /// <summary>Outputs that are activations (16-bit in a 16-bit run), as opposed to F32 statistics and parameter gradients.</summary>
    private static bool IsActivation(OpCase c, int i) => c.Name switch
    {
        "batchnorm_train_backward" => i is 0 or 5,
        "batchnorm_act_residual_relu" => i is 0 or 5 or 8,
        "amp_unscale_and_check" => i == 0,
        _ => true,
    };

    private static IEnumerable<TestCaseData> FormatCases() =>
        from c in OpVariants.All.Where(c => c.HasFormat)
        from dt in new[] { DType.F64, DType.F32, DType.BF16 }
        select new TestCaseData(c, dt).SetArgDisplayNames(c.Name, dt.ToString());

    [TestCaseSource(nameof(FormatCases))]
    public void ChannelsLastEqualsNchw(OpCase c, DType dt)
    {
        var cpu = CpuBackend.Instance;
        var nhwc = OpVariants.Run(c, cpu, new Variant(dt, MemoryFormat.ChannelsLast, Device.Cpu));
        var nchw = OpVariants.Run(c, cpu, new Variant(dt, MemoryFormat.Contiguous, Device.Cpu));
        for (int i = 0; i < nhwc.Length; i++)
        {
            if (c.OrderDependent?.Contains(i) == true)
                Close.Assert(nhwc[i].Values, nchw[i].Values, 1e-12, dt == DType.F64 ? 1e-12 : dt == DType.F32 ? 1e-6 : 1e-2, $"{c.Name} output {i} (a sum in layout order)");
            else
                Assert.That(nhwc[i].Values, Is.EqualTo(nchw[i].Values), $"{c.Name} output {i}: NHWC vs NCHW");
        }
    }
}
