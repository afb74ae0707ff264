// The n-dimensional array at the centre of the engine: shape, dtype, memory format and device,
// a reference-counted storage, and the autograd state (RequiresGrad, Grad, GradFn).
// Tensors are IDisposable; a TensorScope collects the ones made inside it. Reshape-like views
// share the storage; disposing a view releases only its own reference.
using System.Runtime.InteropServices;
using ResidualEngine.Autograd;
using ResidualEngine.Backends;

namespace ResidualEngine;

public sealed partial class Tensor : IDisposable
{
    private Storage? _storage;
    private bool _requiresGrad;

    internal Tensor(Storage storage, Shape shape, DType dtype, MemoryFormat format = MemoryFormat.Contiguous)
    {
        if (storage.Bytes < shape.Numel * dtype.Size())
            throw new ArgumentException($"storage of {storage.Bytes} bytes is too small for shape {shape} of {dtype}");
        if (format == MemoryFormat.ChannelsLast && shape.Rank != 4)
            throw new ArgumentException($"channels-last format needs a 4-d tensor, got shape {shape}");
        _storage = storage;
        Shape = shape;
        DType = dtype;
        Format = format;
        Device = storage.Device;
        Backend = BackendRegistry.Get(Device);
        TensorStats.OnTensorCreated();
        TensorScope.Register(this);
    }

    public Shape Shape { get; }
    public DType DType { get; }
    public MemoryFormat Format { get; }
    public Device Device { get; private set; }
    public IBackend Backend { get; private set; }
    public long Numel => Shape.Numel;
    public int Rank => Shape.Rank;
    public long Bytes => Numel * DType.Size();
    /// <summary>Optional name, used in error messages (parameters get theirs from the module tree).</summary>
    public string? Name { get; set; }

    internal TensorScope? Scope { get; set; }
    public bool IsDisposed => _storage is null;

    /// <summary>The storage; throws if the tensor was disposed.</summary>
    public Storage Storage => _storage ?? throw new ObjectDisposedException(nameof(Tensor), $"tensor {Describe()} was disposed");

    /// <summary>Device or host address of the first element. Every call bumps the storage's
    /// <see cref="Storage.Version"/>: whoever takes the address may write through it.</summary>
    public nint Pointer
    {
        get
        {
            var s = Storage;
            s.Touch();
            return s.Pointer;
        }
    }

    // ---- autograd state ----

    private Node? _gradFn;
    private AccumulateGrad? _accumulator;

    /// <summary>The node that produced this tensor, or null for a leaf. The handle holds one reference to it.</summary>
    public Node? GradFn
    {
        get => _gradFn;
        internal set
        {
            value?.AddRef();
            var old = Interlocked.Exchange(ref _gradFn, value);
            old?.Release();
        }
    }

    public bool IsLeaf => GradFn is null;

    /// <summary>True for leaves marked as trainable and for every result computed from one while grad mode is on.</summary>
    public bool RequiresGrad
    {
        get => _requiresGrad || GradFn is not null;
        set
        {
            if (!IsLeaf) throw new InvalidOperationException("RequiresGrad can only be set on leaf tensors; use Detach() first");
            if (value && !DType.IsFloat()) throw new InvalidOperationException($"only floating-point tensors can require gradients, not {DType}");
            _requiresGrad = value;
        }
    }

    /// <summary>The graph node that adds gradients into this leaf's <see cref="Grad"/> (one per leaf).</summary>
    internal Node GradAccumulator()
    {
        if (!IsLeaf) throw new InvalidOperationException($"{Describe()} is not a leaf");
        if (_accumulator is { } a) return a;
        Interlocked.CompareExchange(ref _accumulator, new AccumulateGrad(this), null);
        return _accumulator;
    }

    /// <summary>Accumulated gradient of a leaf (owned by the tensor, not by any scope).</summary>
    public Tensor? Grad { get; set; }

    /// <summary>Runs reverse-mode differentiation from this tensor (a scalar unless a gradient is given).</summary>
    public void Backward(Tensor? gradient = null) => GradEngine.Backward(this, gradient);

    // ---- creation ----

    /// <summary>Uninitialised tensor (contents undefined).</summary>
    public static Tensor Empty(Shape shape, DType dtype = DType.F32, Device? device = null, MemoryFormat format = MemoryFormat.Contiguous)
    {
        ArgumentNullException.ThrowIfNull(shape);
        var be = BackendRegistry.Get(device ?? ResidualEngine.Device.Cpu);
        return new Tensor(be.Allocate(Math.Max(1, shape.Numel) * dtype.Size()), shape, dtype, format);
    }

    public static Tensor Empty(int[] dims, DType dtype = DType.F32, Device? device = null) => Empty(new Shape(dims), dtype, device);

    public static Tensor Full(Shape shape, double value, DType dtype = DType.F32, Device? device = null)
    {
        var t = Empty(shape, dtype, device);
        t.Backend.Fill(t, value);
        return t;
    }

