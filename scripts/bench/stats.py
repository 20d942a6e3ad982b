"""Summary statistics shared by the benchmark scripts."""


def pct(values, p):
    """The p-th percentile of @values, linearly interpolated."""
    s = sorted(values)
    k = (len(s) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)
