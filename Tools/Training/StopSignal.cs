// Graceful stop on Ctrl-C (Console.CancelKeyPress) and SIGTERM (PosixSignalRegistration): the
// first signal only raises a flag, which the trainer checks between steps, so the current step
// finishes, a checkpoint is written and the process exits with 130. A second Ctrl-C is not
// intercepted, so an impatient user can still kill the process at once.
using System.Runtime.InteropServices;

namespace ResidualEngine.Training;

public sealed class StopSignal : IDisposable
{
    private volatile string? _reason;
    private readonly List<IDisposable> _registrations = new();
    private readonly ConsoleCancelEventHandler? _handler;

    private StopSignal(bool hookProcess)
    {
        if (!hookProcess) return;
        _handler = (_, e) =>
        {
            if (_reason is not null) return; // second Ctrl-C: let the runtime end the process
            e.Cancel = true;
            Request("Ctrl-C");
            Console.Error.WriteLine("\nstopping after this step and saving a checkpoint (Ctrl-C again to quit at once)...");
        };
        Console.CancelKeyPress += _handler;
        try
        {
            _registrations.Add(PosixSignalRegistration.Create(PosixSignal.SIGTERM, ctx =>
            {
                ctx.Cancel = true;
                Request("SIGTERM");
            }));
        }
        catch (PlatformNotSupportedException)
        {
            // No SIGTERM on this platform; Ctrl-C still works.
        }
    }

    /// <summary>Listens to Ctrl-C and SIGTERM for the lifetime of the object.</summary>
    public static StopSignal ForProcess() => new(hookProcess: true);

    /// <summary>A flag only (tests and embedding code raise it with <see cref="Request"/>).</summary>
    public static StopSignal Manual() => new(hookProcess: false);

    public bool IsRequested => _reason is not null;
    public string? Reason => _reason;

    public void Request(string reason) => _reason ??= reason;

    public void Dispose()
    {
        if (_handler is not null) Console.CancelKeyPress -= _handler;
        foreach (var r in _registrations) r.Dispose();
        _registrations.Clear();
    }
}
