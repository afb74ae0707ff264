// Bindings to the MPI functions data-parallel training uses (MPI-3 C API): initialisation with a
// thread level, rank and size, all-reduce, broadcast, all-gather, barrier, abort, the library's
// version. MPI's handles (communicator, datatypes, reduction operators, MPI_IN_PLACE) are not
// part of the C ABI; MpiAbi below is the one place that knows them per implementation:
//   Open MPI: every handle is a pointer to an exported global (MPI_COMM_WORLD is
//             &ompi_mpi_comm_world, MPI_FLOAT &ompi_mpi_float, MPI_SUM &ompi_mpi_op_sum, ...);
//             MPI_IN_PLACE is (void*)1.
//   MPICH (and derivatives: Intel MPI, MVAPICH, Cray MPICH): handles are 32-bit integer
//             constants from mpi.h (MPI_COMM_WORLD 0x44000000, MPI_FLOAT 0x4c00040a, ...);
//             MPI_IN_PLACE is (void*)-1.
// The bindings take every handle as nint. For MPICH the callee reads an int from the low 32 bits
// of the register the nint is passed in, which is how the x86-64 System V and AArch64 calling
// conventions pass an int (the only platforms we load MPICH on). Open MPI is what we test with;
// MPICH's constants are transcribed from its mpi.h (LP64) and not exercised by the tests.
// Errors use MPI's default handler (MPI_ERRORS_ARE_FATAL): a failed collective ends the whole job
// with MPI's own message, so a status other than MPI_SUCCESS only comes from misuse, which throws.
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;

namespace ResidualEngine.Native;

#pragma warning disable CA1707 // native names keep their underscores

/// <summary>Which MPI the process loaded.</summary>
public enum MpiImplementation
{
    OpenMpi,
    Mpich,
}

/// <summary>An MPI call returned an error status.</summary>
public sealed class MpiException(string message) : InvalidOperationException(message);

internal static unsafe partial class Mpi
{
    internal const string Lib = LibraryResolver.MpiName;

    internal const int MPI_SUCCESS = 0;
    internal const int MPI_THREAD_SINGLE = 0, MPI_THREAD_FUNNELED = 1, MPI_THREAD_SERIALIZED = 2, MPI_THREAD_MULTIPLE = 3;

    static Mpi() => LibraryResolver.EnsureRegistered();

    [LibraryImport(Lib)] internal static partial int MPI_Initialized(out int flag);
    [LibraryImport(Lib)] internal static partial int MPI_Finalized(out int flag);
    [LibraryImport(Lib)] internal static partial int MPI_Init_thread(int* argc, byte*** argv, int required, out int provided);
    [LibraryImport(Lib)] internal static partial int MPI_Query_thread(out int provided);
    [LibraryImport(Lib)] internal static partial int MPI_Finalize();
    [LibraryImport(Lib)] internal static partial int MPI_Comm_rank(nint comm, out int rank);
    [LibraryImport(Lib)] internal static partial int MPI_Comm_size(nint comm, out int size);
    [LibraryImport(Lib)] internal static partial int MPI_Allreduce(void* sendbuf, void* recvbuf, int count, nint datatype, nint op, nint comm);
    [LibraryImport(Lib)] internal static partial int MPI_Bcast(void* buffer, int count, nint datatype, int root, nint comm);
    [LibraryImport(Lib)] internal static partial int MPI_Allgather(void* sendbuf, int sendcount, nint sendtype, void* recvbuf, int recvcount, nint recvtype, nint comm);
    [LibraryImport(Lib)] internal static partial int MPI_Barrier(nint comm);
    [LibraryImport(Lib)] internal static partial int MPI_Abort(nint comm, int errorcode);
    [LibraryImport(Lib)] internal static partial int MPI_Get_version(out int version, out int subversion);
    [LibraryImport(Lib)] internal static partial int MPI_Get_library_version(byte* version, out int resultlen);
    [LibraryImport(Lib)] internal static partial int MPI_Error_string(int errorcode, byte* text, out int resultlen);

