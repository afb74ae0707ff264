// The kernels of Kernels/*.cu, compiled at run time by NVRTC. Sources travel inside the Engine
// assembly (embedded as "Kernels/<file>"); users add theirs with Register or RegisterEmbedded.
// Each file is compiled once per (source and headers, arch, options, NVRTC version) — the hash of
// those is the key of an on-disk cache (~/.cache/residual/kernels, or RESIDUAL_KERNEL_CACHE) — to
// CUBIN for the GPU's sm_XY, or to PTX for the newest architecture NVRTC knows when the GPU is newer
// than NVRTC (the driver then finishes the compile). Compiling needs only libnvrtc, not a GPU, so CI
// proves every kernel compiles (CompileAll). A failed compile raises KernelCompileException with the log.
using System.Reflection;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using ResidualEngine.Native;

namespace ResidualEngine.Backends.Cuda;

/// <summary>One kernel source file (or header) by name.</summary>
public sealed record KernelSource(string FileName, string Text);

/// <summary>A compiled kernel file: a CUBIN (ELF) image, or NUL-terminated PTX when <see cref="IsCubin"/> is false.</summary>
public sealed record CompiledKernel(string FileName, string Arch, byte[] Image, bool IsCubin, bool FromCache, string Log,
    string CacheKey, IReadOnlyList<string> Options)
{
    /// <summary>True if the image defines a kernel of this (extern "C") name.</summary>
    public bool Defines(string kernelName)
    {
        ArgumentNullException.ThrowIfNull(kernelName);
        // The symbol table (CUBIN) and the .entry lines (PTX) both hold the plain name.
        var needle = Encoding.ASCII.GetBytes(kernelName);
        var span = Image.AsSpan();
        for (int at = span.IndexOf(needle); at >= 0;)
        {
            int end = at + needle.Length;
            bool startOk = at == 0 || !IsIdent(span[at - 1]);
            bool endOk = end >= span.Length || !IsIdent(span[end]);
            if (startOk && endOk) return true;
            int next = span[(at + 1)..].IndexOf(needle);
            at = next < 0 ? -1 : at + 1 + next;
        }
        return false;
    }

    private static bool IsIdent(byte b) => b == '_' || char.IsAsciiLetterOrDigit((char)b);
}

/// <summary>The outcome of compiling one file in a check run (residual kernels check, CI).</summary>
public sealed record KernelCheckResult(string FileName, bool Ok, string Log, IReadOnlyList<string> MissingKernels, CompiledKernel? Kernel);

public sealed class KernelLibrary : IDisposable
{
    private static readonly object s_lock = new();
    private static readonly SortedDictionary<string, string> s_sources = new(StringComparer.Ordinal);
    private static readonly SortedDictionary<string, string> s_headers = new(StringComparer.Ordinal);

    static KernelLibrary() => RegisterEmbedded(typeof(KernelLibrary).Assembly);

    /// <summary>Every known .cu file (embedded and registered), by name.</summary>
    public static IReadOnlyList<KernelSource> Sources
    {
        get { lock (s_lock) return s_sources.Select(kv => new KernelSource(kv.Key, kv.Value)).ToList(); }
    }

    /// <summary>Headers (.cuh) available to every kernel through #include "name".</summary>
    public static IReadOnlyList<KernelSource> Headers
    {
        get { lock (s_lock) return s_headers.Select(kv => new KernelSource(kv.Key, kv.Value)).ToList(); }
    }

    public static KernelSource Source(string fileName)
    {
        lock (s_lock)
            return s_sources.TryGetValue(fileName, out var t) ? new KernelSource(fileName, t)
                : throw new ArgumentException($"no kernel file named '{fileName}' (known: {string.Join(", ", s_sources.Keys)})", nameof(fileName));
    }

