// Peak memory of a benchmark run. On CUDA the engine's own counter (TensorStats.PeakCudaBytes) is
// exact. On the CPU, live tensor bytes are only a counter, so a background thread samples it (and
// the bench loop samples at phase boundaries, where the peak usually is); the process's resident
// set (peak minus the level before the model was built) is measured the same way as the PyTorch
// baseline does with getrusage, so the two can be compared.
using System.Diagnostics;
using System.Globalization;

namespace ResidualEngine.Tools.Bench;

public sealed class MemoryProbe : IDisposable
{
    private readonly Device _device;
    private readonly Thread? _sampler;
    private volatile bool _stop;
    private long _peakTensorBytes;

    /// <summary>Starts measuring: call before the model is built.</summary>
    public MemoryProbe(Device device, int sampleIntervalMs = 2)
    {
        _device = device;
        BaselineRssBytes = CurrentRssBytes();
        if (device.Type == DeviceType.Cuda) TensorStats.ResetPeak();
        _peakTensorBytes = TensorStats.LiveBytes(device.Type);
        if (device.Type == DeviceType.Cpu && sampleIntervalMs > 0)
        {
            _sampler = new Thread(() =>
            {
                while (!_stop)
                {
                    Sample();
                    Thread.Sleep(sampleIntervalMs);
                }
            }) { IsBackground = true, Name = "bench memory sampler", Priority = ThreadPriority.AboveNormal };
            _sampler.Start();
        }
    }

    public long BaselineRssBytes { get; }

    /// <summary>Records the current live tensor bytes (cheap; call at phase boundaries).</summary>
    public void Sample()
    {
        long now = TensorStats.LiveBytes(_device.Type);
        long peak;
        while (now > (peak = Interlocked.Read(ref _peakTensorBytes)))
            if (Interlocked.CompareExchange(ref _peakTensorBytes, now, peak) == peak) break;
    }

    /// <summary>Peak bytes held by live tensors on the device (exact on CUDA, sampled on the CPU).</summary>
    public long PeakTensorBytes =>
        _device.Type == DeviceType.Cuda ? TensorStats.PeakCudaBytes : Interlocked.Read(ref _peakTensorBytes);

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

    public void Dispose()
    {
        _stop = true;
        _sampler?.Join();
    }
}
