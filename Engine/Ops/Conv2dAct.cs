// A convolution with its epilogue: y = act(conv(x, w) + bias + residual), act = ReLU or none.
// Without a recorded gradient it is one backend call (IBackend.ConvForwardFused: the CPU backend
// adds the bias and the residual and applies the ReLU to each output tile while it is in cache);
// when a gradient is recorded it is the unfused ops (Conv2d, then Add/AddRelu/Relu), so autograd
// sees exactly what it would have seen. Eval-mode layers pass weights prepared once by the backend.
using ResidualEngine.Autograd;
using ResidualEngine.Backends;

namespace ResidualEngine;

public static partial class Ops
{
    /// <summary>act(conv(x, weight) + bias + residual): residual (the output's shape) and bias optional, act = ReLU when <paramref name="relu"/>.</summary>
    public static Tensor Conv2dAct(Tensor x, Tensor weight, Tensor? bias, Conv2dParams p, Tensor? residual = null, bool relu = false)
    {
        if (GradMode.ShouldRecord([x, weight, bias, residual]))
        {
            var y = Conv2d(x, weight, bias, p);
            if (residual is not null) return y.Then(t => relu ? AddRelu(t, residual) : Add(t, residual));
            return relu ? y.Then(Relu) : y;
        }
        return Conv2dFused(x, weight, bias, p, residual, relu, null);
    }

    /// <summary>The fused forward call, no autograd. With <paramref name="prepared"/> (made by x's backend for
    /// weight's shape), weight gives only the shape; its data is not read.</summary>
    internal static Tensor Conv2dFused(Tensor x, Tensor weight, Tensor? bias, Conv2dParams p, Tensor? residual, bool relu, PreparedConvWeights? prepared)
    {
        const string op = "Conv2d";
        var (n, k, outH, outW) = CheckConv2d(x, weight, bias, p);
        var y = NewLike(x, new Shape(n, k, outH, outW));
        if (residual is not null)
        {
            Check.Compatible(op, y, "output", residual, "residual");
            Check.Nchw(op, residual, "residual");
        }
        try { x.Backend.ConvForwardFused(y, x, weight, bias, residual, relu, p, prepared); }
        catch { y.Dispose(); throw; }
        return y;
    }
}
