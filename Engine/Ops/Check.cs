// Argument checks shared by the ops. Every failure is an ArgumentException whose message names
// the op, the argument and what was expected, e.g. "Conv2d: weight has 3 input channels per group, input has 4".
namespace ResidualEngine;

internal static class Check
{
    public static void NotDisposed(string op, Tensor t, string name)
    {
        ArgumentNullException.ThrowIfNull(t, name);
        if (t.IsDisposed) throw new ObjectDisposedException(name, $"{op}: {name} was disposed");
    }

    public static void SameDevice(string op, Tensor a, string an, Tensor b, string bn)
    {
        if (a.Device != b.Device) throw new ArgumentException($"{op}: {an} is on {a.Device} but {bn} is on {b.Device}");
    }

    public static void SameDType(string op, Tensor a, string an, Tensor b, string bn)
    {
        if (a.DType != b.DType) throw new ArgumentException($"{op}: {an} is {a.DType} but {bn} is {b.DType}");
    }

    public static void SameShape(string op, Tensor a, string an, Tensor b, string bn)
    {
        if (a.Shape != b.Shape) throw new ArgumentException($"{op}: {an} has shape {a.Shape} but {bn} has shape {b.Shape}");
    }

    /// <summary>Mixed memory formats inside one op are an error naming both tensors (convert one with
    /// Ops.Contiguous, or the whole model and its inputs with Module.To(MemoryFormat)).</summary>
    public static void SameFormat(string op, Tensor a, string an, Tensor b, string bn)
    {
        if (a.Format != b.Format)
            throw new ArgumentException($"{op}: {an} {a.Describe()} is {FormatName(a.Format)} but {bn} {b.Describe()} is {FormatName(b.Format)}; " +
                "convert one of them (Ops.Contiguous(x, format)), or the model with model.To(MemoryFormat) and its inputs alike");
    }

    public static string FormatName(MemoryFormat f) => f == MemoryFormat.ChannelsLast ? "channels-last (NHWC)" : "NCHW";

    /// <summary>Same device, dtype, shape and memory format.</summary>
    public static void Compatible(string op, Tensor a, string an, Tensor b, string bn)
    {
        NotDisposed(op, a, an);
        NotDisposed(op, b, bn);
        SameDevice(op, a, an, b, bn);
        SameDType(op, a, an, b, bn);
        SameShape(op, a, an, b, bn);
        SameFormat(op, a, an, b, bn);
    }

    public static void Float(string op, Tensor t, string name)
    {
        NotDisposed(op, t, name);
        if (!t.DType.IsFloat()) throw new ArgumentException($"{op}: {name} must be a floating-point tensor, got {t.DType}");
    }

    public static void Rank(string op, Tensor t, string name, int rank)
    {
        if (t.Rank != rank) throw new ArgumentException($"{op}: {name} must have rank {rank}, got shape {t.Shape}");
    }

    public static void Nchw(string op, Tensor t, string name)
    {
        if (t.Format != MemoryFormat.Contiguous)
            throw new NotSupportedException($"{op}: {name} is channels-last; this op supports NCHW only so far");
    }

    public static void Positive(string op, int v, string name)
    {
        if (v <= 0) throw new ArgumentException($"{op}: {name} must be positive, got {v}");
    }

    public static void NonNegative(string op, int v, string name)
    {
        if (v < 0) throw new ArgumentException($"{op}: {name} must not be negative, got {v}");
    }
}
