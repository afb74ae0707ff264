// A fake libcuda.so.1 for the GPU emulator: the driver API subset the engine binds, with device
// memory in host RAM and kernels taken from Kernels/*.cu compiled as C++ (kernels.gen.inc, made by
// build.sh) and run by a fiber scheduler (one fiber per CUDA thread, blocks in sequence).
// It checks what a real driver would reject: copies and memsets must stay inside live allocations,
// frees must be of live blocks, modules must be CUBIN/PTX that contain the requested kernel, launch
// shapes must be legal. Device blocks end at a guard page, so a kernel that runs past the end of a
// buffer crashes the process instead of passing silently. Everything is synchronous.
#include "cuda_shim.h"
#include <ucontext.h>
#include <sys/mman.h>
#include <unistd.h>
#include <map>
#include <mutex>
#include <string>
#include <vector>
#include <utility>
#include <type_traits>
#include <cstdio>
#include <cstdlib>

// ---- the kernels, as C++ ----
#include "kernels.gen.inc"

typedef int CUresult;
enum
{
    CUDA_SUCCESS = 0, CUDA_ERROR_INVALID_VALUE = 1, CUDA_ERROR_OUT_OF_MEMORY = 2, CUDA_ERROR_NOT_INITIALIZED = 3,
    CUDA_ERROR_INVALID_DEVICE = 101, CUDA_ERROR_INVALID_IMAGE = 200, CUDA_ERROR_INVALID_HANDLE = 400,
    CUDA_ERROR_NOT_FOUND = 500, CUDA_ERROR_ILLEGAL_ADDRESS = 700, CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES = 701,
    CUDA_ERROR_LAUNCH_FAILED = 719,
};