    /// <summary>Adds or replaces a kernel file (.cu) or header (.cuh) by name.</summary>
    public static void Register(string fileName, string text)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(fileName);
        ArgumentNullException.ThrowIfNull(text);
        lock (s_lock)
        {
            if (fileName.EndsWith(".cuh", StringComparison.Ordinal)) s_headers[fileName] = text;
            else if (fileName.EndsWith(".cu", StringComparison.Ordinal)) s_sources[fileName] = text;
            else throw new ArgumentException($"kernel file '{fileName}' must end in .cu or .cuh", nameof(fileName));
        }
    }

    /// <summary>Registers every embedded resource named "Kernels/&lt;file&gt;.cu" or ".cuh" of an assembly.</summary>
    public static void RegisterEmbedded(Assembly assembly)
    {
        ArgumentNullException.ThrowIfNull(assembly);
        foreach (var res in assembly.GetManifestResourceNames())
        {
            if (!res.StartsWith("Kernels/", StringComparison.Ordinal)) continue;
            if (!res.EndsWith(".cu", StringComparison.Ordinal) && !res.EndsWith(".cuh", StringComparison.Ordinal)) continue;
            using var s = assembly.GetManifestResourceStream(res)!;
            using var r = new StreamReader(s, Encoding.UTF8);
            Register(res["Kernels/".Length..], r.ReadToEnd());
        }
    }

    // ---- compiling (no GPU needed) ----

    /// <summary>NVRTC's version, e.g. "12.4"; throws NativeLibraryNotFoundException when NVRTC is missing.</summary>
    public static string CompilerVersion
    {
        get
        {
            LibraryResolver.Require(CudaLibrary.Nvrtc);
            var (major, minor) = Nvrtc.Version();
            return $"{major}.{minor}";
        }
    }

    /// <summary>The SM numbers NVRTC can generate CUBIN for.</summary>
    public static IReadOnlyList<int> SupportedArchs()
    {
        LibraryResolver.Require(CudaLibrary.Nvrtc);
        return Nvrtc.SupportedArchs();
    }

    /// <summary>Parses "sm_90" (or "90", "compute_90") to 90.</summary>
    public static int ParseArch(string arch)
    {
        ArgumentNullException.ThrowIfNull(arch);
        var digits = arch.StartsWith("sm_", StringComparison.Ordinal) ? arch[3..]
            : arch.StartsWith("compute_", StringComparison.Ordinal) ? arch[8..] : arch;
        if (digits.EndsWith('a')) digits = digits[..^1];
        return int.TryParse(digits, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var v) && v >= 10
            ? v : throw new ArgumentException($"'{arch}' is not a GPU architecture (expected e.g. sm_80 or sm_90)", nameof(arch));
    }

    /// <summary>NVRTC options for an architecture target: "-arch=sm_90" (CUBIN) or "-arch=compute_90" (PTX).
    /// At most 64 registers per thread, so every kernel can launch with up to 1024 threads per block
    /// (65536 registers per SM); without it a reduction launched with 512 threads could fail with
    /// CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES if the compiler chose more than 128.</summary>
    public static IReadOnlyList<string> Options(string target) =>
        [$"-arch={target}", "--std=c++17", "-default-device", "--fmad=true", "--maxrregcount=64", "-lineinfo"];

    /// <summary>The cache key: a hash of everything that determines the compiled image.</summary>
    public static string CacheKey(KernelSource source, IReadOnlyList<KernelSource> headers, string target,
        IReadOnlyList<string> options, string compilerVersion)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(headers);
        ArgumentNullException.ThrowIfNull(options);
        var sb = new StringBuilder();
        sb.Append("residual-kernel-v1\nnvrtc ").Append(compilerVersion).Append("\ntarget ").Append(target).Append('\n');
        foreach (var o in options) sb.Append("opt ").Append(o).Append('\n');
        sb.Append("file ").Append(source.FileName).Append('\n').Append(source.Text).Append('\n');
        foreach (var h in headers.OrderBy(h => h.FileName, StringComparer.Ordinal))
            sb.Append("header ").Append(h.FileName).Append('\n').Append(h.Text).Append('\n');
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes(sb.ToString()));
        return Convert.ToHexStringLower(hash, 0, 16);
    }

    /// <summary>RESIDUAL_KERNEL_CACHE, else $XDG_CACHE_HOME/residual/kernels, else ~/.cache/residual/kernels.</summary>
    public static string DefaultCacheDirectory
    {
        get
        {
            var env = Environment.GetEnvironmentVariable("RESIDUAL_KERNEL_CACHE");
            if (!string.IsNullOrWhiteSpace(env)) return env;
            var xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
            var root = !string.IsNullOrWhiteSpace(xdg) ? xdg
                : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
            return Path.Combine(root, "residual", "kernels");
        }
    }

    /// <summary>Compiles one file for an architecture (CUBIN when NVRTC supports it, else PTX for the
    /// newest one it does). <paramref name="cacheDirectory"/>: null = the default cache, "" = no cache.</summary>
    public static CompiledKernel Compile(KernelSource source, string arch, string? cacheDirectory = null)
    {
        ArgumentNullException.ThrowIfNull(source);
        var (target, cubin) = Target(arch);
        var options = Options(target);
        var headers = Headers;
        var version = CompilerVersion;
        var key = CacheKey(source, headers, target, options, version);
        var dir = cacheDirectory ?? DefaultCacheDirectory;
        var file = dir.Length == 0 ? null : Path.Combine(dir, key + (cubin ? ".cubin" : ".ptx"));
        if (file is not null && TryReadCache(file, cubin) is { } cached)
            return new CompiledKernel(source.FileName, target, cached, cubin, true, "", key, options);
        var (image, log) = CompileUncached(source, headers, target, options, cubin);
        if (file is not null) TryWriteCache(file, image);
        return new CompiledKernel(source.FileName, target, image, cubin, false, log, key, options);
    }

    /// <summary>Compiles every known file for <paramref name="arch"/> without the cache, and checks that every
    /// kernel the backend launches is defined. Throws NativeLibraryNotFoundException when NVRTC is missing.</summary>
    public static IReadOnlyList<KernelCheckResult> CompileAll(string arch)
    {
        var results = new List<KernelCheckResult>();
        foreach (var src in Sources)
        {
            try
            {
                var k = Compile(src, arch, cacheDirectory: "");
                var missing = CudaKernels.NamesIn(src.FileName).Where(n => !k.Defines(n)).ToList();
                var log = missing.Count == 0 ? k.Log : $"{k.Log}\nkernels the backend needs but the file does not define: {string.Join(", ", missing)}";
                results.Add(new KernelCheckResult(src.FileName, missing.Count == 0, log.Trim(), missing, k));
            }
            catch (KernelCompileException e)
            {
                results.Add(new KernelCheckResult(src.FileName, false, e.Log, [], null));
            }
        }
        return results;
    }

    /// <summary>The NVRTC target for a GPU architecture: its own sm_XY when supported, else PTX for the newest
    /// architecture NVRTC knows (older ones cannot be served).</summary>
    internal static (string Target, bool Cubin) Target(string arch)
    {
        int sm = ParseArch(arch);
        var supported = SupportedArchs();
        if (supported.Contains(sm)) return ($"sm_{sm}", true);
        int max = supported.Count == 0 ? 0 : supported.Max();
        if (sm > max && max > 0) return ($"compute_{max}", false);
        throw new NotSupportedException(
            $"NVRTC {CompilerVersion} cannot generate code for sm_{sm} (it supports {string.Join(", ", supported.Select(a => "sm_" + a))})");
    }

    private static byte[]? TryReadCache(string file, bool cubin)
    {
        try
        {
            if (!File.Exists(file)) return null;
            var bytes = File.ReadAllBytes(file);
            bool valid = cubin ? bytes.Length > 4 && bytes[0] == 0x7f && bytes[1] == (byte)'E' && bytes[2] == (byte)'L' && bytes[3] == (byte)'F'
                : bytes.Length > 1 && bytes[^1] == 0;
            return valid ? bytes : null;
        }
        catch (IOException) { return null; }
        catch (UnauthorizedAccessException) { return null; }
    }

    private static void TryWriteCache(string file, byte[] image)
    {
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(file)!);
            // Write then rename, so a concurrent reader never sees a partial file.
            var tmp = $"{file}.{Environment.ProcessId}.{Environment.CurrentManagedThreadId}.tmp";
            File.WriteAllBytes(tmp, image);
            File.Move(tmp, file, overwrite: true);
        }
        catch (IOException) { } // the cache is an optimisation: a read-only home must not break compiling
        catch (UnauthorizedAccessException) { }
    }

    private static unsafe (byte[] Image, string Log) CompileUncached(KernelSource source, IReadOnlyList<KernelSource> headers,
        string target, IReadOnlyList<string> options, bool cubin)
    {
        using var strings = new Utf8Block();
        byte* src = strings.Add(source.Text), name = strings.Add(source.FileName);
        byte** hdrs = strings.AddArray(headers.Select(h => h.Text).ToList());
        byte** hdrNames = strings.AddArray(headers.Select(h => h.FileName).ToList());
        byte** opts = strings.AddArray(options);
        Nvrtc.ThrowIfFailed(Nvrtc.nvrtcCreateProgram(out var prog, src, name, headers.Count, hdrs, hdrNames));
        try
        {
            var r = Nvrtc.nvrtcCompileProgram(prog, options.Count, opts);
            var log = ProgramLog(prog);
            if (r != nvrtcResult.NVRTC_SUCCESS)
                throw new KernelCompileException(source.FileName, target, options,
                    r == nvrtcResult.NVRTC_ERROR_COMPILATION ? log : $"{log}\nnvrtcCompileProgram returned {r}: {Nvrtc.ErrorString(r)}".Trim());
            byte[] image;
            if (cubin)
            {
                Nvrtc.ThrowIfFailed(Nvrtc.nvrtcGetCUBINSize(prog, out var size));
                image = new byte[(int)size];
                fixed (byte* p = image) Nvrtc.ThrowIfFailed(Nvrtc.nvrtcGetCUBIN(prog, p));
            }
            else
            {
                Nvrtc.ThrowIfFailed(Nvrtc.nvrtcGetPTXSize(prog, out var size)); // includes the terminating NUL
                image = new byte[(int)size];
                fixed (byte* p = image) Nvrtc.ThrowIfFailed(Nvrtc.nvrtcGetPTX(prog, p));
            }
            return (image, log);
        }
        finally
        {
            Nvrtc.nvrtcDestroyProgram(ref prog);
        }
    }

    private static unsafe string ProgramLog(nint prog)
    {
        if (Nvrtc.nvrtcGetProgramLogSize(prog, out var size) != nvrtcResult.NVRTC_SUCCESS || size <= 1) return "";
        var buf = new byte[(int)size];
        fixed (byte* p = buf)
            if (Nvrtc.nvrtcGetProgramLog(prog, p) != nvrtcResult.NVRTC_SUCCESS) return "";
        return Encoding.UTF8.GetString(buf, 0, buf.Length - 1).Trim();
    }

    /// <summary>Unmanaged NUL-terminated UTF-8 strings (and arrays of them) freed together.</summary>
    private sealed unsafe class Utf8Block : IDisposable
    {
        private readonly List<nint> _blocks = new();

        public byte* Add(string s)
        {
            var p = Marshal.StringToCoTaskMemUTF8(s);
            _blocks.Add(p);
            return (byte*)p;
        }

        public byte** AddArray(IReadOnlyList<string> items)
        {
            var arr = (byte**)Marshal.AllocCoTaskMem(Math.Max(1, items.Count) * sizeof(nint));
            _blocks.Add((nint)arr);
            for (int i = 0; i < items.Count; i++) arr[i] = Add(items[i]);
            return arr;
        }

        public void Dispose()
        {
            foreach (var b in _blocks) Marshal.FreeCoTaskMem(b);
            _blocks.Clear();
        }
    }

    // ---- loading on a device ----

    private readonly object _lock = new();
    private readonly Dictionary<string, CudaModuleHandle> _modules = new(StringComparer.Ordinal);
    private readonly Dictionary<string, nint> _functions = new(StringComparer.Ordinal);

    /// <summary>Kernels for one device; <paramref name="arch"/> is its sm_XY. The caller makes the context current.</summary>
    internal KernelLibrary(string arch) => Arch = arch;

    public string Arch { get; }

    /// <summary>The CUfunction of a kernel, compiling and loading its file on first use.</summary>
    internal nint Function(string file, string name)
    {
        lock (_lock)
        {
            var key = file + "/" + name;
            if (_functions.TryGetValue(key, out var f)) return f;
            if (!_modules.TryGetValue(file, out var module))
            {
                var compiled = Compile(Source(file), Arch);
                module = CudaModuleHandle.Load(compiled.Image, file);
                _modules[file] = module;
            }
            var r = CudaDriver.cuModuleGetFunction(out f, module.DangerousGetHandle(), name);
            if (r == CUresult.CUDA_ERROR_NOT_FOUND)
                throw new ArgumentException($"kernel '{name}' is not defined in {file} (is it extern \"C\" __global__?)", nameof(name));
            if (r != CUresult.CUDA_SUCCESS) throw CudaDriver.Error(r, $"cuModuleGetFunction({file}, {name})");
            _functions[key] = f;
            return f;
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            _functions.Clear();
            foreach (var m in _modules.Values) m.Dispose();
            _modules.Clear();
        }
    }
}
