// Bindings to NVRTC (libnvrtc.so.{13,12,11.2} / nvrtc64_*.dll): compile CUDA C++ source to CUBIN or
// PTX at run time, without the toolkit and without a GPU. nvrtcResult values as in nvrtc.h; every
// status goes through ThrowIfFailed, which names the call and adds nvrtcGetErrorString's text.
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using ResidualEngine.Backends.Cuda;

namespace ResidualEngine.Native;

#pragma warning disable CA1707 // native names keep their underscores
#pragma warning disable CA1008

internal enum nvrtcResult
{
    NVRTC_SUCCESS = 0,
    NVRTC_ERROR_OUT_OF_MEMORY = 1,
    NVRTC_ERROR_PROGRAM_CREATION_FAILURE = 2,
    NVRTC_ERROR_INVALID_INPUT = 3,
    NVRTC_ERROR_INVALID_PROGRAM = 4,
    NVRTC_ERROR_INVALID_OPTION = 5,
    NVRTC_ERROR_COMPILATION = 6,
    NVRTC_ERROR_BUILTIN_OPERATION_FAILURE = 7,
    NVRTC_ERROR_NO_NAME_EXPRESSIONS_AFTER_COMPILATION = 8,
    NVRTC_ERROR_NO_LOWERED_NAMES_BEFORE_COMPILATION = 9,
    NVRTC_ERROR_NAME_EXPRESSION_NOT_VALID = 10,
    NVRTC_ERROR_INTERNAL_ERROR = 11,
}

internal static unsafe partial class Nvrtc
{
    private const string Lib = LibraryResolver.NvrtcName;

    static Nvrtc() => LibraryResolver.EnsureRegistered();

    [LibraryImport(Lib)] internal static partial nint nvrtcGetErrorString(nvrtcResult result);
    [LibraryImport(Lib)] internal static partial nvrtcResult nvrtcVersion(out int major, out int minor);
    [LibraryImport(Lib)] internal static partial nvrtcResult nvrtcGetNumSupportedArchs(out int numArchs);
    [LibraryImport(Lib)] internal static partial nvrtcResult nvrtcGetSupportedArchs(int* supportedArchs);

    [LibraryImport(Lib)]
    internal static partial nvrtcResult nvrtcCreateProgram(out nint prog, byte* src, byte* name, int numHeaders,
        byte** headers, byte** includeNames);
    [LibraryImport(Lib)] internal static partial nvrtcResult nvrtcDestroyProgram(ref nint prog);
    [LibraryImport(Lib)] internal static partial nvrtcResult nvrtcCompileProgram(nint prog, int numOptions, byte** options);
    [LibraryImport(Lib)] internal static partial nvrtcResult nvrtcGetProgramLogSize(nint prog, out nuint logSizeRet);
    [LibraryImport(Lib)] internal static partial nvrtcResult nvrtcGetProgramLog(nint prog, byte* log);
    [LibraryImport(Lib)] internal static partial nvrtcResult nvrtcGetCUBINSize(nint prog, out nuint cubinSizeRet);
    [LibraryImport(Lib)] internal static partial nvrtcResult nvrtcGetCUBIN(nint prog, byte* cubin);
    [LibraryImport(Lib)] internal static partial nvrtcResult nvrtcGetPTXSize(nint prog, out nuint ptxSizeRet);
    [LibraryImport(Lib)] internal static partial nvrtcResult nvrtcGetPTX(nint prog, byte* ptx);

    internal static void ThrowIfFailed(nvrtcResult result, [CallerArgumentExpression(nameof(result))] string call = "")
    {
        if (result != nvrtcResult.NVRTC_SUCCESS)
            throw new CudaException("NVRTC", call, (int)result, Enum.IsDefined(result) ? result.ToString() : $"nvrtcResult {(int)result}", ErrorString(result));
    }

    internal static string ErrorString(nvrtcResult result)
    {
        var p = nvrtcGetErrorString(result);
        return p == 0 ? "no description available" : Marshal.PtrToStringUTF8(p) ?? "no description available";
    }

    /// <summary>NVRTC's version as "major.minor".</summary>
    internal static (int Major, int Minor) Version()
    {
        ThrowIfFailed(nvrtcVersion(out int major, out int minor));
        return (major, minor);
    }

    /// <summary>The SM numbers NVRTC can emit code for (e.g. 80 for sm_80).</summary>
    internal static int[] SupportedArchs()
    {
        ThrowIfFailed(nvrtcGetNumSupportedArchs(out int n));
        var archs = new int[n];
        fixed (int* p = archs) ThrowIfFailed(nvrtcGetSupportedArchs(p));
        return archs;
    }
}
