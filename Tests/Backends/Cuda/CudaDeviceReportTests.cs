// On a GPU machine, records what `residual info --verbose` and `residual kernels check` say about the
// device (into the test log), so a run from the tests-only bundle still documents the GPU, driver and
// library versions; and checks that every kernel compiles for the device's own architecture.
using NUnit.Framework;
using ResidualEngine.Tools.Cli;
using ResidualEngine.Backends.Cuda;
using ResidualEngine.Tools.Commands;

namespace ResidualEngine.Tests.Backends.Cuda;

[Category("Gpu")]
public class CudaDeviceReportTests : GpuTestBase
{
    private static (int Code, string Out) Run(Func<int> command)
    {
        var old = Console.Out;
        using var w = new StringWriter();
        Console.SetOut(w);
        try { return (command(), w.ToString()); }
        finally { Console.SetOut(old); }
    }

    [Test]
    public void InfoDescribesTheDevice()
    {
        var (code, output) = Run(() => CliApp.Run(["info", "--verbose"]));
        TestContext.Out.WriteLine(output);
        Assert.That(code, Is.Zero);
        Assert.That(output, Does.Contain(Gpu.Info.Name).And.Contain(Gpu.Info.Arch).And.Not.Contain("no CUDA device"));
    }

    [Test]
    public void KernelsCompileAndLoadForThisDevice()
    {
        var (code, output) = Run(() => CliApp.Run(["kernels", "check", "--arch", Gpu.Info.Arch]));
        TestContext.Out.WriteLine(output);
        Assert.That(code, Is.Zero, output);
        // Loading goes through the driver: every kernel the backend launches resolves to a function.
        Gpu.Enter();
        foreach (var (file, name) in CudaKernels.All())
            Assert.That(Gpu.Kernels.Function(file, name), Is.Not.Zero, $"{file}: {name}");
    }
}