    public static Tensor Zeros(Shape shape, DType dtype = DType.F32, Device? device = null) => Full(shape, 0, dtype, device);
    public static Tensor Zeros(params int[] dims) => Zeros(new Shape(dims));
    public static Tensor Ones(Shape shape, DType dtype = DType.F32, Device? device = null) => Full(shape, 1, dtype, device);

    /// <summary>A tensor like <paramref name="t"/> (shape, dtype, device, format), filled with zeros.</summary>
    public static Tensor ZerosLike(Tensor t) => Full(t.Shape, 0, t.DType, t.Device);
    public static Tensor EmptyLike(Tensor t) => Empty(t.Shape, t.DType, t.Device, t.Format);

    public static Tensor Scalar(double value, DType dtype = DType.F32, Device? device = null) => Full(Shape.Scalar, value, dtype, device);

    /// <summary>Copies host data into a new tensor.</summary>
    public static Tensor FromArray<T>(T[] data, Shape shape, Device? device = null) where T : unmanaged
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(shape);
        var dt = DTypeOf<T>();
        if (data.LongLength != shape.Numel)
            throw new ArgumentException($"{data.Length} values do not fill shape {shape} ({shape.Numel} elements)");
        var t = Empty(shape, dt, device);
        t.Backend.CopyFromHost(t, MemoryMarshal.AsBytes(data.AsSpan()));
        return t;
    }

    public static Tensor FromArray<T>(T[] data, params int[] dims) where T : unmanaged => FromArray(data, new Shape(dims));

    /// <summary>Normal(0, std) values from a seeded generator, in F32 or F64.</summary>
    public static Tensor Randn(Shape shape, Random rng, DType dtype = DType.F32, double std = 1.0, Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(rng);
        var v = new double[shape.Numel];
        for (long i = 0; i < v.LongLength; i++) v[i] = std * NextGaussian(rng);
        return FromDoubles(v, shape, dtype, device);
    }

    /// <summary>Uniform [lo, hi) values from a seeded generator.</summary>
    public static Tensor Rand(Shape shape, Random rng, double lo = 0, double hi = 1, DType dtype = DType.F32, Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(rng);
        var v = new double[shape.Numel];
        for (long i = 0; i < v.LongLength; i++) v[i] = lo + (hi - lo) * rng.NextDouble();
        return FromDoubles(v, shape, dtype, device);
    }

    /// <summary>Host doubles converted to <paramref name="dtype"/> (F32, F64, F16, BF16, I64, I32).</summary>
    public static Tensor FromDoubles(double[] v, Shape shape, DType dtype, Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(v);
        switch (dtype)
        {
            case DType.F64: return FromArray(v, shape, device);
            case DType.F32: return FromArray(Array.ConvertAll(v, x => (float)x), shape, device);
            case DType.I64: return FromArray(Array.ConvertAll(v, x => (long)x), shape, device);
            case DType.I32: return FromArray(Array.ConvertAll(v, x => (int)x), shape, device);
            default:
                using (var f = FromArray(Array.ConvertAll(v, x => (float)x), shape, device))
                    return f.To(dtype);
        }
    }

    internal static double NextGaussian(Random rng)
    {
        double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
        return Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }

    public static DType DTypeOf<T>() where T : unmanaged
    {
        if (typeof(T) == typeof(float)) return DType.F32;
        if (typeof(T) == typeof(double)) return DType.F64;
        if (typeof(T) == typeof(Half)) return DType.F16;
        if (typeof(T) == typeof(long)) return DType.I64;
        if (typeof(T) == typeof(int)) return DType.I32;
        if (typeof(T) == typeof(byte)) return DType.U8;
        if (typeof(T) == typeof(BFloat16)) return DType.BF16;
        throw new NotSupportedException($"no dtype for element type {typeof(T).Name}");
    }

    // ---- reading back ----

    /// <summary>Copies the elements to a new host array; T must match the dtype.</summary>
    public T[] ToArray<T>() where T : unmanaged
    {
        if (DTypeOf<T>() != DType)
            throw new InvalidOperationException($"ToArray<{typeof(T).Name}> on a {DType} tensor; use ToDoubles() or To(dtype)");
        var a = new T[Numel];
        Backend.CopyToHost(this, MemoryMarshal.AsBytes(a.AsSpan()));
        return a;
    }

    /// <summary>Every element converted to double (any dtype), in logical order.</summary>
    public double[] ToDoubles()
    {
        switch (DType)
        {
            case DType.F64: return ToArray<double>();
            case DType.F32: return Array.ConvertAll(ToArray<float>(), x => (double)x);
            case DType.I64: return Array.ConvertAll(ToArray<long>(), x => (double)x);
            case DType.I32: return Array.ConvertAll(ToArray<int>(), x => (double)x);
            case DType.U8: return Array.ConvertAll(ToArray<byte>(), x => (double)x);
            default:
                using (var f = To(DType.F32)) return f.ToDoubles();
        }
    }

    public float[] ToFloats() => DType == DType.F32 ? ToArray<float>() : Array.ConvertAll(ToDoubles(), x => (float)x);

    /// <summary>The value of a one-element tensor (synchronises with the device).</summary>
    public double Item()
    {
        if (Numel != 1) throw new InvalidOperationException($"Item() needs a one-element tensor, got shape {Shape}");
        return ToDoubles()[0];
    }

    // ---- conversion and views ----

    /// <summary>A copy on another device (or this tensor's data in a new tensor when already there). Not differentiable.</summary>
    public Tensor To(Device device)
    {
        var dst = Empty(Shape, DType, device, Format);
        if (device == Device) { Backend.Copy(dst, this); return dst; }
        // Cross-device copies go through the host side of whichever backend is not the CPU.
        if (Device.Type == DeviceType.Cpu)
            dst.Backend.CopyFromHost(dst, HostSpan());
        else if (device.Type == DeviceType.Cpu)
            Backend.CopyToHost(this, dst.HostSpan());
        else
        {
            using var host = To(ResidualEngine.Device.Cpu);
            dst.Backend.CopyFromHost(dst, host.HostSpan());
        }
        return dst;
    }

    /// <summary>A converted copy in another dtype (same device). Not differentiable.</summary>
    public Tensor To(DType dtype)
    {
        var dst = Empty(Shape, dtype, Device, Format);
        if (dtype == DType) Backend.Copy(dst, this); else Backend.Cast(dst, this);
        return dst;
    }

    /// <summary>A new tensor object sharing this storage, with no autograd history.</summary>
    public Tensor Detach() => View(Shape);

    /// <summary>
    /// A new handle to the same data with the same autograd history (gradients through it reach
    /// this tensor's producer, or this leaf). Disposing either handle leaves the other intact.
    /// Modules that pass their input through (Identity) return one, so that a caller always owns
    /// what Forward returns.
    /// </summary>
    public Tensor Alias()
    {
        var a = View(Shape);
        if (RequiresGrad && GradMode.IsEnabled) a.GradFn = GradFn ?? GradAccumulator();
        return a;
    }

    /// <summary>
    /// Applies <paramref name="f"/> to this tensor and disposes this handle: the way model code frees
    /// an intermediate the moment it is dead (`Conv1.Forward(x).Then(Bn1.Forward).Then(Ops.Relu)`).
    /// The autograd graph keeps whatever its backward still needs.
    /// </summary>
    public Tensor Then(Func<Tensor, Tensor> f)
    {
        ArgumentNullException.ThrowIfNull(f);
        Tensor y;
        try { y = f(this); }
        catch { Dispose(); throw; }
        if (!ReferenceEquals(y, this)) Dispose();
        return y;
    }

    /// <summary>A copy of the data in a new buffer, with no autograd history.</summary>
    public Tensor Clone() => To(DType);

    /// <summary>A new tensor object sharing this storage with another shape of the same element count (no autograd).</summary>
    internal Tensor View(Shape shape)
    {
        if (shape.Numel != Numel)
            throw new ArgumentException($"cannot view shape {Shape} as {shape}: {Numel} vs {shape.Numel} elements");
        var s = Storage;
        s.AddRef();
        return new Tensor(s, shape, DType, shape.Rank == 4 ? Format : MemoryFormat.Contiguous);
    }

    /// <summary>Host memory of a CPU tensor as bytes (the CPU backend's direct access).</summary>
    internal unsafe Span<byte> HostSpan()
    {
        if (Device.Type != DeviceType.Cpu) throw new InvalidOperationException($"tensor is on {Device}, not on the host");
        return new Span<byte>((void*)Pointer, checked((int)Bytes));
    }

    /// <summary>Typed host span of a CPU tensor.</summary>
    internal Span<T> Span<T>() where T : unmanaged => MemoryMarshal.Cast<byte, T>(HostSpan());

    public void Dispose()
    {
        var s = Interlocked.Exchange(ref _storage, null);
        if (s is null) return;
        // Only this handle's references go: the graph keeps what a backward through it still
        // needs, and frees itself once no handle or downstream node reaches it.
        Interlocked.Exchange(ref _gradFn, null)?.Release();
        var g = Grad;
        Grad = null;
        g?.Dispose();
        s.Release();
        TensorStats.OnTensorDisposed();
    }

    /// <summary>Moves this tensor object's data to another device in place (object identity is kept,
    /// so modules and optimizers holding it see the move). The gradient is dropped.</summary>
    internal void MoveTo(Device device)
    {
        if (device == Device) return;
        if (!IsLeaf) throw new InvalidOperationException($"only leaf tensors can be moved in place, not {Describe()}");
        using var moved = To(device);
        var s = moved.Storage;
        s.AddRef();
        var old = Interlocked.Exchange(ref _storage, s);
        old?.Release();
        Device = device;
        Backend = moved.Backend;
        Grad?.Dispose();
        Grad = null;
    }

    public string Describe() => $"{Name ?? "tensor"}{Shape} {DType} on {Device}";
    public override string ToString() => Describe();
}
