// Reshape and flatten: views that share storage. Gradient rule: dX = dY viewed in X's shape (and
// memory format). A channels-last tensor can be reshaped only where its memory is in logical order
// (one channel, or 1 x 1 planes: the pooled features before a ResNet's fc layer).
using ResidualEngine.Autograd;

namespace ResidualEngine;

public static partial class Ops
{
    /// <summary>Same elements, another shape; one dimension may be -1 (inferred).</summary>
    public static Tensor Reshape(Tensor x, params int[] dims)
    {
        Check.NotDisposed("Reshape", x, "x");
        ArgumentNullException.ThrowIfNull(dims);
        if (!x.IsLogicallyOrdered)
            throw new NotSupportedException($"Reshape: {x.Describe()} is channels-last; make it NCHW first (Ops.Contiguous(x))");
        var d = (int[])dims.Clone();
        int infer = -1;
        long known = 1;
        for (int i = 0; i < d.Length; i++)
        {
            if (d[i] == -1)
            {
                if (infer >= 0) throw new ArgumentException("Reshape: only one dimension can be -1");
                infer = i;
            }
            else if (d[i] < 0) throw new ArgumentException($"Reshape: invalid dimension {d[i]} at {i}");
            else known *= d[i];
        }
        if (infer >= 0)
        {
            if (known == 0 || x.Numel % known != 0)
                throw new ArgumentException($"Reshape: cannot infer a dimension to view shape {x.Shape} as ({string.Join(", ", dims)})");
            d[infer] = (int)(x.Numel / known);
        }
        var shape = new Shape(d);
        if (shape.Numel != x.Numel)
            throw new ArgumentException($"Reshape: shape {x.Shape} ({x.Numel} elements) cannot become {shape} ({shape.Numel} elements)");
        var y = x.View(shape, MemoryFormat.Contiguous);
        if (GradMode.ShouldRecord(x)) y.GradFn = new ReshapeNode(x);
        return y;
    }

    /// <summary>Flattens dimensions startDim.. into one: (N, C, H, W) -> (N, C*H*W) for startDim 1.</summary>
    public static Tensor Flatten(Tensor x, int startDim = 1)
    {
        Check.NotDisposed("Flatten", x, "x");
        if (startDim < 0 || startDim >= Math.Max(1, x.Rank))
            throw new ArgumentException($"Flatten: startDim {startDim} is out of range for shape {x.Shape}");
        var d = new int[startDim + 1];
        for (int i = 0; i < startDim; i++) d[i] = x.Shape[i];
        long rest = 1;
        for (int i = startDim; i < x.Rank; i++) rest *= x.Shape[i];
        d[startDim] = checked((int)rest);
        return Reshape(x, d);
    }

    private sealed class ReshapeNode(Tensor x) : Node(x)
    {
        private readonly Shape _shape = x.Shape;
        private readonly MemoryFormat _format = x.Format;
        public override string Name => "Reshape";
        protected internal override Tensor?[] Backward(Tensor dY) =>
            [dY.IsLogicallyOrdered ? dY.View(_shape, _format) : dY.To(MemoryFormat.Contiguous).Then(c => c.View(_shape, _format))];
    }
}
