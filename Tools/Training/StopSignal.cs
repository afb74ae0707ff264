// Graceful stop on Ctrl-C (Console.CancelKeyPress) and SIGTERM (PosixSignalRegistration). The
// first signal, in any phase, raises a flag and cancels Token: setup (data generation and
// listing) stops at once with nothing saved, training stops after the current step with a
// checkpoint, and the process exits with 130. A second signal (Ctrl-C or SIGTERM) exits at once,
// also with 130: a run stuck anywhere can always be ended without kill -9.
using System.Runtime.InteropServices;

namespace ResidualEngine.Training;

public sealed class StopSignal : IDisposable
{
    public const int ExitCode = 130;

    private volatile string? _reason;
    private readonly CancellationTokenSource _cts = new();
    private readonly List<IDisposable> _registrations = new();
    private readonly ConsoleCancelEventHandler? _handler;
    private readonly Action<int> _exitNow;
    private readonly TextWriter _messages;
    private int _signals;

    private StopSignal(bool hookProcess, Action<int>? exitNow, TextWriter? messages)
    {
        _exitNow = exitNow ?? Environment.Exit;
        _messages = messages ?? Console.Error;
        if (!hookProcess) return;
        _handler = (_, e) =>
        {
            e.Cancel = true;
            OnSignal("Ctrl-C");
        };
        Console.CancelKeyPress += _handler;
        try
        {
            _registrations.Add(PosixSignalRegistration.Create(PosixSignal.SIGTERM, ctx =>
            {
                ctx.Cancel = true;
                OnSignal("SIGTERM");
            }));
        }
        catch (PlatformNotSupportedException)
        {
            // No SIGTERM on this platform; Ctrl-C still works.
        }
    }

    /// <summary>Listens to Ctrl-C and SIGTERM for the lifetime of the object.</summary>
    public static StopSignal ForProcess() => new(hookProcess: true, null, null);

    /// <summary>A flag only (tests and embedding code raise it with <see cref="Request"/>).</summary>
    public static StopSignal Manual() => new(hookProcess: false, null, null);

    /// <summary>Not hooked to the process; <see cref="OnSignal"/> calls <paramref name="exitNow"/> on the second signal (tests).</summary>
    internal static StopSignal ForTest(Action<int> exitNow, TextWriter messages) => new(hookProcess: false, exitNow, messages);

    public bool IsRequested => _reason is not null;
    public string? Reason => _reason;

    /// <summary>Cancelled by the first stop request: long setup work (listing, generating data) watches it.</summary>
    public CancellationToken Token => _cts.Token;

    public void Request(string reason)
    {
        if (_reason is not null) return;
        _reason = reason;
        try { _cts.Cancel(); }
        catch (ObjectDisposedException) { }
    }

    /// <summary>What a signal does: the first asks for a graceful stop, the second ends the process with 130.</summary>
    internal void OnSignal(string name)
    {
        if (Interlocked.Increment(ref _signals) == 1)
        {
            Request(name);
            _messages.WriteLine($"\n{name}: stopping (a checkpoint is saved if training has started); {name} again to quit at once");
            return;
        }
        _messages.WriteLine($"\n{name} again: quitting now");
        _messages.Flush();
        _exitNow(ExitCode);
    }

    public void Dispose()
    {
        if (_handler is not null) Console.CancelKeyPress -= _handler;
        foreach (var r in _registrations) r.Dispose();
        _registrations.Clear();
        _cts.Dispose();
    }
}
