// A Random whose stream can be repositioned by a key: Seek(k) makes the following draws a pure
// function of (seed, k). The trainer seeks the drop-path generator to the global step before each
// step, so stochastic-depth masks are part of exact resume without storing generator state.
// Without Seek it is an ordinary seeded Random.
namespace ResidualEngine.Models;

public sealed class SeekableRandom : Random
{
    private readonly int _seed;
    private Random _inner;

    public SeekableRandom(int seed)
    {
        _seed = seed;
        _inner = new Random(seed);
    }

    /// <summary>Restarts the stream at position <paramref name="key"/> (e.g. the global step).</summary>
    public void Seek(long key) => _inner = new Random(unchecked((int)((ulong)(_seed * 1_000_003L + key) * 0x9E3779B97F4A7C15UL >> 33)));

    public override int Next() => _inner.Next();
    public override int Next(int maxValue) => _inner.Next(maxValue);
    public override int Next(int minValue, int maxValue) => _inner.Next(minValue, maxValue);
    public override long NextInt64() => _inner.NextInt64();
    public override long NextInt64(long maxValue) => _inner.NextInt64(maxValue);
    public override long NextInt64(long minValue, long maxValue) => _inner.NextInt64(minValue, maxValue);
    public override double NextDouble() => _inner.NextDouble();
    public override float NextSingle() => _inner.NextSingle();
    public override void NextBytes(byte[] buffer) => _inner.NextBytes(buffer);
    public override void NextBytes(Span<byte> buffer) => _inner.NextBytes(buffer);
    protected override double Sample() => _inner.NextDouble();
}
