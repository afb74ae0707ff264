// Elementwise add and multiply. Gradient rules: d(a+b) = (dY, dY); d(a*b) = (dY*b, dY*a).
// A tensor used on both sides (x + x) receives both contributions, summed by the engine.
using ResidualEngine.Autograd;

namespace ResidualEngine;

public static partial class Ops
{
    public static Tensor Add(Tensor a, Tensor b)
    {
        Check.Compatible("Add", a, "a", b, "b");
        var y = NewLike(a);
        a.Backend.Add(y, a, b);
        if (GradMode.ShouldRecord(a, b)) y.GradFn = new AddNode(a, b);
        return y;
    }

    public static Tensor Sub(Tensor a, Tensor b)
    {
        Check.Compatible("Sub", a, "a", b, "b");
        var y = NewLike(a);
        a.Backend.Copy(y, a);
        a.Backend.Axpby(y, -1, b, 1);
        if (GradMode.ShouldRecord(a, b)) y.GradFn = new SubNode(a, b);
        return y;
    }

    private sealed class SubNode(Tensor a, Tensor b) : Node(a, b)
    {
        public override string Name => "Sub";
        protected internal override Tensor?[] Backward(Tensor dY)
        {
            Tensor? db = null;
            if (NeedsGrad(1)) { db = NewLike(dY); dY.Backend.Axpby(db, -1, dY, 0); }
            return [NeedsGrad(0) ? dY.Detach() : null, db];
        }
    }

    public static Tensor Mul(Tensor a, Tensor b)
    {
        Check.Compatible("Mul", a, "a", b, "b");
        var y = NewLike(a);
        a.Backend.Mul(y, a, b);
        if (GradMode.ShouldRecord(a, b)) y.GradFn = new MulNode(a, b);
        return y;
    }

    /// <summary>y = alpha * x.</summary>
    public static Tensor Scale(Tensor x, double alpha)
    {
        Check.Float("Scale", x, "x");
        var y = NewLike(x);
        x.Backend.Axpby(y, alpha, x, 0);
        if (GradMode.ShouldRecord(x)) y.GradFn = new ScaleNode(x, alpha);
        return y;
    }

    /// <summary>a += b, outside autograd (the engine's gradient accumulation).</summary>
    internal static void AddInPlace(Tensor a, Tensor b) => a.Backend.Add(a, a, b);

    /// <summary>a + b in a new tensor, outside autograd.</summary>
    internal static Tensor AddNoGrad(Tensor a, Tensor b)
    {
        var y = NewLike(a);
        a.Backend.Add(y, a, b);
        return y;
    }

    private sealed class AddNode(Tensor a, Tensor b) : Node(a, b)
    {
        public override string Name => "Add";
        protected internal override Tensor?[] Backward(Tensor dY) =>
            [NeedsGrad(0) ? dY.Detach() : null, NeedsGrad(1) ? dY.Detach() : null];
    }

    private sealed class MulNode : Node
    {
        private readonly Tensor _a, _b;
        public MulNode(Tensor a, Tensor b) : base(a, b) { _a = Save(a); _b = Save(b); }
        public override string Name => "Mul";
        protected internal override Tensor?[] Backward(Tensor dY)
        {
            Tensor? da = null, db = null;
            if (NeedsGrad(0)) { da = NewLike(dY); dY.Backend.Mul(da, dY, _b); }
            if (NeedsGrad(1)) { db = NewLike(dY); dY.Backend.Mul(db, dY, _a); }
            return [da, db];
        }
    }

    private sealed class ScaleNode(Tensor x, double alpha) : Node(x)
    {
        public override string Name => "Scale";
        protected internal override Tensor?[] Backward(Tensor dY)
        {
            var dx = NewLike(dY);
            dY.Backend.Axpby(dx, alpha, dY, 0);
            return [dx];
        }
    }
}
