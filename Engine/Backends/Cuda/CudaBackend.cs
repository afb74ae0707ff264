// The CUDA backend: one per device, on the device's primary context with one non-blocking stream.
// This file holds creation, the context/stream plumbing, kernel launches, memory (allocation,
// copies, casts, fills) and the library handles; op families live in partial files mirroring
// Backends/Cpu (CudaElementwise, CudaConv, CudaBatchNorm, CudaPool, CudaDense, CudaLoss,
// CudaShortcut, CudaSgd). Ops only queue work: nothing here waits for the GPU except CopyToHost
// and Synchronize, which are the caller's choice. F32, F64, BF16 and F16 are supported (16-bit
// stored, F32 compute); other dtypes get a NotSupportedException naming the op (copies, casts,
// fills and layout conversions support every dtype).
using ResidualEngine.Native;

namespace ResidualEngine.Backends.Cuda;

public sealed unsafe partial class CudaBackend : IBackend
{
    private const int Threads = 256;

    [ThreadStatic] private static nint t_currentContext;

    private readonly CudaContextHandle _context;
    private readonly CudaStreamHandle _streamHandle;
    private readonly nint _ctx;
    private readonly nint _stream;
    private readonly CudaStaging _staging;
    private readonly KernelLibrary _kernels;
    private readonly uint _maxBlocks;
    private readonly object _libLock = new();
    private CublasHandle? _cublas;
    private cublasMath_t _cublasMath = (cublasMath_t)(-1);
    private CudnnHandle? _cudnn;

    /// <summary>True when a CUDA device can be used; otherwise <paramref name="reason"/> says why
    /// ("no CUDA device: ..."). Never throws.</summary>
    public static bool IsAvailable(out string reason) => CudaDevices.TryInitialize(out reason);

    /// <summary>The backend for a device; BackendRegistry caches one per device index.</summary>
    public static CudaBackend Create(int index)
    {
        if (!IsAvailable(out var reason)) throw new CudaUnavailableException(reason);
        if (index < 0 || index >= CudaDevices.Count)
            throw new ArgumentException($"cuda:{index} does not exist: {CudaDevices.Count} CUDA device(s) present", nameof(index));
        // NVRTC and cuBLAS of the driver's CUDA major are preferred when several are installed.
        var (driverMajor, _) = CudaDevices.DriverVersion();
        LibraryResolver.PreferMajorVersion(CudaLibrary.Nvrtc, driverMajor);
        LibraryResolver.PreferMajorVersion(CudaLibrary.Cublas, driverMajor);
        return new CudaBackend(CudaDevices.Get(index));
    }

    private CudaBackend(CudaDeviceInfo info)
    {
        Info = info;
        Device = Device.Cuda(info.Index);
        CudaDriver.ThrowIfFailed(CudaDriver.cuDeviceGet(out int dev, info.Index));
        _context = CudaContextHandle.Retain(dev);
        _ctx = _context.DangerousGetHandle();
        Enter();
        _streamHandle = CudaStreamHandle.Create();
        _stream = _streamHandle.DangerousGetHandle();
        _staging = new CudaStaging(_stream);
        Allocator = new CudaAllocator(new DriverDeviceMemory(() => _stream, Enter), Device);
        lock (s_allocators) s_allocators.Add(Allocator);
        TensorStats.SetCudaReserved(() => { lock (s_allocators) return s_allocators.Sum(a => a.Stats.ReservedBytes); });
        _kernels = new KernelLibrary(info.Arch);
        _maxBlocks = (uint)Math.Max(1, info.MultiprocessorCount * 32);
    }

    private static readonly List<CudaAllocator> s_allocators = new();

    public Device Device { get; }
    public CudaDeviceInfo Info { get; }
    public CudaAllocator Allocator { get; }
    public KernelLibrary Kernels => _kernels;

    /// <summary>Allow TF32 tensor-core math in cuDNN convolutions of F32 data. On by default, as PyTorch's
    /// torch.backends.cudnn.allow_tf32; `--precision fp32` turns it off (F32 results then match the CPU within 1e-3).</summary>
    public bool AllowTf32Convolutions { get; set; } = DefaultTf32Convolutions;

