// Bindings to NCCL (libnccl.so.2, from the CUDA install, Debian's libnccl2 or PyTorch's wheel
// site-packages/nvidia/nccl/lib; found by LibraryResolver like the CUDA libraries): the
// communicator set-up (a 128-byte ncclUniqueId made by rank 0 and handed to every rank by MPI,
// then ncclCommInitRank) and the collectives data-parallel training uses, each enqueued on a
// CUDA stream. Enum values as in nccl.h (ncclAvg needs NCCL >= 2.10). Every status goes through
// ThrowIfFailed, which names the call and adds ncclGetErrorString's text.
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace ResidualEngine.Native;

#pragma warning disable CA1707 // native names keep their underscores
#pragma warning disable CA1008

internal enum ncclResult_t
{
    ncclSuccess = 0,
    ncclUnhandledCudaError = 1,
    ncclSystemError = 2,
    ncclInternalError = 3,
    ncclInvalidArgument = 4,
    ncclInvalidUsage = 5,
    ncclRemoteError = 6,
    ncclInProgress = 7,
}

internal enum ncclDataType_t
{
    ncclInt8 = 0,
    ncclUint8 = 1,
    ncclInt32 = 2,
    ncclUint32 = 3,
    ncclInt64 = 4,
    ncclUint64 = 5,
    ncclFloat16 = 6,
    ncclFloat32 = 7,
    ncclFloat64 = 8,
    ncclBfloat16 = 9,
}

internal enum ncclRedOp_t
{
    ncclSum = 0,
    ncclProd = 1,
    ncclMax = 2,
    ncclMin = 3,
    ncclAvg = 4,
}

/// <summary>nccl.h's ncclUniqueId: 128 opaque bytes, passed to ncclCommInitRank by value.</summary>
[StructLayout(LayoutKind.Sequential, Size = Bytes)]
internal unsafe struct ncclUniqueId
{
    public const int Bytes = 128;
    public fixed byte Internal[Bytes];
}

/// <summary>An NCCL call failed.</summary>
public sealed class NcclException(string message) : InvalidOperationException(message);

internal static unsafe partial class Nccl
{
    private const string Lib = LibraryResolver.NcclName;

    static Nccl() => LibraryResolver.EnsureRegistered();

    [LibraryImport(Lib)] internal static partial ncclResult_t ncclGetVersion(out int version);
    [LibraryImport(Lib)] internal static partial ncclResult_t ncclGetUniqueId(out ncclUniqueId uniqueId);
    [LibraryImport(Lib)] internal static partial ncclResult_t ncclCommInitRank(out nint comm, int nranks, ncclUniqueId commId, int rank);
    [LibraryImport(Lib)] internal static partial ncclResult_t ncclCommDestroy(nint comm);
    [LibraryImport(Lib)] internal static partial ncclResult_t ncclCommAbort(nint comm);
    [LibraryImport(Lib)] internal static partial ncclResult_t ncclCommCount(nint comm, out int count);
    [LibraryImport(Lib)] internal static partial ncclResult_t ncclCommUserRank(nint comm, out int rank);
    [LibraryImport(Lib)] internal static partial nint ncclGetErrorString(ncclResult_t result);

    [LibraryImport(Lib)]
    internal static partial ncclResult_t ncclAllReduce(void* sendbuff, void* recvbuff, nuint count, ncclDataType_t datatype, ncclRedOp_t op, nint comm, nint stream);

    [LibraryImport(Lib)]
    internal static partial ncclResult_t ncclBroadcast(void* sendbuff, void* recvbuff, nuint count, ncclDataType_t datatype, int root, nint comm, nint stream);

    [LibraryImport(Lib)]
    internal static partial ncclResult_t ncclAllGather(void* sendbuff, void* recvbuff, nuint sendcount, ncclDataType_t datatype, nint comm, nint stream);

    internal static void ThrowIfFailed(ncclResult_t result, [CallerArgumentExpression(nameof(result))] string call = "")
    {
        if (result == ncclResult_t.ncclSuccess) return;
        string text;
        try { text = Marshal.PtrToStringUTF8(ncclGetErrorString(result)) ?? ""; }
        catch (EntryPointNotFoundException) { text = ""; }
        int paren = call.IndexOf('(', StringComparison.Ordinal);
        var name = (paren > 0 ? call[..paren] : call).Replace("Nccl.", "", StringComparison.Ordinal);
        throw new NcclException($"{name} failed: {result}{(text.Length > 0 ? $" ({text})" : "")}");
    }

    /// <summary>NCCL's version as major.minor.patch (its code is major*10000 + minor*100 + patch from 2.9 on, major*1000 + ... before).</summary>
    internal static (int Major, int Minor, int Patch) Version()
    {
        ThrowIfFailed(ncclGetVersion(out int v));
        return v >= 10000 ? (v / 10000, v / 100 % 100, v % 100) : (v / 1000, v / 100 % 10, v % 100);
    }

    /// <summary>The NCCL type of a dtype (BF16 needs NCCL >= 2.10).</summary>
    internal static ncclDataType_t TypeOf(DType dtype) => dtype switch
    {
        DType.F32 => ncclDataType_t.ncclFloat32,
        DType.F64 => ncclDataType_t.ncclFloat64,
        DType.F16 => ncclDataType_t.ncclFloat16,
        DType.BF16 => ncclDataType_t.ncclBfloat16,
        DType.I64 => ncclDataType_t.ncclInt64,
        DType.I32 => ncclDataType_t.ncclInt32,
        DType.U8 => ncclDataType_t.ncclUint8,
        _ => throw new NotSupportedException($"NCCL has no type for {dtype}"),
    };
}
