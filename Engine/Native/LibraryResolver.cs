// The one place that finds the CUDA libraries at run time (nothing about CUDA is needed to build
// or to run on the CPU). Registered as the Engine assembly's DllImport resolver, it maps the
// logical names used by the bindings ("cuda", "nvrtc", "cublas", "cudnn", "nccl") to a loaded
// library; "mpi" is handed to MpiLibrary, which has its own search (MpiLibrary.cs).
// Search order per library (first hit wins; any path containing /stubs/ is never used):
//   1. RESIDUAL_LIB_<NAME> (a file or a folder), then RESIDUAL_CUDA_LIB_DIR (folders, ':'-separated)
//   2. CUDA_PATH, CUDA_HOME (lib64, lib; bin, bin/x64 on Windows)
//   3. /usr/local/cuda/lib64, /usr/local/nvidia/lib64 (GPU containers), /usr/lib/wsl/lib (WSL)
//   4. Python wheels' site-packages/nvidia/*/lib: the active VIRTUAL_ENV, /opt/torch/.venv, and the
//      system and user site folders (globbed, no process is spawned)
//   5. the loader's default search (LD_LIBRARY_PATH, ld.so.cache) by file name
// Companions are loaded first from the same folder (libcublasLt beside libcublas, cuDNN's
// sub-libraries, libnvrtc-builtins) so that libraries from a wheel resolve their own dependencies.
// The search itself is pure (SearchPlan) over an injectable environment, so tests can check it.
using System.Collections.Concurrent;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Text;

namespace ResidualEngine.Native;

/// <summary>The native libraries the CUDA backend uses.</summary>
public enum CudaLibrary
{
    Driver,
    Nvrtc,
    Cublas,
    Cudnn,
    /// <summary>NVIDIA's collective communication library (multi-GPU all-reduce); Linux only.</summary>
    Nccl,
}

/// <summary>What the file system and environment look like to the resolver (replaced in tests).</summary>
public interface ISearchEnvironment
{
    string? GetVariable(string name);
    bool FileExists(string path);
    /// <summary>Sub-folders of <paramref name="dir"/> whose names match a simple '*' pattern (empty if dir is missing).</summary>
    IEnumerable<string> Directories(string dir, string pattern);
    /// <summary>Files in <paramref name="dir"/> whose names match a simple '*' pattern (empty if dir is missing).</summary>
    IEnumerable<string> Files(string dir, string pattern);
    bool IsWindows { get; }
    string HomeDirectory { get; }
}

/// <summary>One path the resolver considered and what happened to it.</summary>
public sealed record LibraryAttempt(string Path, string Outcome);

/// <summary>The result of looking for one library: where it was found, or every place tried.</summary>
public sealed class LibraryReport(CudaLibrary library, IReadOnlyList<LibraryAttempt> attempts, string? loadedPath, nint handle)
{
    public CudaLibrary Library { get; } = library;
    public IReadOnlyList<LibraryAttempt> Attempts { get; } = attempts;
    /// <summary>The file that was loaded (as the loader reports it), or null when nothing could be loaded.</summary>
    public string? LoadedPath { get; } = loadedPath;
    public bool Found => Handle != 0;
    internal nint Handle { get; } = handle;

    public string Describe()
    {
        var sb = new StringBuilder();
        sb.Append(LibraryResolver.DisplayName(Library)).Append(Found ? $" loaded from {LoadedPath}" : " was not found");
        sb.Append("; paths tried:");
        foreach (var a in Attempts) sb.Append("\n  ").Append(a.Path).Append(": ").Append(a.Outcome);
        return sb.ToString();
    }
}

/// <summary>A CUDA library that could not be found; the message lists every path tried.</summary>
public sealed class NativeLibraryNotFoundException(LibraryReport report)
    : DllNotFoundException(report.Describe() + "\nInstall the library or point RESIDUAL_LIB_" +
        LibraryResolver.EnvName(report.Library) + " (a file or folder) or RESIDUAL_CUDA_LIB_DIR at it.")
{
    public LibraryReport Report { get; } = report;
}

