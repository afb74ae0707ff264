// Driver-level facts about the machine: whether CUDA is usable at all (and if not, why, without
// throwing), the driver's CUDA version, and each device's name, compute capability, SM count and
// memory. Used by CudaBackend.IsAvailable, the backend itself and `residual info`.
using System.Text;
using ResidualEngine.Native;

namespace ResidualEngine.Backends.Cuda;

/// <summary>One GPU as the driver describes it.</summary>
public sealed record CudaDeviceInfo(int Index, string Name, int Major, int Minor, int MultiprocessorCount, long TotalMemory)
{
    /// <summary>The architecture NVRTC compiles for, e.g. "sm_90".</summary>
    public string Arch => $"sm_{Major}{Minor}";
}

public static class CudaDevices
{
    private static readonly Lazy<(bool Ok, string Reason, int Count)> s_init = new(Initialize);

    /// <summary>True when the driver loads, cuInit succeeds and at least one device exists; otherwise
    /// <paramref name="reason"/> says which step failed. Never throws.</summary>
    public static bool TryInitialize(out string reason)
    {
        var (ok, why, _) = s_init.Value;
        reason = why;
        return ok;
    }

    /// <summary>Number of CUDA devices (0 when CUDA is not usable).</summary>
    public static int Count => s_init.Value.Count;

    private static (bool, string, int) Initialize()
    {
        try
        {
            var report = LibraryResolver.Find(CudaLibrary.Driver);
            if (!report.Found)
                return (false, "no CUDA device: the CUDA driver library (libcuda.so.1 / nvcuda.dll) was not found. " + report.Describe(), 0);
            var r = CudaDriver.cuInit(0);
            if (r != CUresult.CUDA_SUCCESS)
            {
                var (name, text) = CudaDriver.Describe(r);
                return (false, $"no CUDA device: cuInit(0) failed with {name} ({(int)r}): {text} (driver loaded from {report.LoadedPath})", 0);
            }
            r = CudaDriver.cuDeviceGetCount(out int count);
            if (r != CUresult.CUDA_SUCCESS)
            {
                var (name, text) = CudaDriver.Describe(r);
                return (false, $"no CUDA device: cuDeviceGetCount failed with {name}: {text}", 0);
            }
            return count == 0 ? (false, "no CUDA device: the driver reports 0 devices", 0) : (true, "", count);
        }
        catch (EntryPointNotFoundException e)
        {
            return (false, "no CUDA device: the CUDA driver library lacks an expected entry point (" + e.Message + ")", 0);
        }
        catch (DllNotFoundException e)
        {
            return (false, "no CUDA device: " + e.Message, 0);
        }
    }

    /// <summary>The CUDA version the driver supports, e.g. (12, 4). Requires a usable driver.</summary>
    public static (int Major, int Minor) DriverVersion()
    {
        Require();
        CudaDriver.ThrowIfFailed(CudaDriver.cuDriverGetVersion(out int v));
        return (v / 1000, v % 1000 / 10);
    }

    public static unsafe CudaDeviceInfo Get(int index)
    {
        Require();
        if (index < 0 || index >= Count)
            throw new ArgumentOutOfRangeException(nameof(index), index, $"CUDA device {index} does not exist ({Count} device(s) present)");
        CudaDriver.ThrowIfFailed(CudaDriver.cuDeviceGet(out int dev, index));
        var buf = stackalloc byte[256];
        CudaDriver.ThrowIfFailed(CudaDriver.cuDeviceGetName(buf, 256, dev));
        var name = Encoding.UTF8.GetString(buf, new ReadOnlySpan<byte>(buf, 256).IndexOf((byte)0) is var n and >= 0 ? n : 256);
        CudaDriver.ThrowIfFailed(CudaDriver.cuDeviceGetAttribute(out int major, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev));
        CudaDriver.ThrowIfFailed(CudaDriver.cuDeviceGetAttribute(out int minor, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev));
        CudaDriver.ThrowIfFailed(CudaDriver.cuDeviceGetAttribute(out int sms, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, dev));
        CudaDriver.ThrowIfFailed(CudaDriver.cuDeviceTotalMem_v2(out var total, dev));
        return new CudaDeviceInfo(index, name, major, minor, sms, (long)total);
    }

    private static void Require()
    {
        if (!TryInitialize(out var reason)) throw new CudaUnavailableException(reason);
    }
}
