// A stand-in second device for argument tests on machines without a GPU: a backend that only
// allocates (host memory labelled cuda:63), so ops can be shown to reject mixed devices before
// they compute anything. The registry's real CUDA factory, if any, is restored afterwards.
using System.Reflection;
using System.Runtime.InteropServices;
using ResidualEngine.Backends;

// Not "ResidualEngine.Tests.Ops": that namespace would hide the Ops class.
namespace ResidualEngine.Tests.OpTests;

internal static class FakeDevice
{
    private static readonly Device s_device = Device.Cuda(63);

    /// <summary>Runs <paramref name="body"/> with the fake device registered.</summary>
    public static void Run(Action<Device> body)
    {
        var saved = BackendRegistry.CudaFactory;
        BackendRegistry.CudaFactory = i => i == s_device.Index
            ? DispatchProxy.Create<IBackend, AllocateOnly>()
            : (saved ?? throw new NotSupportedException($"no CUDA backend is available for cuda:{i}"))(i);
        try { body(s_device); }
        finally { BackendRegistry.CudaFactory = saved; }
    }

    public class AllocateOnly : DispatchProxy
    {
        protected override object? Invoke(MethodInfo? method, object?[]? args) => method?.Name switch
        {
            "get_Device" => s_device,
            "Allocate" => new HostStorage((long)args![0]!),
            _ => throw new NotSupportedException($"the fake test device does not implement {method?.Name}"),
        };
    }

    private sealed unsafe class HostStorage : Storage
    {
        private void* _p;
        public HostStorage(long bytes) : base(bytes, s_device) => _p = NativeMemory.AllocZeroed((nuint)Math.Max(bytes, 1));
        public override nint Pointer => (nint)_p;
        protected override void Free() { NativeMemory.Free(_p); _p = null; }
    }
}