public static class LibraryResolver
{
    private static readonly object s_lock = new();
    private static readonly ConcurrentDictionary<CudaLibrary, LibraryReport> s_reports = new();
    private static readonly Dictionary<CudaLibrary, int> s_preferredMajor = new();
    private static bool s_registered;

    /// <summary>The logical library names used in [LibraryImport] by the bindings.</summary>
    internal const string DriverName = "cuda", NvrtcName = "nvrtc", CublasName = "cublas", CudnnName = "cudnn", NcclName = "nccl", MpiName = "mpi";

    /// <summary>Installs the resolver for the Engine assembly (idempotent).</summary>
    public static void EnsureRegistered()
    {
        lock (s_lock)
        {
            if (s_registered) return;
            s_registered = true;
            NativeLibrary.SetDllImportResolver(typeof(LibraryResolver).Assembly, Resolve);
        }
    }

    private static nint Resolve(string name, Assembly assembly, DllImportSearchPath? path)
    {
        CudaLibrary? lib = name switch
        {
            DriverName => CudaLibrary.Driver,
            NvrtcName => CudaLibrary.Nvrtc,
            CublasName => CudaLibrary.Cublas,
            CudnnName => CudaLibrary.Cudnn,
            NcclName => CudaLibrary.Nccl,
            _ => null,
        };
        if (name == MpiName) return MpiLibrary.Require().Handle;
        if (lib is null) return 0; // not ours: the runtime's default probing applies
        return Require(lib.Value).Handle;
    }

    /// <summary>Finds and loads a library once; later calls return the same report.</summary>
    public static LibraryReport Find(CudaLibrary lib)
    {
        EnsureRegistered();
        if (s_reports.TryGetValue(lib, out var r)) return r;
        lock (s_lock)
        {
            if (s_reports.TryGetValue(lib, out r)) return r;
            int? major = s_preferredMajor.TryGetValue(lib, out var m) ? m : null;
            r = Probe(lib, SystemSearchEnvironment.Instance, SystemLibraryLoader.Instance, major);
            s_reports[lib] = r;
            return r;
        }
    }

    /// <summary>Like <see cref="Find"/> but throws <see cref="NativeLibraryNotFoundException"/> when missing.</summary>
    public static LibraryReport Require(CudaLibrary lib)
    {
        var r = Find(lib);
        return r.Found ? r : throw new NativeLibraryNotFoundException(r);
    }

    /// <summary>Asks for a library's major version to be tried first (e.g. NVRTC matching the driver's
    /// CUDA major). Has no effect once the library was loaded.</summary>
    public static void PreferMajorVersion(CudaLibrary lib, int major)
    {
        lock (s_lock) s_preferredMajor[lib] = major;
    }

    public static string DisplayName(CudaLibrary lib) => lib switch
    {
        CudaLibrary.Driver => "CUDA driver",
        CudaLibrary.Nvrtc => "NVRTC",
        CudaLibrary.Cublas => "cuBLAS",
        CudaLibrary.Cudnn => "cuDNN",
        CudaLibrary.Nccl => "NCCL",
        _ => lib.ToString(),
    };

    /// <summary>The suffix of the per-library override variable RESIDUAL_LIB_&lt;NAME&gt;.</summary>
    public static string EnvName(CudaLibrary lib) => lib switch
    {
        CudaLibrary.Driver => "CUDA",
        CudaLibrary.Nvrtc => "NVRTC",
        CudaLibrary.Cublas => "CUBLAS",
        CudaLibrary.Cudnn => "CUDNN",
        CudaLibrary.Nccl => "NCCL",
        _ => lib.ToString().ToUpperInvariant(),
    };