    internal static void ThrowIfFailed(int status, [CallerArgumentExpression(nameof(status))] string call = "")
    {
        if (status == MPI_SUCCESS) return;
        var buf = stackalloc byte[1024];
        string text = MPI_Error_string(status, buf, out int len) == MPI_SUCCESS ? Encoding.UTF8.GetString(buf, Math.Clamp(len, 0, 1024)) : "unknown error";
        throw new MpiException($"{Call(call)} failed with MPI error {status}: {text}");
    }

    private static string Call(string expr)
    {
        int paren = expr.IndexOf('(', StringComparison.Ordinal);
        return paren > 0 ? expr[..paren].Replace("Mpi.", "", StringComparison.Ordinal) : expr;
    }

    /// <summary>MPI_Get_library_version's text up to its first line end or comma ("Open MPI v4.1.4", "MPICH Version: 4.1").</summary>
    internal static string LibraryVersion()
    {
        var buf = new byte[8192]; // MPICH's MPI_MAX_LIBRARY_VERSION_STRING; Open MPI's is 256
        fixed (byte* p = buf) ThrowIfFailed(MPI_Get_library_version(p, out int len), "MPI_Get_library_version");
        var text = Encoding.UTF8.GetString(buf).TrimEnd('\0').Trim();
        int nl = text.IndexOf('\n', StringComparison.Ordinal);
        var first = (nl >= 0 ? text[..nl] : text).Trim();
        int comma = first.IndexOf(',', StringComparison.Ordinal); // "Open MPI v4.1.4, package: ..., ident: ..."
        return (comma > 0 ? first[..comma] : first).Trim();
    }
}

/// <summary>
/// MPI's handles for the loaded implementation: the one place that knows Open MPI's pointers to
/// globals from MPICH's integer constants (see the top of this file).
/// </summary>
internal sealed class MpiAbi
{
    public required MpiImplementation Implementation { get; init; }
    public required nint CommWorld { get; init; }
    public required nint Byte { get; init; }
    public required nint Int32 { get; init; }
    public required nint Int64 { get; init; }
    public required nint Float { get; init; }
    public required nint Double { get; init; }
    public required nint Sum { get; init; }
    public required nint Max { get; init; }
    public required nint Min { get; init; }
    public required nint InPlace { get; init; }

    private static MpiAbi? s_current;

    /// <summary>The handles of the MPI that MpiLibrary loaded.</summary>
    public static MpiAbi Current => s_current ??= Detect(MpiLibrary.Export);

    /// <summary>Open MPI when the library exports ompi_mpi_comm_world, else MPICH's constants.</summary>
    internal static MpiAbi Detect(Func<string, nint> export)
    {
        if (export("ompi_mpi_comm_world") is var world and not 0)
        {
            nint Need(string symbol) => export(symbol) is var p and not 0 ? p
                : throw new MpiException($"the MPI library exports ompi_mpi_comm_world but not {symbol}: not an Open MPI this code knows");
            return new MpiAbi
            {
                Implementation = MpiImplementation.OpenMpi, CommWorld = world,
                Byte = Need("ompi_mpi_byte"), Int32 = Need("ompi_mpi_int"), Int64 = Need("ompi_mpi_long_long_int"),
                Float = Need("ompi_mpi_float"), Double = Need("ompi_mpi_double"),
                Sum = Need("ompi_mpi_op_sum"), Max = Need("ompi_mpi_op_max"), Min = Need("ompi_mpi_op_min"),
                InPlace = 1,
            };
        }
        return new MpiAbi
        {
            Implementation = MpiImplementation.Mpich, CommWorld = 0x44000000,
            Byte = 0x4c00010d, Int32 = 0x4c000405, Int64 = 0x4c000809, Float = 0x4c00040a, Double = 0x4c00080b,
            Sum = 0x58000003, Max = 0x58000001, Min = 0x58000002,
            InPlace = -1,
        };
    }
}
