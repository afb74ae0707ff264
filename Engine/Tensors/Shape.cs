// An immutable, validated list of dimension sizes. Negative dimensions, element counts
// that overflow a long, and ranks beyond MaxRank are rejected with ArgumentException.
using System.Collections;

namespace ResidualEngine;

public sealed class Shape : IEquatable<Shape>, IReadOnlyList<int>
{
    public const int MaxRank = 8;
    private readonly int[] _dims;

    public Shape(params int[] dims)
    {
        ArgumentNullException.ThrowIfNull(dims);
        if (dims.Length > MaxRank)
            throw new ArgumentException($"rank {dims.Length} exceeds the maximum rank {MaxRank}", nameof(dims));
        long n = 1;
        for (int i = 0; i < dims.Length; i++)
        {
            if (dims[i] < 0)
                throw new ArgumentException($"dimension {i} is negative ({dims[i]}) in shape {Format(dims)}", nameof(dims));
            try { n = checked(n * dims[i]); }
            catch (OverflowException)
            {
                throw new ArgumentException($"element count of shape {Format(dims)} overflows a 64-bit integer", nameof(dims));
            }
        }
        _dims = (int[])dims.Clone();
        Numel = n;
    }

    /// <summary>Builds a shape from 64-bit sizes (as read from files), rejecting any size above int.MaxValue.</summary>
    public static Shape FromLongs(IReadOnlyList<long> dims)
    {
        ArgumentNullException.ThrowIfNull(dims);
        var d = new int[dims.Count];
        for (int i = 0; i < d.Length; i++)
        {
            if (dims[i] < 0 || dims[i] > int.MaxValue)
                throw new ArgumentException($"dimension {i} ({dims[i]}) is negative or too large", nameof(dims));
            d[i] = (int)dims[i];
        }
        return new Shape(d);
    }

    public static readonly Shape Scalar = new();

    public int Rank => _dims.Length;
    public long Numel { get; }
    public int Count => _dims.Length;
    public int this[int i] => _dims[i < 0 ? i + _dims.Length : i];
    public ReadOnlySpan<int> Dims => _dims;
    public int[] ToArray() => (int[])_dims.Clone();

    /// <summary>Checks the rank and throws an ArgumentException naming <paramref name="what"/> otherwise.</summary>
    public void RequireRank(int rank, string what)
    {
        if (Rank != rank)
            throw new ArgumentException($"{what} must have rank {rank}, got shape {this} (rank {Rank})");
    }

    public bool Equals(Shape? other) => other is not null && _dims.AsSpan().SequenceEqual(other._dims);
    public override bool Equals(object? obj) => obj is Shape s && Equals(s);
    public override int GetHashCode()
    {
        var h = new HashCode();
        foreach (var d in _dims) h.Add(d);
        return h.ToHashCode();
    }
    public static bool operator ==(Shape? a, Shape? b) => a is null ? b is null : a.Equals(b);
    public static bool operator !=(Shape? a, Shape? b) => !(a == b);

    public override string ToString() => Format(_dims);
    private static string Format(int[] d) => "(" + string.Join(", ", d) + (d.Length == 1 ? ",)" : ")");

    public IEnumerator<int> GetEnumerator() => ((IEnumerable<int>)_dims).GetEnumerator();
    IEnumerator IEnumerable.GetEnumerator() => _dims.GetEnumerator();
}
