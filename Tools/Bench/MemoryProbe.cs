// Peak memory of a benchmark run: the engine's own counters (TensorStats: exact peaks of live tensor
// bytes on both devices, and what each caching allocator reserves), and the process's resident set
// (peak minus the level before the model was built), measured the same way as the PyTorch baseline
// does with getrusage, so the two can be compared.
using System.Diagnostics;
using System.Globalization;

namespace ResidualEngine.Tools.Bench;

public sealed class MemoryProbe : IDisposable
{
    private readonly Device _device;

    /// <summary>Starts measuring: call before the model is built.</summary>
    public MemoryProbe(Device device)
    {
        _device = device;
        BaselineRssBytes = CurrentRssBytes();
        TensorStats.ResetPeak();
    }

    public long BaselineRssBytes { get; }

    /// <summary>Peak bytes held by live tensors on the device since the probe started.</summary>
    public long PeakTensorBytes => TensorStats.PeakBytes(_device.Type);

    /// <summary>What the device's caching allocator holds now (live blocks plus cache).</summary>
    public long ReservedBytes => TensorStats.ReservedBytes(_device.Type);

    /// <summary>Highest resident set size of this process so far (Linux VmHWM, else the working-set peak).</summary>
    public static long PeakRssBytes() => ReadStatusKb("VmHWM") ?? Process.GetCurrentProcess().PeakWorkingSet64;

    public static long CurrentRssBytes() => ReadStatusKb("VmRSS") ?? Environment.WorkingSet;

    private static long? ReadStatusKb(string key)
    {
        try
        {
            if (!File.Exists("/proc/self/status")) return null;
            foreach (var line in File.ReadLines("/proc/self/status"))
            {
                if (!line.StartsWith(key + ":", StringComparison.Ordinal)) continue;
                var parts = line[(key.Length + 1)..].Trim().Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (parts.Length > 0 && long.TryParse(parts[0], NumberStyles.Integer, CultureInfo.InvariantCulture, out var kb)) return kb * 1024;
            }
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return null;
    }

    public void Dispose() { }
}