    /// <summary>The defaults of the two TF32 switches (PyTorch's): convolutions on, matmuls off.</summary>
    public const bool DefaultTf32Convolutions = true, DefaultTf32Matmul = false;

    /// <summary>Allow TF32 tensor-core math in cuBLAS GEMMs of F32 data. Off by default, as PyTorch's
    /// torch.backends.cuda.matmul.allow_tf32 (off since PyTorch 1.12).</summary>
    public bool AllowTf32Matmul { get; set; } = DefaultTf32Matmul;

    /// <summary>Both TF32 switches at once: true only when both are on; setting it sets both.</summary>
    public bool AllowTf32
    {
        get => AllowTf32Convolutions && AllowTf32Matmul;
        set => AllowTf32Convolutions = AllowTf32Matmul = value;
    }

    /// <summary>The TF32 policy in words, for `residual bench` and `residual info`.</summary>
    public string Tf32Policy => Tf32.Describe(AllowTf32Convolutions, AllowTf32Matmul);

    /// <summary>Use cuDNN for batch normalisation (default); false uses Kernels/batchnorm.cu.</summary>
    public bool UseCudnnBatchNorm { get; set; } = true;

    /// <summary>Time cuDNN's convolution algorithms on first use of a shape (cudnnFind*Ex, one host sync per
    /// new shape) instead of taking the heuristic's first choice. Like torch.backends.cudnn.benchmark.</summary>
    public bool CudnnBenchmark { get; set; }

    /// <summary>Only deterministic cuDNN convolution algorithms. Like torch.backends.cudnn.deterministic.</summary>
    public bool DeterministicAlgorithms { get; set; }

    /// <summary>The largest workspace a convolution algorithm may use (bytes).</summary>
    public long MaxConvWorkspaceBytes { get; set; } = 1L << 30;

    internal nint Stream => _stream;

    /// <summary>Makes this backend's context current on the calling thread (cheap when it already is).</summary>
    internal void Enter()
    {
        if (t_currentContext == _ctx) return;
        CudaDriver.ThrowIfFailed(CudaDriver.cuCtxSetCurrent(_ctx));
        t_currentContext = _ctx;
    }

    // ---- kernel launches ----

    /// <summary>Blocks for a grid-stride kernel over n elements with 256 threads per block.</summary>
    public uint GridFor(long n) => (uint)Math.Clamp((n + Threads - 1) / Threads, 1, _maxBlocks);

    /// <summary>Launches a kernel of a registered .cu file on this backend's stream (how user kernels run):
    /// <paramref name="args"/> points to one pointer per kernel parameter, each pointing at the value.</summary>
    public void Launch(string file, string kernel, (uint X, uint Y, uint Z) grid, (uint X, uint Y, uint Z) block,
        void** args, uint sharedMemBytes = 0)
    {
        ArgumentNullException.ThrowIfNull(file);
        ArgumentNullException.ThrowIfNull(kernel);
        Enter();
        var f = _kernels.Function(file, kernel);
        var r = CudaDriver.cuLaunchKernel(f, grid.X, grid.Y, grid.Z, block.X, block.Y, block.Z, sharedMemBytes, _stream, args, null);
        if (r != CUresult.CUDA_SUCCESS)
            throw CudaDriver.Error(r, $"cuLaunchKernel({kernel} from {file}, grid ({grid.X},{grid.Y},{grid.Z}), block ({block.X},{block.Y},{block.Z}))");
    }

    /// <summary>A 1-d launch: grid-stride kernels over n elements.</summary>
    internal void Launch1D(string file, string kernel, long n, void** args)
    {
        if (n <= 0) return;
        Launch(file, kernel, (GridFor(n), 1, 1), (Threads, 1, 1), args);
    }

    /// <summary>One block per row (reductions), blocks capped at 65535 and looping inside the kernel.</summary>
    internal void LaunchRows(string file, string kernel, long rows, uint threads, void** args)
    {
        if (rows <= 0) return;
        Launch(file, kernel, ((uint)Math.Min(rows, 65535), 1, 1), (threads, 1, 1), args);
    }

    // ---- library handles (created on first use, bound to the stream) ----

