// SiLU (swish), x * sigmoid(x): the worked example of adding a pointwise op (Kernels/README.md).
// Three pieces: this struct (CPU arithmetic, what the gradient saves, the gradient itself), its
// backward struct, and one line each in Kernels/pointwise.cu (`UNARY(silu, ...)`,
// `BINARY(silu_backward, ...)`). The test suite finds both through reflection and checks them
// (gradcheck, F32 against F64, CPU against CUDA). Gradient rule, with s = sigmoid(x):
//   dX = dY * s * (1 + x * (1 - s)).
using System.Numerics;

namespace ResidualEngine.Pointwise
{
    public readonly struct Silu : IUnaryOp
    {
        public static Saves Saves => Saves.A;
        public static T Apply<T>(T x, T alpha, T beta) where T : unmanaged, IFloatingPointIeee754<T> => x / (T.One + T.Exp(-x));
        public static Tensor Gradient(in UnaryGradient g) => Ops.Map<SiluBackward>(g.DY, g.X!);
    }

    /// <summary>a = dY, b = x.</summary>
    public readonly struct SiluBackward : IBinaryOp
    {
        public static Saves Saves => Saves.None;
        public static T Apply<T>(T dy, T x, T alpha, T beta) where T : unmanaged, IFloatingPointIeee754<T>
        {
            T s = T.One / (T.One + T.Exp(-x));
            return dy * s * (T.One + x * (T.One - s));
        }
    }
}

namespace ResidualEngine
{
    public static partial class Ops
    {
        /// <summary>x * sigmoid(x), elementwise.</summary>
        public static Tensor Silu(Tensor x) => Map<Pointwise.Silu>(x);
    }
}