    /// <summary>File names tried for a library, newest first (the preferred major, if any, before the rest).</summary>
    public static IReadOnlyList<string> FileNames(CudaLibrary lib, bool windows, int? preferredMajor = null)
    {
        string[] names = (lib, windows) switch
        {
            (CudaLibrary.Driver, false) => ["libcuda.so.1", "libcuda.so"],
            (CudaLibrary.Nvrtc, false) => ["libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so.11.2", "libnvrtc.so"],
            (CudaLibrary.Cublas, false) => ["libcublas.so.13", "libcublas.so.12", "libcublas.so.11", "libcublas.so"],
            (CudaLibrary.Cudnn, false) => ["libcudnn.so.9", "libcudnn.so.8", "libcudnn.so"],
            (CudaLibrary.Nccl, false) => ["libnccl.so.2", "libnccl.so"],
            (CudaLibrary.Driver, true) => ["nvcuda.dll"],
            (CudaLibrary.Nvrtc, true) => ["nvrtc64_130_0.dll", "nvrtc64_120_0.dll", "nvrtc64_112_0.dll"],
            (CudaLibrary.Cublas, true) => ["cublas64_13.dll", "cublas64_12.dll", "cublas64_11.dll"],
            (CudaLibrary.Cudnn, true) => ["cudnn64_9.dll", "cudnn64_8.dll"],
            _ => [],
        };
        if (preferredMajor is not int m) return names;
        return names.OrderBy(n => MajorOf(n) == m ? 0 : 1).ToArray(); // stable: keeps the rest in order
    }

    /// <summary>The major version encoded in a library file name (libnvrtc.so.11.2 -> 11, nvrtc64_120_0.dll -> 12).</summary>
    internal static int? MajorOf(string fileName)
    {
        int so = fileName.IndexOf(".so.", StringComparison.Ordinal);
        if (so >= 0)
        {
            var rest = fileName[(so + 4)..];
            int dot = rest.IndexOf('.', StringComparison.Ordinal);
            return int.TryParse(dot >= 0 ? rest[..dot] : rest, out var v) ? v : null;
        }
        int us = fileName.IndexOf('_', StringComparison.Ordinal);
        if (fileName.EndsWith(".dll", StringComparison.OrdinalIgnoreCase) && us >= 0)
        {
            var digits = new string(fileName[(us + 1)..].TakeWhile(char.IsDigit).ToArray());
            if (digits.Length == 0) return null;
            // nvrtc64_120_0 carries major*10 + minor; cublas64_12 and cudnn64_9 carry the major.
            int v = int.Parse(digits, System.Globalization.CultureInfo.InvariantCulture);
            return digits.Length == 3 ? v / 10 : v;
        }
        return null;
    }

    /// <summary>Every full path to try, in order, for a library (without the loader-default names),
    /// each with the folder-search step it came from. Paths containing /stubs/ are dropped.</summary>
    public static IReadOnlyList<string> SearchPlan(CudaLibrary lib, ISearchEnvironment env, int? preferredMajor = null)
    {
        ArgumentNullException.ThrowIfNull(env);
        var names = FileNames(lib, env.IsWindows, preferredMajor);
        var paths = new List<string>();
        void AddDir(string? dir)
        {
            if (string.IsNullOrWhiteSpace(dir)) return;
            foreach (var n in names) paths.Add(Path.Combine(dir, n));
        }

        // 1. explicit overrides
        var own = env.GetVariable("RESIDUAL_LIB_" + EnvName(lib));
        if (!string.IsNullOrWhiteSpace(own))
        {
            if (env.FileExists(own)) paths.Add(own);
            else AddDir(own);
        }
        var dirs = env.GetVariable("RESIDUAL_CUDA_LIB_DIR");
        if (!string.IsNullOrWhiteSpace(dirs))
            foreach (var d in dirs.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)) AddDir(d);

        // 2. toolkit roots
        foreach (var root in new[] { env.GetVariable("CUDA_PATH"), env.GetVariable("CUDA_HOME") })
        {
            if (string.IsNullOrWhiteSpace(root)) continue;
            if (env.IsWindows) { AddDir(Path.Combine(root, "bin")); AddDir(Path.Combine(root, "bin", "x64")); }
            else { AddDir(Path.Combine(root, "lib64")); AddDir(Path.Combine(root, "lib")); }
        }

        // 3. well-known folders
        if (!env.IsWindows)
        {
            AddDir("/usr/local/cuda/lib64");
            AddDir("/usr/local/nvidia/lib64");
            AddDir("/usr/lib/wsl/lib");
        }

        // 4. Python wheels (the driver never comes from a wheel)
        if (lib != CudaLibrary.Driver)
            foreach (var site in SitePackages(env))
                foreach (var pkg in env.Directories(Path.Combine(site, "nvidia"), "*").Order(StringComparer.Ordinal))
                    AddDir(Path.Combine(pkg, env.IsWindows ? "bin" : "lib"));

