// Fake libnccl.so.2 for the CPU emulator: a communicator of ONE rank, which is all a single
// machine without GPUs can host. It checks what NCCL would: the unique id comes from
// ncclGetUniqueId, nranks is 1 and rank 0 (anything else is ncclInvalidUsage, where real NCCL
// would wait for the other ranks), data types and operators are nccl.h's, and buffers lie inside
// live (emulated) device allocations. With one rank every collective copies the send buffer to
// the receive buffer (sum, average, max, min of one value are that value). Streams are
// synchronous in the emulator, so the copy happens at once.
#include <cstdint>
#include <cstring>
#include <cstddef>

extern "C" int emu_inside(const void* p, size_t n); // from the fake libcuda.so.1

namespace {
enum Result { Success = 0, InternalError = 3, InvalidArgument = 4, InvalidUsage = 5 };
struct Comm { int magic; };
const int Magic = 0x4e43434c;
const unsigned char IdPattern = 0x5a;

size_t typeSize(int t)
{
    switch (t)
    {
        case 0: case 1: return 1;          // int8, uint8
        case 2: case 3: return 4;          // int32, uint32
        case 4: case 5: return 8;          // int64, uint64
        case 6: return 2;                  // float16
        case 7: return 4;                  // float32
        case 8: return 8;                  // float64
        case 9: return 2;                  // bfloat16
        default: return 0;
    }
}

int copy(const void* send, void* recv, size_t bytes)
{
    if (bytes == 0) return Success;
    if (!emu_inside(send, bytes) || !emu_inside(recv, bytes)) return InvalidArgument;
    if (send != recv) std::memmove(recv, send, bytes);
    return Success;
}

bool valid(void* comm) { return comm && static_cast<Comm*>(comm)->magic == Magic; }
}

extern "C" {

struct ncclUniqueId { char internal[128]; };

int ncclGetVersion(int* v) { *v = 22105; return Success; }

int ncclGetUniqueId(ncclUniqueId* id)
{
    if (!id) return InvalidArgument;
    std::memset(id->internal, IdPattern, sizeof id->internal);
    return Success;
}

int ncclCommInitRank(void** comm, int nranks, ncclUniqueId id, int rank)
{
    if (!comm) return InvalidArgument;
    for (unsigned char c : id.internal)
        if (c != IdPattern) return InvalidArgument; // not an id ncclGetUniqueId made
    if (nranks != 1 || rank != 0) return InvalidUsage; // the emulator hosts one rank only
    *comm = new Comm{Magic};
    return Success;
}

int ncclCommDestroy(void* comm) { if (!valid(comm)) return InvalidArgument; static_cast<Comm*>(comm)->magic = 0; delete static_cast<Comm*>(comm); return Success; }
int ncclCommAbort(void* comm) { return ncclCommDestroy(comm); }
int ncclCommCount(void* comm, int* n) { if (!valid(comm)) return InvalidArgument; *n = 1; return Success; }
int ncclCommUserRank(void* comm, int* r) { if (!valid(comm)) return InvalidArgument; *r = 0; return Success; }

const char* ncclGetErrorString(int r)
{
    switch (r)
    {
        case Success: return "no error";
        case InvalidArgument: return "invalid argument (run with NCCL_DEBUG=WARN for details)";
        case InvalidUsage: return "invalid usage (the emulator's NCCL hosts one rank only)";
        default: return "internal error";
    }
}

int ncclAllReduce(const void* send, void* recv, size_t count, int type, int op, void* comm, void* stream)
{
    if (!valid(comm) || !stream || typeSize(type) == 0 || op < 0 || op > 4) return InvalidArgument;
    return copy(send, recv, count * typeSize(type));
}

int ncclBroadcast(const void* send, void* recv, size_t count, int type, int root, void* comm, void* stream)
{
    if (!valid(comm) || !stream || typeSize(type) == 0 || root != 0) return InvalidArgument;
    return copy(send, recv, count * typeSize(type));
}

int ncclAllGather(const void* send, void* recv, size_t count, int type, void* comm, void* stream)
{
    if (!valid(comm) || !stream || typeSize(type) == 0) return InvalidArgument;
    return copy(send, recv, count * typeSize(type));
}

}