namespace emu
{
dim3 g_blockIdx, g_blockDim, g_gridDim, g_threadIdx;

namespace
{
struct Fiber
{
    ucontext_t ctx;
    bool done;
    dim3 tid;
    int linear;
};

const size_t StackBytes = 256 * 1024;
std::vector<Fiber> fibers;
std::vector<char*> stacks;
ucontext_t scheduler;
int current, threads, finished;
int warpArrived[32];
uint64_t warpGen[32];
int blockArrived;
uint64_t blockGen, events;
double slots[32][32];
void (*invoke)(void**);
void** invokeArgs;

void yield() { swapcontext(&fibers[current].ctx, &scheduler); }

int warp_of(int t) { return t / 32; }
int warp_size(int w) { return threads - 32 * w < 32 ? threads - 32 * w : 32; }

void entry()
{
    invoke(invokeArgs);
    fibers[current].done = true;
    finished++;
    events++;
}

// After a thread exits, barriers count only the threads still running (as the hardware does).
void release_if_complete()
{
    if (blockArrived > 0 && blockArrived >= threads - finished) { blockArrived = 0; blockGen++; events++; }
    for (int w = 0; w * 32 < threads; w++)
    {
        int live = 0;
        for (int t = 32 * w; t < 32 * w + warp_size(w); t++) live += !fibers[t].done;
        if (warpArrived[w] > 0 && warpArrived[w] >= live) { warpArrived[w] = 0; warpGen[w]++; events++; }
    }
}
} // namespace

void sync_block()
{
    uint64_t g = blockGen;
    if (++blockArrived >= threads - finished) { blockArrived = 0; blockGen++; events++; return; }
    while (blockGen == g) yield();
}

void sync_warp()
{
    int w = warp_of(fibers[current].linear);
    uint64_t g = warpGen[w];
    int live = 0;
    for (int t = 32 * w; t < 32 * w + warp_size(w); t++) live += !fibers[t].done;
    if (++warpArrived[w] >= live) { warpArrived[w] = 0; warpGen[w]++; events++; return; }
    while (warpGen[w] == g) yield();
}

double* warp_slots() { return slots[warp_of(fibers[current].linear)]; }
int lane() { return fibers[current].linear % 32; }

// Runs one block: every thread a fiber, round-robin until all are done. False on a deadlock.
bool run_block(void (*fn)(void**), void** args)
{
    invoke = fn;
    invokeArgs = args;
    threads = (int)(g_blockDim.x * g_blockDim.y * g_blockDim.z);
    finished = 0;
    blockArrived = 0;
    for (int w = 0; w < 32; w++) warpArrived[w] = 0;
    fibers.assign(threads, Fiber{});
    while ((int)stacks.size() < threads)
    {
        void* s = mmap(nullptr, StackBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (s == MAP_FAILED) { std::fprintf(stderr, "fake libcuda: cannot map a fiber stack\n"); std::abort(); }
        stacks.push_back((char*)s);
    }
    for (int t = 0; t < threads; t++)
    {
        auto& f = fibers[t];
        f.linear = t;
        f.tid.x = t % g_blockDim.x;
        f.tid.y = (t / g_blockDim.x) % g_blockDim.y;
        f.tid.z = t / (g_blockDim.x * g_blockDim.y);
        getcontext(&f.ctx);
        f.ctx.uc_stack.ss_sp = stacks[t];
        f.ctx.uc_stack.ss_size = StackBytes;
        f.ctx.uc_link = &scheduler;
        makecontext(&f.ctx, entry, 0);
    }
    while (finished < threads)
    {
        uint64_t before = events;
        for (int t = 0; t < threads; t++)
        {
            if (fibers[t].done) continue;
            current = t;
            g_threadIdx = fibers[t].tid;
            swapcontext(&scheduler, &fibers[t].ctx);
            release_if_complete();
        }
        if (events == before && finished < threads) return false; // every live thread waits forever
    }
    return true;
}
} // namespace emu

// ---- kernel table: name -> invoker that unpacks CUDA's void** kernelParams ----
template <typename F> struct Invoker;
template <typename... A> struct Invoker<void(A...)>
{
    template <void (*Fn)(A...), size_t... I> static void call(void** args, std::index_sequence<I...>)
    {
        Fn(*static_cast<std::remove_cv_t<A>*>(args[I])...);
    }
    template <void (*Fn)(A...)> static void invoke(void** args) { call<Fn>(args, std::index_sequence_for<A...>{}); }
};

struct KernelEntry { const char* name; void (*invoke)(void**); };
#define K(fn) { #fn, &Invoker<decltype(fn)>::invoke<fn> },
static const KernelEntry s_kernels[] = {
#include "kernel_names.gen.inc"
};

// ---- driver state ----
namespace
{
std::mutex g_lock;
struct Block { size_t bytes; void* map; size_t mapBytes; };
std::map<uintptr_t, Block> g_blocks;       // device allocations by start address
size_t g_used = 0;
const size_t TotalBytes = 8ull << 30;      // the emulated device's memory
struct Module { std::vector<char> image; };
std::map<uintptr_t, Module*> g_modules;
bool g_initialized = false;
const long Page = sysconf(_SC_PAGESIZE);

// Is [p, p + n) inside one live allocation?
bool inside(uintptr_t p, size_t n)
{
    auto it = g_blocks.upper_bound(p);
    if (it == g_blocks.begin()) return false;
    --it;
    return p >= it->first && p + n <= it->first + it->second.bytes;
}
}

extern "C" {

CUresult cuInit(unsigned flags) { g_initialized = flags == 0; return flags == 0 ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE; }
CUresult cuDriverGetVersion(int* v) { *v = 12040; return CUDA_SUCCESS; }
CUresult cuDeviceGetCount(int* n) { if (!g_initialized) return CUDA_ERROR_NOT_INITIALIZED; *n = 1; return CUDA_SUCCESS; }
CUresult cuDeviceGet(int* d, int ordinal) { if (ordinal != 0) return CUDA_ERROR_INVALID_DEVICE; *d = 0; return CUDA_SUCCESS; }
CUresult cuDeviceGetName(char* name, int len, int dev)
{
    if (dev != 0 || len < 1) return CUDA_ERROR_INVALID_VALUE;
    std::snprintf(name, (size_t)len, "%s", "ResidualEngine CPU emulator (fake libcuda)");
    return CUDA_SUCCESS;
}
CUresult cuDeviceGetAttribute(int* v, int attr, int dev)
{
    if (dev != 0) return CUDA_ERROR_INVALID_DEVICE;
    switch (attr)
    {
        case 1: *v = 1024; return CUDA_SUCCESS;   // max threads per block
        case 16: *v = 2; return CUDA_SUCCESS;     // SMs: few, so grid-stride loops really loop
        case 75: *v = 8; return CUDA_SUCCESS;     // compute capability 8.0
        case 76: *v = 0; return CUDA_SUCCESS;
        default: return CUDA_ERROR_INVALID_VALUE;
    }
}
CUresult cuDeviceTotalMem_v2(size_t* b, int dev) { if (dev != 0) return CUDA_ERROR_INVALID_DEVICE; *b = TotalBytes; return CUDA_SUCCESS; }
CUresult cuDevicePrimaryCtxRetain(void** ctx, int dev) { if (dev != 0) return CUDA_ERROR_INVALID_DEVICE; *ctx = (void*)0xC0DE; return CUDA_SUCCESS; }
CUresult cuDevicePrimaryCtxRelease_v2(int) { return CUDA_SUCCESS; }
CUresult cuCtxSetCurrent(void* ctx) { return ctx == (void*)0xC0DE || ctx == nullptr ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE; }
CUresult cuCtxSynchronize() { return CUDA_SUCCESS; }
CUresult cuStreamCreate(void** s, unsigned flags) { *s = (void*)(uintptr_t)(0x5000 + flags); return CUDA_SUCCESS; }
CUresult cuStreamDestroy_v2(void*) { return CUDA_SUCCESS; }
CUresult cuStreamSynchronize(void*) { return CUDA_SUCCESS; }
CUresult cuEventCreate(void** e, unsigned) { static uintptr_t n = 0x7000; *e = (void*)++n; return CUDA_SUCCESS; }
CUresult cuEventDestroy_v2(void*) { return CUDA_SUCCESS; }
CUresult cuEventRecord(void*, void*) { return CUDA_SUCCESS; }
CUresult cuEventSynchronize(void*) { return CUDA_SUCCESS; }
CUresult cuStreamWaitEvent(void* stream, void* event, unsigned flags) { return stream && event && flags == 0 ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE; }

// For the fake NCCL (linked against this library): is [p, p + n) inside one live allocation?
int emu_inside(const void* p, size_t n)
{
    std::lock_guard<std::mutex> g(g_lock);
    return inside((uintptr_t)p, n) ? 1 : 0;
}

CUresult cuMemAlloc_v2(unsigned long long* dptr, size_t bytes)
{
    std::lock_guard<std::mutex> g(g_lock);
    if (bytes == 0) return CUDA_ERROR_INVALID_VALUE;
    if (bytes > TotalBytes - g_used) return CUDA_ERROR_OUT_OF_MEMORY;
    // The block ends exactly at a PROT_NONE guard page: overruns fault.
    size_t pages = (bytes + Page - 1) / Page;
    size_t mapBytes = (pages + 1) * Page;
    void* m = mmap(nullptr, mapBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) return CUDA_ERROR_OUT_OF_MEMORY;
    mprotect((char*)m + pages * Page, Page, PROT_NONE);
    uintptr_t start = (uintptr_t)m + pages * Page - bytes;
    if (start % 256 != 0) { munmap(m, mapBytes); std::fprintf(stderr, "fake libcuda: allocation of %zu bytes is not 256-aligned at its end\n", bytes); return CUDA_ERROR_INVALID_VALUE; }
    if (bytes <= (256u << 20)) std::memset((void*)start, 0xAB, bytes); // garbage, as fresh device memory is
    g_blocks[start] = Block{bytes, m, mapBytes};
    g_used += bytes;
    *dptr = start;
    return CUDA_SUCCESS;
}

CUresult cuMemFree_v2(unsigned long long p)
{
    std::lock_guard<std::mutex> g(g_lock);
    auto it = g_blocks.find((uintptr_t)p);
    if (it == g_blocks.end()) return CUDA_ERROR_INVALID_VALUE;
    munmap(it->second.map, it->second.mapBytes);
    g_used -= it->second.bytes;
    g_blocks.erase(it);
    return CUDA_SUCCESS;
}

CUresult cuMemAllocHost_v2(void** p, size_t bytes) { *p = std::malloc(bytes); return *p ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY; }
CUresult cuMemFreeHost(void* p) { std::free(p); return CUDA_SUCCESS; }
CUresult cuMemGetInfo_v2(size_t* free, size_t* total) { *free = TotalBytes - g_used; *total = TotalBytes; return CUDA_SUCCESS; }

CUresult cuMemcpyHtoDAsync_v2(unsigned long long dst, const void* src, size_t n, void*)
{
    if (!inside(dst, n)) return CUDA_ERROR_INVALID_VALUE;
    std::memcpy((void*)dst, src, n);
    return CUDA_SUCCESS;
}
CUresult cuMemcpyDtoHAsync_v2(void* dst, unsigned long long src, size_t n, void*)
{
    if (!inside(src, n)) return CUDA_ERROR_INVALID_VALUE;
    std::memcpy(dst, (void*)src, n);
    return CUDA_SUCCESS;
}
CUresult cuMemcpyDtoDAsync_v2(unsigned long long dst, unsigned long long src, size_t n, void*)
{
    if (!inside(dst, n) || !inside(src, n)) return CUDA_ERROR_INVALID_VALUE;
    std::memmove((void*)dst, (void*)src, n);
    return CUDA_SUCCESS;
}
CUresult cuMemsetD8Async(unsigned long long dst, unsigned char v, size_t n, void*)
{
    if (!inside(dst, n)) return CUDA_ERROR_INVALID_VALUE;
    std::memset((void*)dst, v, n);
    return CUDA_SUCCESS;
}
CUresult cuMemsetD16Async(unsigned long long dst, unsigned short v, size_t n, void*)
{
    if (!inside(dst, n * 2) || dst % 2) return CUDA_ERROR_INVALID_VALUE;
    for (size_t i = 0; i < n; i++) ((unsigned short*)dst)[i] = v;
    return CUDA_SUCCESS;
}
CUresult cuMemsetD32Async(unsigned long long dst, unsigned v, size_t n, void*)
{
    if (!inside(dst, n * 4) || dst % 4) return CUDA_ERROR_INVALID_VALUE;
    for (size_t i = 0; i < n; i++) ((unsigned*)dst)[i] = v;
    return CUDA_SUCCESS;
}

CUresult cuModuleLoadData(void** module, const void* image)
{
    const unsigned char* p = (const unsigned char*)image;
    size_t size;
    if (p[0] == 0x7f && p[1] == 'E' && p[2] == 'L' && p[3] == 'F')
    {
        // ELF64: section headers end the file (e_shoff at 0x28, e_shentsize at 0x3A, e_shnum at 0x3C).
        unsigned long long shoff; unsigned short shentsize, shnum;
        std::memcpy(&shoff, p + 0x28, 8); std::memcpy(&shentsize, p + 0x3A, 2); std::memcpy(&shnum, p + 0x3C, 2);
        size = shoff + (size_t)shentsize * shnum;
        if (p[4] != 2 || size < 64 || size > (256u << 20)) return CUDA_ERROR_INVALID_IMAGE;
    }
    else if (std::strstr((const char*)p, ".entry") != nullptr) size = std::strlen((const char*)p) + 1; // PTX text
    else return CUDA_ERROR_INVALID_IMAGE;
    auto* m = new Module{std::vector<char>((const char*)p, (const char*)p + size)};
    g_modules[(uintptr_t)m] = m;
    *module = m;
    return CUDA_SUCCESS;
}

CUresult cuModuleUnload(void* module)
{
    auto it = g_modules.find((uintptr_t)module);
    if (it == g_modules.end()) return CUDA_ERROR_INVALID_HANDLE;
    delete it->second;
    g_modules.erase(it);
    return CUDA_SUCCESS;
}

CUresult cuModuleGetFunction(void** fn, void* module, const char* name)
{
    auto it = g_modules.find((uintptr_t)module);
    if (it == g_modules.end()) return CUDA_ERROR_INVALID_HANDLE;
    // The kernel must be in the image NVRTC produced (name followed by NUL in a CUBIN, or "(" in PTX)...
    const auto& img = it->second->image;
    std::string n(name);
    bool inImage = false;
    for (size_t at = 0; !inImage && at + n.size() < img.size(); at++)
        if (std::memcmp(&img[at], n.data(), n.size()) == 0 && (img[at + n.size()] == 0 || img[at + n.size()] == '(')
            && (at == 0 || !(std::isalnum((unsigned char)img[at - 1]) || img[at - 1] == '_')))
            inImage = true;
    if (!inImage) return CUDA_ERROR_NOT_FOUND;
    // ...and one the emulator can run.
    for (const auto& k : s_kernels)
        if (n == k.name) { *fn = (void*)&k; return CUDA_SUCCESS; }
    return CUDA_ERROR_NOT_FOUND;
}

CUresult cuLaunchKernel(void* f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                        unsigned shared, void* stream, void** params, void** extra)
{
    (void)stream;
    const KernelEntry* k = (const KernelEntry*)f;
    bool known = false;
    for (const auto& e : s_kernels) known |= &e == k;
    if (!known) return CUDA_ERROR_INVALID_HANDLE;
    if (gx == 0 || gy == 0 || gz == 0 || bx == 0 || by == 0 || bz == 0 || gy > 65535 || gz > 65535 || bz > 64 ||
        (unsigned long long)bx * by * bz > 1024 || shared > 48 * 1024 || params == nullptr || extra != nullptr)
        return CUDA_ERROR_INVALID_VALUE;
    std::lock_guard<std::mutex> g(g_lock);
    emu::g_gridDim = dim3{gx, gy, gz};
    emu::g_blockDim = dim3{bx, by, bz};
    for (unsigned z = 0; z < gz; z++)
        for (unsigned y = 0; y < gy; y++)
            for (unsigned x = 0; x < gx; x++)
            {
                emu::g_blockIdx = dim3{x, y, z};
                if (!emu::run_block(k->invoke, params))
                {
                    std::fprintf(stderr, "fake libcuda: %s deadlocked in block (%u,%u,%u): threads wait at a barrier others never reach\n", k->name, x, y, z);
                    return CUDA_ERROR_LAUNCH_FAILED;
                }
            }
    return CUDA_SUCCESS;
}

CUresult cuGetErrorName(CUresult e, const char** s)
{
    switch (e)
    {
        case CUDA_SUCCESS: *s = "CUDA_SUCCESS"; break;
        case CUDA_ERROR_INVALID_VALUE: *s = "CUDA_ERROR_INVALID_VALUE"; break;
        case CUDA_ERROR_OUT_OF_MEMORY: *s = "CUDA_ERROR_OUT_OF_MEMORY"; break;
        case CUDA_ERROR_NOT_FOUND: *s = "CUDA_ERROR_NOT_FOUND"; break;
        case CUDA_ERROR_INVALID_IMAGE: *s = "CUDA_ERROR_INVALID_IMAGE"; break;
        case CUDA_ERROR_INVALID_HANDLE: *s = "CUDA_ERROR_INVALID_HANDLE"; break;
        case CUDA_ERROR_LAUNCH_FAILED: *s = "CUDA_ERROR_LAUNCH_FAILED"; break;
        default: *s = nullptr; return CUDA_ERROR_INVALID_VALUE;
    }
    return CUDA_SUCCESS;
}

CUresult cuGetErrorString(CUresult e, const char** s)
{
    const char* name;
    if (cuGetErrorName(e, &name) != CUDA_SUCCESS) { *s = nullptr; return CUDA_ERROR_INVALID_VALUE; }
    *s = "reported by the CPU emulator (fake libcuda)";
    return CUDA_SUCCESS;
}

} // extern "C"