        return paths.Where(p => !IsStub(p)).Distinct(StringComparer.Ordinal).ToList();
    }

    /// <summary>Python site-packages folders that may hold NVIDIA wheels.</summary>
    internal static IEnumerable<string> SitePackages(ISearchEnvironment env)
    {
        var venvs = new List<string>();
        var active = env.GetVariable("VIRTUAL_ENV");
        if (!string.IsNullOrWhiteSpace(active)) venvs.Add(active);
        if (!env.IsWindows) venvs.Add("/opt/torch/.venv");
        foreach (var v in venvs)
        {
            if (env.IsWindows) { yield return Path.Combine(v, "Lib", "site-packages"); continue; }
            foreach (var py in env.Directories(Path.Combine(v, "lib"), "python3*").Order(StringComparer.Ordinal))
                yield return Path.Combine(py, "site-packages");
        }
        if (env.IsWindows) yield break;
        foreach (var (root, leaves) in new[]
                 {
                     ("/usr/lib", new[] { "site-packages", "dist-packages" }),
                     ("/usr/local/lib", new[] { "site-packages", "dist-packages" }),
                     (Path.Combine(env.HomeDirectory, ".local", "lib"), new[] { "site-packages" }),
                 })
            foreach (var py in env.Directories(root, "python3*").Order(StringComparer.Ordinal))
                foreach (var leaf in leaves)
                    yield return Path.Combine(py, leaf);
    }

    internal static bool IsStub(string path) =>
        path.Replace('\\', '/').Contains("/stubs/", StringComparison.OrdinalIgnoreCase);

    /// <summary>Libraries to load from the same folder before the main one, in dependency order.</summary>
    internal static IEnumerable<string> Companions(CudaLibrary lib, string mainPath, ISearchEnvironment env)
    {
        var dir = Path.GetDirectoryName(mainPath);
        if (string.IsNullOrEmpty(dir)) yield break;
        var file = Path.GetFileName(mainPath);
        string[] patterns = (lib, env.IsWindows) switch
        {
            (CudaLibrary.Cublas, false) => ["libcublasLt.so*"],
            (CudaLibrary.Cublas, true) => ["cublasLt64_*.dll"],
            (CudaLibrary.Nvrtc, false) => ["libnvrtc-builtins.so*"],
            (CudaLibrary.Nvrtc, true) => ["nvrtc-builtins64_*.dll"],
            // cuDNN 9 sub-libraries (graph first, then engines, ops, cnn, adv), then cuDNN 8's.
            (CudaLibrary.Cudnn, false) =>
            [
                "libcudnn_graph.so*", "libcudnn_engines_precompiled.so*", "libcudnn_engines_runtime_compiled.so*",
                "libcudnn_heuristic.so*", "libcudnn_ops.so*", "libcudnn_cnn.so*", "libcudnn_adv.so*",
                "libcudnn_ops_infer.so*", "libcudnn_ops_train.so*", "libcudnn_cnn_infer.so*", "libcudnn_cnn_train.so*",
                "libcudnn_adv_infer.so*", "libcudnn_adv_train.so*",
            ],
            _ => [],
        };
        int? major = MajorOf(file);
        foreach (var pattern in patterns)
        {
            // Prefer the file whose version matches the main library's major version.
            var matches = env.Files(dir, pattern).Order(StringComparer.Ordinal).ToList();
            var pick = matches.FirstOrDefault(m => major is null || MajorOf(Path.GetFileName(m)) == major);
            if (pick is not null) yield return pick;
        }
    }

    /// <summary>Runs the whole search with the given environment and loader (tests pass fakes for both).</summary>
    internal static LibraryReport Probe(CudaLibrary lib, ISearchEnvironment env, ILibraryLoader loader, int? preferredMajor = null)
    {
        var attempts = new List<LibraryAttempt>();
        foreach (var path in SearchPlan(lib, env, preferredMajor))
        {
            if (!env.FileExists(path)) { attempts.Add(new(path, "not present")); continue; }
            foreach (var companion in Companions(lib, path, env))
                if (!loader.TryLoad(companion, out _, out var why))
                    attempts.Add(new(companion, "companion failed to load (continuing): " + why));
            if (loader.TryLoad(path, out var h, out var error))
            {
                attempts.Add(new(path, "loaded"));
                return new LibraryReport(lib, attempts, path, h);
            }
            attempts.Add(new(path, "present but failed to load: " + error));
        }

        // 5. the loader's default search, by file name
        foreach (var name in FileNames(lib, env.IsWindows, preferredMajor))
        {
            if (!loader.TryLoad(name, out var h, out _)) { attempts.Add(new($"{name} (loader default search)", "not found")); continue; }
            var where = loader.LoadedPathOf(name) ?? name;
            if (IsStub(where))
            {
                loader.Free(h);
                attempts.Add(new(where, "rejected: a stub library (link-time only, no driver behind it)"));
                continue;
            }
            attempts.Add(new($"{name} (loader default search)", "loaded from " + where));
            return new LibraryReport(lib, attempts, where, h);
        }
        return new LibraryReport(lib, attempts, null, 0);
    }
}