    internal nint Blas(bool tf32)
    {
        var want = tf32 ? cublasMath_t.CUBLAS_TF32_TENSOR_OP_MATH : cublasMath_t.CUBLAS_DEFAULT_MATH;
        lock (_libLock)
        {
            if (_cublas is null)
            {
                LibraryResolver.Require(CudaLibrary.Cublas);
                var h = Native.CublasHandle.Create();
                Cublas.ThrowIfFailed(Cublas.cublasSetStream_v2(h.DangerousGetHandle(), _stream));
                _cublas = h;
            }
            if (_cublasMath != want)
            {
                Cublas.ThrowIfFailed(Cublas.cublasSetMathMode(_cublas.DangerousGetHandle(), want));
                _cublasMath = want;
            }
            return _cublas.DangerousGetHandle();
        }
    }

    internal nint Dnn()
    {
        lock (_libLock)
        {
            if (_cudnn is null)
            {
                // cuDNN's engines use cuBLASLt: load cuBLAS (and its Lt companion) first when it is there.
                LibraryResolver.Find(CudaLibrary.Cublas);
                LibraryResolver.Require(CudaLibrary.Cudnn);
                var h = Native.CudnnHandle.Create();
                Cudnn.ThrowIfFailed(Cudnn.cudnnSetStream(h.DangerousGetHandle(), _stream));
                _cudnn = h;
            }
            return _cudnn.DangerousGetHandle();
        }
    }

    /// <summary>A temporary device buffer for the duration of one op (returned to the cache at once,
    /// which is safe because later users of the block queue behind this op on the same stream).</summary>
    internal Scratch TakeScratch(long bytes) => new(Allocator, bytes <= 0 ? 0 : Allocator.Allocate(bytes));

    internal readonly struct Scratch(CudaAllocator allocator, nint ptr) : IDisposable
    {
        public nint Pointer { get; } = ptr;
        public void Dispose()
        {
            if (Pointer != 0) allocator.Free(Pointer);
        }
    }

    // ---- memory ----

    public Storage Allocate(long bytes)
    {
        Enter();
        return CudaStorage.Create(Allocator, bytes, Device);
    }

    public void CopyFromHost(Tensor dst, ReadOnlySpan<byte> src)
    {
        if (src.Length != dst.Bytes) throw new ArgumentException($"host buffer of {src.Length} bytes for a tensor of {dst.Bytes} bytes");
        Enter();
        _staging.Upload(dst.Pointer, src);
    }

    public void CopyToHost(Tensor src, Span<byte> dst)
    {
        if (dst.Length != src.Bytes) throw new ArgumentException($"host buffer of {dst.Length} bytes for a tensor of {src.Bytes} bytes");
        Enter();
        _staging.Download(dst, src.Pointer);
    }

    public void Copy(Tensor dst, Tensor src)
    {
        if (dst.Bytes != src.Bytes) throw new ArgumentException($"copy of {src.Describe()} into {dst.Describe()}: sizes differ");
        Enter();
        if (dst.Pointer == src.Pointer || dst.Bytes == 0) return;
        CudaDriver.ThrowIfFailed(CudaDriver.cuMemcpyDtoDAsync_v2((ulong)dst.Pointer, (ulong)src.Pointer, (nuint)dst.Bytes, _stream));
    }

    public void Cast(Tensor dst, Tensor src)
    {
        if (dst.Numel != src.Numel) throw new ArgumentException($"cast of {src.Describe()} into {dst.Describe()}: element counts differ");
        if (dst.DType == src.DType) { Copy(dst, src); return; }
        Enter();
        nint pd = dst.Pointer, ps = src.Pointer;
        int td = (int)dst.DType, ts = (int)src.DType;
        long n = dst.Numel;
        void** a = stackalloc void*[] { &pd, &td, &ps, &ts, &n };
        Launch1D(CudaKernels.MemoryFile, CudaKernels.Cast, n, a);
    }

