"""Statistics over seeds for comparing methods (tools/compare_results.py, tools/demo.py).

A method's runs over seeds give mean ± standard deviation (n - 1 in the denominator). Two methods are
compared *paired by seed*: the same seed gives both runs the same data order and, where the models
match, the same initialisation, so the per-seed differences d_i = x_i - b_i cancel what the seed
shares. Their mean has the 95 % confidence interval mean(d) ± t(0.975, n - 1) · sd(d) / sqrt(n)
(Student's t, for n >= 2); a difference is called real here only when that interval excludes zero.
"""
import math
from typing import Dict, List, Optional, Sequence


def summarize(values: Sequence[float]) -> Dict[str, Optional[float]]:
    """``mean``, ``std`` (sample, n - 1; None for one value) and ``n``."""
    n = len(values)
    if n == 0:
        raise ValueError('no values to summarize.')
    mean = math.fsum(values) / n
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else None
    return dict(mean=mean, std=std, n=n)


def t_cdf(x: float, df: int) -> float:
    """Student's t distribution function: 1/2 + the density integrated from 0 to |x| (Simpson's
    rule on 2,000 intervals after the substitution u = atan(t / sqrt(df)), which maps the infinite
    tail to a finite one, so the integrand is smooth and bounded; error far below 1e-9)."""
    if x < 0:
        return 1.0 - t_cdf(-x, df)
    log_norm = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)

    def integrand(u: float) -> float:
        # t = sqrt(df) tan(u): f(t) dt = f(t) sqrt(df) / cos(u)^2 du, and 1 + t^2/df = 1 / cos(u)^2.
        return math.exp(log_norm) * math.sqrt(df) * math.cos(u) ** (df - 1)

    upper = math.atan(x / math.sqrt(df))
    steps = 2000
    h = upper / steps
    total = integrand(0.0) + integrand(upper)
    total += sum((4 if k % 2 else 2) * integrand(k * h) for k in range(1, steps))
    return 0.5 + total * h / 3


def t_quantile(p: float, df: int) -> float:
    """The p-quantile of Student's t with ``df`` degrees of freedom (bisection on :func:`t_cdf`)."""
    if not 0.5 <= p < 1:
        raise ValueError(f'p={p}: give the upper quantile, 0.5 <= p < 1.')
    low, high = 0.0, 1.0
    while t_cdf(high, df) < p:
        high *= 2
    for _ in range(60):
        mid = (low + high) / 2
        low, high = (mid, high) if t_cdf(mid, df) < p else (low, mid)
    return (low + high) / 2


def paired_difference(values: Dict[int, float], baseline: Dict[int, float],
                      level: float = 0.95) -> Dict[str, object]:
    """``values[seed] - baseline[seed]`` over the seeds both have: ``mean``, ``std``, ``n``, ``seeds``,
    the ``level`` confidence interval ``low``/``high`` (None below 2 seeds) and ``excludes_zero``."""
    seeds = sorted(set(values) & set(baseline))
    if not seeds:
        raise ValueError(f'no seed in common: {sorted(values)} vs the baseline\'s {sorted(baseline)}.')
    diffs: List[float] = [values[s] - baseline[s] for s in seeds]
    stats = summarize(diffs)
    low = high = None
    if stats['n'] > 1:
        half = t_quantile((1 + level) / 2, stats['n'] - 1) * stats['std'] / math.sqrt(stats['n'])
        low, high = stats['mean'] - half, stats['mean'] + half
    return dict(stats, seeds=seeds, low=low, high=high,
                excludes_zero=low is not None and (low > 0 or high < 0))
