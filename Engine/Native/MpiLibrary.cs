// Finds the MPI library at run time (nothing about MPI is needed to build, or to train in one
// process). Search order, first hit wins:
//   1. RESIDUAL_LIB_MPI (a file, or a folder holding one of the names below)
//   2. the loader's default search (LD_LIBRARY_PATH, ld.so.cache) by file name, then the
//      distributions' private folders (Fedora's /usr/lib64/openmpi/lib, /usr/lib64/mpich/lib)
// File names: Open MPI's libmpi.so.40 and MPICH's libmpi.so.12 (also Intel MPI and MVAPICH),
// then libmpi.so. The launcher decides which comes first: under Open MPI's mpirun
// (OMPI_COMM_WORLD_SIZE is set) Open MPI's; under a PMI launcher such as MPICH's Hydra (PMI_SIZE)
// MPICH's, since a library must match the launcher that started the process.
using System.Runtime.InteropServices;
using System.Text;

namespace ResidualEngine.Native;

/// <summary>Where the MPI library was found, or every place tried.</summary>
public sealed class MpiLibraryReport(IReadOnlyList<LibraryAttempt> attempts, string? loadedPath, nint handle)
{
    public IReadOnlyList<LibraryAttempt> Attempts { get; } = attempts;
    public string? LoadedPath { get; } = loadedPath;
    public bool Found => Handle != 0;
    internal nint Handle { get; } = handle;

    public string Describe()
    {
        var sb = new StringBuilder("MPI").Append(Found ? $" loaded from {LoadedPath}" : " was not found").Append("; paths tried:");
        foreach (var a in Attempts) sb.Append("\n  ").Append(a.Path).Append(": ").Append(a.Outcome);
        return sb.ToString();
    }
}

/// <summary>No MPI library could be loaded; the message lists every path tried and how to install one.</summary>
public sealed class MpiNotFoundException(MpiLibraryReport report)
    : DllNotFoundException(report.Describe() + "\nInstall Open MPI (Debian/Ubuntu: apt-get install openmpi-bin libopenmpi-dev; " +
        "Fedora: dnf install openmpi) or point RESIDUAL_LIB_MPI (a file or folder) at libmpi.so.")
{
    public MpiLibraryReport Report { get; } = report;
}

public static class MpiLibrary
{
    private static readonly object s_lock = new();
    private static MpiLibraryReport? s_report;

    /// <summary>File names tried, the launcher's implementation first.</summary>
    public static IReadOnlyList<string> FileNames(ISearchEnvironment env)
    {
        ArgumentNullException.ThrowIfNull(env);
        if (env.IsWindows) return ["msmpi.dll"];
        bool mpich = env.GetVariable("OMPI_COMM_WORLD_SIZE") is null && env.GetVariable("PMI_SIZE") is not null;
        return mpich ? ["libmpi.so.12", "libmpi.so.40", "libmpi.so"] : ["libmpi.so.40", "libmpi.so.12", "libmpi.so"];
    }

    /// <summary>Full paths tried before the loader's default search (the override only).</summary>
    public static IReadOnlyList<string> SearchPlan(ISearchEnvironment env)
    {
        ArgumentNullException.ThrowIfNull(env);
        var paths = new List<string>();
        var own = env.GetVariable("RESIDUAL_LIB_MPI");
        if (!string.IsNullOrWhiteSpace(own))
        {
            if (env.FileExists(own)) paths.Add(own);
            else foreach (var n in FileNames(env)) paths.Add(Path.Combine(own, n));
        }
        return paths;
    }

    /// <summary>Folders of distributions that keep MPI off the loader's path, tried after the default search.</summary>
    internal static IReadOnlyList<string> FallbackFolders { get; } = ["/usr/lib64/openmpi/lib", "/usr/lib64/mpich/lib", "/usr/lib/x86_64-linux-gnu/openmpi/lib"];

    /// <summary>Finds and loads MPI once; later calls return the same report.</summary>
    public static MpiLibraryReport Find()
    {
        lock (s_lock) return s_report ??= Probe(SystemSearchEnvironment.Instance, SystemLibraryLoader.Instance);
    }

    /// <summary>Like <see cref="Find"/>, but throws <see cref="MpiNotFoundException"/> when MPI is missing.</summary>
    public static MpiLibraryReport Require()
    {
        var r = Find();
        return r.Found ? r : throw new MpiNotFoundException(r);
    }

    /// <summary>The whole search with the given environment and loader (tests pass fakes).</summary>
    internal static MpiLibraryReport Probe(ISearchEnvironment env, ILibraryLoader loader)
    {
        var attempts = new List<LibraryAttempt>();
        foreach (var path in SearchPlan(env))
        {
            if (!env.FileExists(path)) { attempts.Add(new(path, "not present")); continue; }
            if (loader.TryLoad(path, out var h, out var error)) { attempts.Add(new(path, "loaded")); return new(attempts, path, h); }
            attempts.Add(new(path, "present but failed to load: " + error));
        }
        foreach (var name in FileNames(env))
        {
            if (loader.TryLoad(name, out var h, out _))
            {
                var where = loader.LoadedPathOf(name) ?? name;
                attempts.Add(new($"{name} (loader default search)", "loaded from " + where));
                return new(attempts, where, h);
            }
            attempts.Add(new($"{name} (loader default search)", "not found"));
        }
        foreach (var dir in FallbackFolders)
            foreach (var name in FileNames(env))
            {
                var path = Path.Combine(dir, name);
                if (!env.FileExists(path)) { attempts.Add(new(path, "not present")); continue; }
                if (loader.TryLoad(path, out var h, out var error)) { attempts.Add(new(path, "loaded")); return new(attempts, path, h); }
                attempts.Add(new(path, "present but failed to load: " + error));
            }
        return new(attempts, null, 0);
    }

    /// <summary>The address of an exported variable or function of the loaded library, or 0.</summary>
    internal static nint Export(string name) =>
        NativeLibrary.TryGetExport(Require().Handle, name, out var p) ? p : 0;
}