    public void Fill(Tensor dst, double value)
    {
        Enter();
        ulong p = (ulong)dst.Pointer;
        var n = (nuint)dst.Numel;
        if (n == 0) return;
        switch (dst.DType)
        {
            case DType.F32:
                CudaDriver.ThrowIfFailed(CudaDriver.cuMemsetD32Async(p, BitConverter.SingleToUInt32Bits((float)value), n, _stream));
                break;
            case DType.I32:
                CudaDriver.ThrowIfFailed(CudaDriver.cuMemsetD32Async(p, unchecked((uint)(int)value), n, _stream));
                break;
            case DType.F16:
                CudaDriver.ThrowIfFailed(CudaDriver.cuMemsetD16Async(p, BitConverter.HalfToUInt16Bits((Half)(float)value), n, _stream));
                break;
            case DType.BF16:
                CudaDriver.ThrowIfFailed(CudaDriver.cuMemsetD16Async(p, ((BFloat16)(float)value).Bits, n, _stream));
                break;
            case DType.U8:
                CudaDriver.ThrowIfFailed(CudaDriver.cuMemsetD8Async(p, unchecked((byte)value), n, _stream));
                break;
            case DType.F64:
            {
                nint pd = dst.Pointer;
                long count = dst.Numel;
                double v = value;
                void** a = stackalloc void*[] { &pd, &v, &count };
                Launch1D(CudaKernels.Fill.File, CudaKernels.Fill.F64, count, a);
                break;
            }
            case DType.I64:
            {
                nint pd = dst.Pointer;
                long count = dst.Numel;
                long v = (long)value;
                void** a = stackalloc void*[] { &pd, &v, &count };
                Launch1D(CudaKernels.MemoryFile, CudaKernels.FillI64, count, a);
                break;
            }
            default:
                throw new NotSupportedException($"Fill on CUDA does not support {dst.DType}");
        }
    }

    /// <summary>Free and total device memory as the driver reports them (includes other processes' use).</summary>
    public (long Free, long Total) DeviceMemory()
    {
        Enter();
        CudaDriver.ThrowIfFailed(CudaDriver.cuMemGetInfo_v2(out var free, out var total));
        return ((long)free, (long)total);
    }

    public void Synchronize()
    {
        Enter();
        CudaDriver.ThrowIfFailed(CudaDriver.cuStreamSynchronize(_stream));
    }

    /// <summary>F32, F64, BF16 or F16, else NotSupportedException naming the op.</summary>
    internal static void RequireFloat(Tensor t, string op)
    {
        if (!t.DType.IsFloat())
            throw new NotSupportedException($"{op} on CUDA supports F32, F64, BF16 and F16, not {t.DType}");
    }

    public void ConvertLayout(Tensor dst, Tensor src)
    {
        if (dst.Shape != src.Shape || dst.DType != src.DType)
            throw new ArgumentException($"ConvertLayout: {src.Describe()} and {dst.Describe()} differ in shape or dtype");
        if (dst.Format == src.Format) { Copy(dst, src); return; }
        Enter();
        long n = src.Shape[0], c = src.Shape[1], hw = (long)src.Shape[2] * src.Shape[3];
        // NCHW -> NHWC transposes each image's (C, HW) matrix; NHWC -> NCHW its (HW, C) matrix.
        var (rows, cols) = src.Format == MemoryFormat.Contiguous ? (c, hw) : (hw, c);
        nint pd = dst.Pointer, ps = src.Pointer;
        void** a = stackalloc void*[] { &pd, &ps, &n, &rows, &cols };
        Launch1D(CudaKernels.MemoryFile, CudaKernels.ConvertLayout(src.DType.Size()), src.Numel, a);
    }

    public void UnscaleAndCheck(Tensor grad, Tensor foundInf, double invScale)
    {
        if (foundInf.DType != DType.F32 || foundInf.Numel != 1)
            throw new ArgumentException($"UnscaleAndCheck: the found-inf flag must be one F32 element, got {foundInf.Describe()}");
        Enter();
        var name = CudaKernels.AmpUnscale.For(grad.DType, "UnscaleAndCheck");
        nint pg = grad.Pointer, pf = foundInf.Pointer;
        double inv = invScale;
        long n = grad.Numel;
        void** a = stackalloc void*[] { &pg, &pf, &inv, &n };
        Launch1D(CudaKernels.AmpUnscale.File, name, n, a);
    }

    public override string ToString() => $"CudaBackend({Device}: {Info.Name}, {Info.Arch})";
}
