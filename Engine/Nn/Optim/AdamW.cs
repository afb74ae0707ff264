// AdamW as torch.optim.AdamW (torch 1.13, the single-tensor path): decoupled weight decay
// w *= 1 - lr * wd, then m = b1 m + (1 - b1) g, v = b2 v + (1 - b2) g^2 (with AMSGrad, vmax =
// max(vmax, v) replaces v below), w -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps),
// with t the parameter's own step count. The rule runs on the host (see HostOptimizer).
namespace ResidualEngine.Nn.Optim;

public sealed class AdamW : HostOptimizer
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

    protected override void Update(int index, double[] w, double[] g, double[][] state, long step, double lr, double weightDecay)
    {
        double[] m = state[0], v = state[1];
        double bc1 = 1 - Math.Pow(Beta1, step), bc2Sqrt = Math.Sqrt(1 - Math.Pow(Beta2, step)), stepSize = lr / bc1;
        double decay = 1 - lr * weightDecay;
        for (int i = 0; i < w.Length; i++)
        {
            w[i] *= decay;
            m[i] = Beta1 * m[i] + (1 - Beta1) * g[i];
            v[i] = Beta2 * v[i] + (1 - Beta2) * g[i] * g[i];
            double second = v[i];
            if (AmsGrad) second = state[2][i] = Math.Max(state[2][i], v[i]);
            w[i] -= stepSize * m[i] / (Math.Sqrt(second) / bc2Sqrt + Eps);
        }
    }
}
