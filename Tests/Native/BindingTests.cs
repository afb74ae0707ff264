// Binding facts checkable without a GPU: the cuDNN perf struct's C layout, version decoding, which
// CUDA errors are sticky, and that every library's ThrowIfFailed names the call and the status.
using System.Runtime.InteropServices;
using NUnit.Framework;
using ResidualEngine.Backends.Cuda;
using ResidualEngine.Native;

namespace ResidualEngine.Tests.Native;

public class BindingTests
{
    [Test]
    public void CudnnAlgoPerfHasTheCLayout()
    {
        // struct { int algo; int status; float time; size_t memory; int determinism; int mathType; int reserved[3]; }
        // on LP64: memory is 8-aligned at 16, the struct is padded to 48.
        Assert.That(Marshal.SizeOf<cudnnConvolutionAlgoPerf_t>(), Is.EqualTo(48));
        Assert.That(Marshal.OffsetOf<cudnnConvolutionAlgoPerf_t>(nameof(cudnnConvolutionAlgoPerf_t.memory)), Is.EqualTo((nint)16));
        Assert.That(Marshal.OffsetOf<cudnnConvolutionAlgoPerf_t>(nameof(cudnnConvolutionAlgoPerf_t.determinism)), Is.EqualTo((nint)24));
        Assert.That(Marshal.OffsetOf<cudnnConvolutionAlgoPerf_t>(nameof(cudnnConvolutionAlgoPerf_t.mathType)), Is.EqualTo((nint)28));
    }

    [TestCase(8907, 8, 9, 7)]
    [TestCase(8200, 8, 2, 0)]
    [TestCase(90100, 9, 1, 0)]
    [TestCase(91002, 9, 10, 2)]
    public void CudnnVersionNumbersDecode(long v, int major, int minor, int patch) =>
        Assert.That(Cudnn.DecodeVersion(v), Is.EqualTo((major, minor, patch)));

    [Test]
    public void StickyErrorsAreFatalOthersAreNot()
    {
        Assert.That(CudaDriver.IsSticky(CUresult.CUDA_ERROR_ILLEGAL_ADDRESS), Is.True);
        Assert.That(CudaDriver.IsSticky(CUresult.CUDA_ERROR_LAUNCH_FAILED), Is.True);
        Assert.That(CudaDriver.IsSticky(CUresult.CUDA_ERROR_MISALIGNED_ADDRESS), Is.True);
        Assert.That(CudaDriver.IsSticky(CUresult.CUDA_ERROR_OUT_OF_MEMORY), Is.False);
        Assert.That(CudaDriver.IsSticky(CUresult.CUDA_ERROR_INVALID_VALUE), Is.False);
        Assert.That(CudaDriver.IsSticky(CUresult.CUDA_ERROR_NOT_FOUND), Is.False);
    }

    [Test]
    public void DriverErrorNamesTheCallAndSaysToRestartWhenSticky()
    {
        var e = Assert.Throws<CudaFatalException>(() => CudaDriver.ThrowIfFailed(CUresult.CUDA_ERROR_ILLEGAL_ADDRESS, "cuLaunchKernel(relu_forward_f32)"));
        Assert.That(e!.Message, Does.Contain("cuLaunchKernel(relu_forward_f32)").And.Contain("CUDA_ERROR_ILLEGAL_ADDRESS").And.Contain("must restart"));
        Assert.That(e.Code, Is.EqualTo(700));

        var r = Assert.Throws<CudaException>(() => CudaDriver.ThrowIfFailed(CUresult.CUDA_ERROR_INVALID_VALUE, "cuMemsetD32Async"));
        Assert.That(r, Is.Not.InstanceOf<CudaFatalException>());
        Assert.That(r!.Message, Does.Contain("cuMemsetD32Async").And.Contain("CUDA_ERROR_INVALID_VALUE"));
    }

    [Test]
    public void CallTextIsCapturedAutomatically()
    {
        var e = Assert.Throws<CudaException>(() => Cublas.ThrowIfFailed(cublasStatus_t.CUBLAS_STATUS_INVALID_VALUE));
        Assert.That(e!.Message, Does.Contain("cuBLAS").And.Contain("cublasStatus_t.CUBLAS_STATUS_INVALID_VALUE").And.Contain("CUBLAS_STATUS_INVALID_VALUE"));
        Assert.That(e.Code, Is.EqualTo(7));
    }

    [Test]
    public void NvrtcErrorCarriesNvrtcsOwnText()
    {
        if (!LibraryResolver.Find(CudaLibrary.Nvrtc).Found) Assert.Ignore("NVRTC not installed");
        var e = Assert.Throws<CudaException>(() => Nvrtc.ThrowIfFailed(nvrtcResult.NVRTC_ERROR_INVALID_OPTION, "nvrtcCompileProgram(x.cu)"));
        Assert.That(e!.Message, Does.Contain("NVRTC_ERROR_INVALID_OPTION").And.Contain("nvrtcCompileProgram(x.cu)"));
        Assert.That(e.Message.ToUpperInvariant(), Does.Contain("OPTION"), "nvrtcGetErrorString's text is included");
    }

    [Test]
    public void OutOfMemoryMessageStatesEveryFigure()
    {
        var e = new CudaOutOfMemoryException(3L << 30, 1L << 30, 80L << 30, 70L << 30, 5L << 20, Device.Cuda(0));
        Assert.That(e.Message, Does.Contain("cuda:0").And.Contain((3L << 30).ToString(System.Globalization.CultureInfo.InvariantCulture))
            .And.Contain("free").And.Contain("80 GiB").And.Contain("70 GiB").And.Contain("5 MiB").And.Contain("cached"));
    }
}
