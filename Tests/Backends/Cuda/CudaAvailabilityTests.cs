// How the engine behaves about CUDA on any machine: without a device it says "no CUDA device" and
// why, and asking for a CUDA tensor raises a typed, catchable error instead of crashing; with one, it
// creates the backend. Also the `residual info` and `residual kernels` commands.
using NUnit.Framework;
using ResidualEngine.Tools.Cli;
using ResidualEngine.Backends;
using ResidualEngine.Backends.Cuda;
using ResidualEngine.Native;
using ResidualEngine.Tools.Commands;

namespace ResidualEngine.Tests.Backends.Cuda;

public class CudaAvailabilityTests
{
    private static (int Code, string Out, string Err) Capture(Func<int> run) => ConsoleCapture.Run(run);

    [Test]
    public void AvailabilityIsReportedCleanly()
    {
        bool ok = CudaBackend.IsAvailable(out var reason);
        if (ok)
        {
            Assert.That(reason, Is.Empty);
            Assert.That(BackendRegistry.Get(Device.Cuda()), Is.InstanceOf<CudaBackend>());
            return;
        }
        Assert.That(reason, Does.StartWith("no CUDA device"));
        var e = Assert.Throws<CudaUnavailableException>(() => CudaBackend.Create(0));
        Assert.That(e!.Message, Is.EqualTo(reason));
        // Through the public API: a typed NotSupportedException the CLI already reports as an error.
        var t = Assert.Throws<CudaUnavailableException>(() => Tensor.Zeros(new Shape(2, 3), DType.F32, Device.Cuda()));
        Assert.That(t, Is.InstanceOf<NotSupportedException>());
        Assert.That(t!.Message, Does.Contain("no CUDA device"));
    }

    [Test]
    public void MissingDriverReportNamesThePathsTried()
    {
        var report = LibraryResolver.Find(CudaLibrary.Driver);
        if (report.Found) Assert.Ignore("a CUDA driver is installed here");
        Assert.That(CudaBackend.IsAvailable(out var reason), Is.False);
        Assert.That(reason, Does.Contain("libcuda.so.1").And.Contain("/usr/local/nvidia/lib64"));
    }

    [Test]
    public void InfoCommandPrintsLibrariesAndDeviceState()
    {
        var (code, output, _) = Capture(() => CliApp.Run(["info"]));
        Assert.That(code, Is.Zero);
        Assert.That(output, Does.Contain(".NET").And.Contain("NVRTC").And.Contain("cuBLAS").And.Contain("cuDNN").And.Contain("CUDA driver"));
        if (!CudaBackend.IsAvailable(out _)) Assert.That(output, Does.Contain("no CUDA device"));
        if (LibraryResolver.Find(CudaLibrary.Nvrtc) is { Found: true } nv)
            Assert.That(output, Does.Contain(nv.LoadedPath!).And.Contain(KernelLibrary.CompilerVersion));
        if (!LibraryResolver.Find(CudaLibrary.Cudnn).Found)
            Assert.That(output, Does.Contain("libcudnn.so.9 (loader default search): not found"), "every path tried is listed");
    }

    [Test]
    public void KernelsCheckCompilesEverythingForTheArch()
    {
        if (!LibraryResolver.Find(CudaLibrary.Nvrtc).Found)
        {
            var (missing, _, err) = Capture(() => CliApp.Run(["kernels", "check", "--arch", "sm_90"]));
            Assert.That(missing, Is.EqualTo(3));
            Assert.That(err, Does.Contain("NVRTC"));
            return;
        }
        var (code, output, _) = Capture(() => CliApp.Run(["kernels", "check", "--arch", "sm_90"]));
        Assert.That(code, Is.Zero, output);
        foreach (var s in KernelLibrary.Sources) Assert.That(output, Does.Contain(s.FileName));
        Assert.That(output, Does.Contain("OK").And.Not.Contain("FAILED"));
    }

    [Test]
    public void KernelsCommandRejectsBadInput()
    {
        Assert.That(Capture(() => CliApp.Run(["kernels", "check", "--arch", "hopper"])).Code, Is.EqualTo(2));
        Assert.That(Capture(() => CliApp.Run(["kernels", "frobnicate"])).Code, Is.EqualTo(2));
    }

    [Test]
    public void KernelsListShowsKernelNames()
    {
        var (code, output, _) = Capture(() => CliApp.Run(["kernels", "list"]));
        Assert.That(code, Is.Zero);
        Assert.That(output, Does.Contain("pointwise.cu").And.Contain("relu_f32").And.Contain("sgd_update_f64").And.Contain("common.cuh"));
    }
}
