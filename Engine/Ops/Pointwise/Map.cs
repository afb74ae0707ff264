// Ops.Map: runs any op of the pointwise family (PointwiseOp.cs) on a tensor's backend and records
// one generic node per arity. Gradient rule: the op's own Gradient, written with forward ops; for a
// broadcast second operand, its gradient is summed down to b's shape (SumTo). Outputs keep the first
// operand's memory format; same-shape operands must share theirs. Under Autocast, binary operands of
// different float types are promoted to F32 first (PyTorch's type promotion).
using ResidualEngine.Autograd;
using ResidualEngine.Pointwise;

namespace ResidualEngine;

public static partial class Ops
{
    /// <summary>y = TOp(x; alpha, beta).</summary>
    public static Tensor Map<TOp>(Tensor x, double alpha = 0, double beta = 0) where TOp : struct, IUnaryOp
    {
        var name = Pointwise.PointwiseInfo.KernelName<TOp>();
        Check.Float(name, x, "x");
        var y = NewLike(x);
        x.Backend.Map<TOp>(y, x, alpha, beta);
        if (GradMode.ShouldRecord(x)) y.GradFn = new UnaryNode<TOp>(x, y, alpha, beta);
        return y;
    }

    /// <summary>y = TOp(a, b; alpha, beta), a and b of one shape.</summary>
    public static Tensor Map<TOp>(Tensor a, Tensor b, double alpha = 0, double beta = 0) where TOp : struct, IBinaryOp
    {
        if (Autocast.Promote(a, b) is { } p)
        {
            using (p.A) using (p.B) return Map<TOp>(p.A, p.B, alpha, beta);
        }
        Check.Compatible(Pointwise.PointwiseInfo.KernelName<TOp>(), a, "a", b, "b");
        return MapBinary<TOp>(a, b, Broadcast.Same(a), alpha, beta);
    }

    /// <summary>y = TOp(a, b; alpha, beta) with b broadcast over a as <paramref name="broadcast"/> says; y has a's shape.</summary>
    public static Tensor Map<TOp>(Tensor a, Tensor b, Broadcast broadcast, double alpha = 0, double beta = 0) where TOp : struct, IBinaryOp
    {
        var name = Pointwise.PointwiseInfo.KernelName<TOp>();
        Check.Float(name, a, "a");
        Check.Float(name, b, "b");
        if (Autocast.Promote(a, b) is { } p)
        {
            using (p.A) using (p.B) return Map<TOp>(p.A, p.B, broadcast, alpha, beta);
        }
        Check.SameDevice(name, a, "a", b, "b");
        Check.SameDType(name, a, "a", b, "b");
        CheckBroadcast(name, a, b, broadcast);
        return MapBinary<TOp>(a, b, broadcast, alpha, beta);
    }

    /// <summary>y = TOp(a, b, c; alpha, beta), all of one shape.</summary>
    public static Tensor Map<TOp>(Tensor a, Tensor b, Tensor c, double alpha = 0, double beta = 0) where TOp : struct, ITernaryOp
    {
        var name = Pointwise.PointwiseInfo.KernelName<TOp>();
        Check.Compatible(name, a, "a", b, "b");
        Check.Compatible(name, a, "a", c, "c");
        var y = NewLike(a);
        a.Backend.Map<TOp>(y, a, b, c, alpha, beta);
        if (GradMode.ShouldRecord(a, b, c)) y.GradFn = new TernaryNode<TOp>(a, b, c, y, alpha, beta);
        return y;
    }

    /// <summary>Sums x down to the shape of a broadcast operand: y[k] = sum of x[i] over the i with (i / Inner) % Period == k.</summary>
    public static Tensor SumTo(Tensor x, Broadcast broadcast, Shape shape)
    {
        Check.Float("SumTo", x, "x");
        ArgumentNullException.ThrowIfNull(shape);
        if (shape.Numel != broadcast.Period || x.Numel % (broadcast.Inner * broadcast.Period) != 0)
            throw new ArgumentException($"SumTo: cannot sum {x.Shape} down to {shape} with {broadcast}");
        var y = NewLike(x, shape);
        x.Backend.SumTo(y, x, broadcast);
        if (GradMode.ShouldRecord(x)) y.GradFn = new SumToNode(x, broadcast);
        return y;
    }

    private static void CheckBroadcast(string op, Tensor a, Tensor b, Broadcast bc)
    {
        if (bc.Inner < 1 || bc.Period < 1 || a.Numel % (bc.Inner * bc.Period) != 0 || b.Numel != bc.Period)
            throw new ArgumentException($"{op}: b of shape {b.Shape} cannot be broadcast over a of shape {a.Shape} as {bc}");
    }

