// AdamW as torch.optim.AdamW (torch 1.13, the single-tensor path): decoupled weight decay
// w *= 1 - lr * wd, then m = b1 m + (1 - b1) g, v = b2 v + (1 - b2) g^2 (with AMSGrad, vmax =
// max(vmax, v) replaces v below), w -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps),
// with t the parameter's own step count. Four or five pointwise ops per parameter on its device,
// in its dtype (as torch computes in the parameter's dtype); the last step is written as
// w -= (lr sqrt(1 - b2^t) / (1 - b1^t)) m / (sqrt(v) + eps sqrt(1 - b2^t)), the same quantity.
using ResidualEngine.Pointwise;

namespace ResidualEngine.Nn.Optim;

public sealed class AdamW : StatefulOptimizer
{
    public AdamW(IEnumerable<ParamGroup> groups, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, bool amsgrad = false)
        : base(groups, lr, amsgrad ? ["exp_avg", "exp_avg_sq", "max_exp_avg_sq"] : ["exp_avg", "exp_avg_sq"])
    {
        if (!(beta1 >= 0 && beta1 < 1)) throw new ArgumentException($"AdamW: beta1 must be in [0, 1), got {beta1}");
        if (!(beta2 >= 0 && beta2 < 1)) throw new ArgumentException($"AdamW: beta2 must be in [0, 1), got {beta2}");
        if (!(eps >= 0) || double.IsInfinity(eps)) throw new ArgumentException($"AdamW: eps must be >= 0 and finite, got {eps}");
        Beta1 = beta1;
        Beta2 = beta2;
        Eps = eps;
        AmsGrad = amsgrad;
    }

    public double Beta1 { get; }
    public double Beta2 { get; }
    public double Eps { get; }
    public bool AmsGrad { get; }

    /// <summary>AdamW over a module's parameters; with <paramref name="noBnWeightDecay"/>, parameters of rank &lt;= 1 get no weight decay.</summary>
    public static AdamW ForModule(Module m, double lr, double weightDecay = 0.01, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, bool noBnWeightDecay = false)
    {
        ArgumentNullException.ThrowIfNull(m);
        return new AdamW(Sgd.GroupsOf(m, weightDecay, noBnWeightDecay), lr, beta1, beta2, eps);
    }

    protected override void Update(int index, Tensor w, Tensor g, Tensor[] state, long step, double lr, double weightDecay)
    {
        Tensor m = state[0], v = state[1];
        var be = w.Backend;
        var same = Broadcast.Same(w);
        double bc1 = 1 - Math.Pow(Beta1, step), bc2Sqrt = Math.Sqrt(1 - Math.Pow(Beta2, step));
        if (weightDecay != 0) be.Map<Scale>(w, w, 1 - lr * weightDecay, 0);
        be.Map<Axpby>(m, m, g, same, Beta1, 1 - Beta1);
        be.Map<AxpbySquare>(v, v, g, same, Beta2, 1 - Beta2);
        var second = v;
        if (AmsGrad)
        {
            be.Map<Maximum>(state[2], state[2], v, same, 0, 0);
            second = state[2];
        }
        be.Map<AdamStep>(w, w, m, second, lr / bc1 * bc2Sqrt, Eps * bc2Sqrt);
    }
}
