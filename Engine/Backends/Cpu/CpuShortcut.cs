// Option-A shortcut on the CPU.
// STUB: to be implemented (multi-threaded, SIMD, F32 and F64).
namespace ResidualEngine.Backends.Cpu;

public sealed partial class CpuBackend
{
    public void ShortcutAForward(Tensor y, Tensor x, int stride, int padBefore) => throw new NotImplementedException();
    public void ShortcutABackward(Tensor dX, Tensor dY, int stride, int padBefore) => throw new NotImplementedException();
}
