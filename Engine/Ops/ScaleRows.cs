// Row scaling: viewing x as (M, inner) with M = s.Numel, y[m, :] = x[m, :] * s[m]. Used for
// squeeze-and-excitation gates (s: N x C) and drop-path (s: N). Gradient rule:
// dX = dY * s[m]; dS[m] = sum over the row of dY * x.
using ResidualEngine.Autograd;

namespace ResidualEngine;

public static partial class Ops
{
    public static Tensor ScaleRows(Tensor x, Tensor s)
    {
        Check.Float("ScaleRows", x, "x");
        Check.Float("ScaleRows", s, "s");
        Check.SameDevice("ScaleRows", x, "x", s, "s");
        Check.SameDType("ScaleRows", x, "x", s, "s");
        if (s.Numel == 0 || x.Numel % s.Numel != 0 || !LeadingDimsMatch(x.Shape, s.Shape))
            throw new ArgumentException($"ScaleRows: scale of shape {s.Shape} does not match the leading dimensions of x {x.Shape}");
        var y = NewLike(x);
        x.Backend.ScaleRowsForward(y, x, s);
        if (GradMode.ShouldRecord(x, s)) y.GradFn = new ScaleRowsNode(x, s);
        return y;
    }

    private static bool LeadingDimsMatch(Shape x, Shape s)
    {
        // s may be (N), (N, C) or (N, C, 1, 1): its non-unit leading dims must equal x's.
        int k = 0;
        for (int i = 0; i < s.Rank; i++)
        {
            if (i >= x.Rank) return s[i] == 1;
            if (s[i] != x[i]) return s[i] == 1 && AllOnes(s, i);
            k++;
        }
        return k >= 0;
    }

    private static bool AllOnes(Shape s, int from)
    {
        for (int i = from; i < s.Rank; i++) if (s[i] != 1) return false;
        return true;
    }

    private sealed class ScaleRowsNode : Node
    {
        private readonly Tensor _x, _s;
        public ScaleRowsNode(Tensor x, Tensor s) : base(x, s) { _x = Save(x); _s = Save(s); }
        public override string Name => "ScaleRows";
        protected internal override Tensor?[] Backward(Tensor dY)
        {
            var dx = NeedsGrad(0) ? NewLike(dY) : null;
            var ds = NeedsGrad(1) ? NewLike(_s) : null;
            dY.Backend.ScaleRowsBackward(dx, ds, dY, _x, _s);
            return [dx, ds];
        }
    }
}