    private static Tensor MapBinary<TOp>(Tensor a, Tensor b, Broadcast bc, double alpha, double beta) where TOp : struct, IBinaryOp
    {
        var y = NewLike(a);
        a.Backend.Map<TOp>(y, a, b, bc, alpha, beta);
        if (GradMode.ShouldRecord(a, b)) y.GradFn = new BinaryNode<TOp>(a, b, y, bc, alpha, beta);
        return y;
    }

    private static string GradName<TOp>() => Pointwise.PointwiseInfo.KernelName<TOp>();

    private static NotSupportedException NoGradientFor<TOp>(NotSupportedException e) =>
        new($"{GradName<TOp>()} has no gradient rule, but one of its inputs requires a gradient", e);

    private sealed class UnaryNode<TOp> : Node where TOp : struct, IUnaryOp
    {
        private readonly Tensor? _x, _y;
        private readonly double _alpha, _beta;

        public UnaryNode(Tensor x, Tensor y, double alpha, double beta) : base(x)
        {
            if (TOp.Saves.HasFlag(Saves.A)) _x = Save(x);
            if (TOp.Saves.HasFlag(Saves.Output)) _y = Save(y);
            (_alpha, _beta) = (alpha, beta);
        }

        public override string Name => GradName<TOp>();

        protected internal override Tensor?[] Backward(Tensor dY)
        {
            try { return [TOp.Gradient(new UnaryGradient(dY, _x, _y, _alpha, _beta))]; }
            catch (NotSupportedException e) { throw NoGradientFor<TOp>(e); }
        }
    }

    private sealed class BinaryNode<TOp> : Node where TOp : struct, IBinaryOp
    {
        private readonly Tensor? _a, _b, _y;
        private readonly Shape _bShape;
        private readonly Broadcast _bc;
        private readonly double _alpha, _beta;

        public BinaryNode(Tensor a, Tensor b, Tensor y, Broadcast bc, double alpha, double beta) : base(a, b)
        {
            var s = TOp.Saves;
            if (s.HasFlag(Saves.A)) _a = Save(a);
            if (s.HasFlag(Saves.B)) _b = Save(b);
            if (s.HasFlag(Saves.Output)) _y = Save(y);
            (_bShape, _bc, _alpha, _beta) = (b.Shape, bc, alpha, beta);
        }

        public override string Name => GradName<TOp>();

        protected internal override Tensor?[] Backward(Tensor dY)
        {
            (Tensor? da, Tensor? db) r;
            try { r = TOp.Gradient(new BinaryGradient(dY, _a, _b, _y, _alpha, _beta, _bc, NeedsGrad(0), NeedsGrad(1))); }
            catch (NotSupportedException e) { throw NoGradientFor<TOp>(e); }
            var db = r.db;
            if (db is not null && !_bc.IsElementwise(dY.Numel))
            {
                var full = db;
                db = SumTo(full, _bc, _bShape);
                full.Dispose();
            }
            else if (db is not null && db.Shape != _bShape)
            {
                var full = db;
                db = full.View(_bShape);
                full.Dispose();
            }
            return [r.da, db];
        }
    }

    private sealed class TernaryNode<TOp> : Node where TOp : struct, ITernaryOp
    {
        private readonly Tensor? _a, _b, _c, _y;
        private readonly double _alpha, _beta;

        public TernaryNode(Tensor a, Tensor b, Tensor c, Tensor y, double alpha, double beta) : base(a, b, c)
        {
            var s = TOp.Saves;
            if (s.HasFlag(Saves.A)) _a = Save(a);
            if (s.HasFlag(Saves.B)) _b = Save(b);
            if (s.HasFlag(Saves.C)) _c = Save(c);
            if (s.HasFlag(Saves.Output)) _y = Save(y);
            (_alpha, _beta) = (alpha, beta);
        }

        public override string Name => GradName<TOp>();

        protected internal override Tensor?[] Backward(Tensor dY)
        {
            try
            {
                var (da, db, dc) = TOp.Gradient(new TernaryGradient(dY, _a, _b, _c, _y, _alpha, _beta, NeedsGrad(0), NeedsGrad(1), NeedsGrad(2)));
                return [da, db, dc];
            }
            catch (NotSupportedException e) { throw NoGradientFor<TOp>(e); }
        }
    }

    /// <summary>Gradient of SumTo: every summed element receives its target's gradient.</summary>
    private sealed class SumToNode(Tensor x, Broadcast bc) : Node(x)
    {
        private readonly Shape _shape = x.Shape;
        private readonly MemoryFormat _format = x.Format;
        public override string Name => "SumTo";

        protected internal override Tensor?[] Backward(Tensor dY)
        {
            // dX[i] = dY[(i / Inner) % Period] in x's memory order: a broadcast copy (Expand ignores its first operand).
            var dx = Tensor.Empty(_shape, dY.DType, dY.Device, _format);
            dY.Backend.Map<Expand>(dx, dx, dY, bc, 0, 0);
            return [dx];
        }
    }
}
