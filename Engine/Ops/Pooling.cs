// Max, average and global average pooling (NCHW or channels-last: outputs, indices and gradients keep
// x's format; any float type). Gradient rules:
//   max: dX[argmax of each window] += dY (the argmax offsets are saved as I32 indices);
//   average: every input in a window receives dY / divisor (the window size, with or without
//   padding as count_include_pad says);
//   global average: every input receives dY / (H * W).
// Window geometry and validation follow PyTorch (padding at most half the kernel, ceil mode).
using ResidualEngine.Autograd;
using ResidualEngine.Backends;

namespace ResidualEngine;

public static partial class Ops
{
    public static Tensor MaxPool2d(Tensor x, Pool2dParams p)
    {
        var (n, c, pp, q) = CheckPool("MaxPool2d", x, p);
        var y = NewLike(x, new Shape(n, c, pp, q), x.Format);
        var indices = Tensor.Empty(y.Shape, DType.I32, x.Device, x.Format);
        x.Backend.MaxPoolForward(y, indices, x, p);
        if (GradMode.ShouldRecord(x)) y.GradFn = new MaxPoolNode(x, indices, p);
        else indices.Dispose();
        return y;
    }

    public static Tensor MaxPool2d(Tensor x, int kernel, int? stride = null, int padding = 0, bool ceilMode = false) =>
        MaxPool2d(x, Pool2dParams.Of(kernel, stride ?? kernel, padding, ceilMode));

    public static Tensor AvgPool2d(Tensor x, Pool2dParams p)
    {
        var (n, c, pp, q) = CheckPool("AvgPool2d", x, p);
        var y = NewLike(x, new Shape(n, c, pp, q), x.Format);
        x.Backend.AvgPoolForward(y, x, p);
        if (GradMode.ShouldRecord(x)) y.GradFn = new AvgPoolNode(x, p);
        return y;
    }

    public static Tensor AvgPool2d(Tensor x, int kernel, int? stride = null, int padding = 0, bool ceilMode = false, bool countIncludePad = true) =>
        AvgPool2d(x, Pool2dParams.Of(kernel, stride ?? kernel, padding, ceilMode, countIncludePad));

    /// <summary>(N, C, H, W) -> (N, C, 1, 1), the mean over each plane (AdaptiveAvgPool2d(1)).</summary>
    public static Tensor GlobalAvgPool2d(Tensor x)
    {
        const string op = "GlobalAvgPool2d";
        Check.Float(op, x, "x");
        Check.Rank(op, x, "x", 4);
        if (x.Shape[2] == 0 || x.Shape[3] == 0) throw new ArgumentException($"{op}: x has empty planes, shape {x.Shape}");
        var y = NewLike(x, new Shape(x.Shape[0], x.Shape[1], 1, 1), x.Format);
        x.Backend.GlobalAvgPoolForward(y, x);
        if (GradMode.ShouldRecord(x)) y.GradFn = new GlobalAvgPoolNode(x);
        return y;
    }

    /// <summary>Validates a pooling call as PyTorch does and returns the output shape.</summary>
    private static (int N, int C, int P, int Q) CheckPool(string op, Tensor x, Pool2dParams p)
    {
        Check.Float(op, x, "x");
        Check.Rank(op, x, "x", 4);
        var y = p.OutputShape(x.Shape, op);
        return (y[0], y[1], y[2], y[3]);
    }

    private sealed class MaxPoolNode : Node
    {
        private readonly Shape _xShape;
        private readonly MemoryFormat _format;
        private readonly Tensor _indices; // I32 (N, C, P, Q): argmax offset h * W + w in its plane, in x's format
        private readonly Pool2dParams _p;

        public MaxPoolNode(Tensor x, Tensor indices, Pool2dParams p) : base(x)
        {
            _xShape = x.Shape;
            _format = x.Format;
            _indices = Own(indices);
            _p = p;
        }

        public override string Name => "MaxPool2d";

        protected internal override Tensor?[] Backward(Tensor dY)
        {
            var dx = NewLike(dY, _xShape, _format);
            dY.Backend.MaxPoolBackward(dx, dY, _indices, _p);
            return [dx];
        }
    }

    private sealed class AvgPoolNode(Tensor x, Pool2dParams p) : Node(x)
    {
        private readonly Shape _xShape = x.Shape;
        private readonly MemoryFormat _format = x.Format;
        public override string Name => "AvgPool2d";

        protected internal override Tensor?[] Backward(Tensor dY)
        {
            var dx = NewLike(dY, _xShape, _format);
            dY.Backend.AvgPoolBackward(dx, dY, p);
            return [dx];
        }
    }

    private sealed class GlobalAvgPoolNode(Tensor x) : Node(x)
    {
        private readonly Shape _xShape = x.Shape;
        private readonly MemoryFormat _format = x.Format;
        public override string Name => "GlobalAvgPool2d";

        protected internal override Tensor?[] Backward(Tensor dY)
        {
            var dx = NewLike(dY, _xShape, _format);
            dY.Backend.GlobalAvgPoolBackward(dx, dY);
            return [dx];
        }
    }
}