/// <summary>Loads native libraries (replaced in tests).</summary>
public interface ILibraryLoader
{
    /// <summary>Loads a library by path or by file name (the loader's default search); false with a reason on failure.</summary>
    bool TryLoad(string pathOrName, out nint handle, out string error);
    /// <summary>The full path the loader picked for a file name, when it can tell.</summary>
    string? LoadedPathOf(string fileName);
    void Free(nint handle);
}

/// <summary>NativeLibrary, with the loader's error text and /proc/self/maps to see where a library came from.</summary>
public sealed class SystemLibraryLoader : ILibraryLoader
{
    public static readonly SystemLibraryLoader Instance = new();

    public bool TryLoad(string pathOrName, out nint handle, out string error)
    {
        try
        {
            handle = NativeLibrary.Load(pathOrName);
            error = "";
            return true;
        }
        catch (DllNotFoundException e) { error = FirstLine(e.Message); }
        catch (BadImageFormatException e) { error = FirstLine(e.Message); }
        handle = 0;
        return false;
    }

    public void Free(nint handle) => NativeLibrary.Free(handle);

    private static string FirstLine(string s)
    {
        int nl = s.IndexOf('\n', StringComparison.Ordinal);
        return nl < 0 ? s : s[..nl];
    }

    /// <summary>Read from /proc/self/maps (Linux only); libcuda.so.1 may map as libcuda.so.550.54.15.</summary>
    public string? LoadedPathOf(string fileName)
    {
        ArgumentNullException.ThrowIfNull(fileName);
        if (!OperatingSystem.IsLinux()) return null;
        var stem = fileName.Split(".so", 2)[0] + ".so";
        try
        {
            foreach (var line in File.ReadLines("/proc/self/maps"))
            {
                int slash = line.IndexOf('/', StringComparison.Ordinal);
                if (slash < 0) continue;
                var p = line[slash..];
                var f = Path.GetFileName(p);
                if (f == fileName || f == stem || f.StartsWith(stem + ".", StringComparison.Ordinal)) return p;
            }
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return null;
    }
}

/// <summary>The real process environment and file system.</summary>
public sealed class SystemSearchEnvironment : ISearchEnvironment
{
    public static readonly SystemSearchEnvironment Instance = new();

    public string? GetVariable(string name) => Environment.GetEnvironmentVariable(name);
    public bool FileExists(string path) => File.Exists(path);
    public bool IsWindows => OperatingSystem.IsWindows();
    public string HomeDirectory => Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);

    public IEnumerable<string> Directories(string dir, string pattern)
    {
        try { return Directory.Exists(dir) ? Directory.GetDirectories(dir, pattern) : []; }
        catch (IOException) { return []; }
        catch (UnauthorizedAccessException) { return []; }
    }

    public IEnumerable<string> Files(string dir, string pattern)
    {
        try { return Directory.Exists(dir) ? Directory.GetFiles(dir, pattern) : []; }
        catch (IOException) { return []; }
        catch (UnauthorizedAccessException) { return []; }
    }
}
