"""Permutation tests for a fitted model, behind :meth:`MetaResult.permutation_test`.

Follows metafor 3.8 ``permutest.rma.uni``: sign flips of the effect sizes for a model without
moderators, permutations of the moderator rows for a meta-regression; exact enumeration when
there are no more distinct permutations than requested, else random ones (the observed data
counted as the first).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from imrstats._errors import DataError, ImrstatsWarning
from imrstats.meta._fit import fit_model
from imrstats.meta._tables import DiagnosticTable, tidy_frame

if TYPE_CHECKING:
    from imrstats.meta._result import MetaResult

__all__ = ["PermutationResult", "count_permutations", "permutation_test"]

#: metafor's ``comptol``: a permuted statistic counts when it is at least the observed one
#: minus this (so that ties are not lost to rounding).
COMPTOL = math.sqrt(np.finfo(float).eps)
#: Largest exact enumeration ``exact=True`` will run.
MAX_EXACT = 1_000_000


def count_permutations(X: np.ndarray) -> int:
    """Number of distinct permutations metafor enumerates in an exact test: ``2**k`` sign
    flips without moderators (one column), else ``k! / prod(n_g!)`` over groups of identical
    rows of ``X``."""
    k, p = X.shape
    if p == 1:
        return 2**k
    _, counts = np.unique(X, axis=0, return_counts=True)
    return math.factorial(k) // math.prod(math.factorial(int(c)) for c in counts)


def _multiset_permutations(labels: np.ndarray) -> Iterator[np.ndarray]:
    """Every distinct ordering of ``labels`` (lexicographic next-permutation)."""
    a = np.sort(labels)
    n = len(a)
    while True:
        yield a.copy()
        i = n - 2
        while i >= 0 and a[i] >= a[i + 1]:
            i -= 1
        if i < 0:
            return
        j = n - 1
        while a[j] <= a[i]:
            j -= 1
        a[i], a[j] = a[j], a[i]
        a[i + 1 :] = a[i + 1 :][::-1]


@dataclass(frozen=True, repr=False, eq=False)
class PermutationResult(DiagnosticTable):
    """Result of :meth:`MetaResult.permutation_test` (metafor ``permutest``).

    Attributes
    ----------
    QM, QM_p : float
        The omnibus test statistic of the model and its permutation p-value.
    n_permutations : int
        Permutations used (the enumerated ones when ``exact``).
    exact : bool
        Whether every distinct permutation (or sign flip) was used.
    permuted_statistics : numpy.ndarray
        The z / t statistics of every permutation (n_permutations x p; NaN where a refit
        failed).
    permuted_QM : numpy.ndarray
        QM of every permutation.
    """

    QM: float = math.nan
    QM_p: float = math.nan
    n_permutations: int = 0
    exact: bool = False
    permuted_statistics: np.ndarray = field(default_factory=lambda: np.empty((0, 0)))
    permuted_QM: np.ndarray = field(default_factory=lambda: np.empty(0))

    def plot(self, ax: Any = None, *, term: str | None = None, bins: int = 30) -> Any:
        """Histogram of the permuted z / t statistics of one coefficient (default: the last)
        with the observed statistic and its mirror image as vertical lines. Returns the
        matplotlib Axes."""
        import matplotlib.pyplot as plt

        terms = self.frame["term"].tolist()
        j = len(terms) - 1 if term is None else terms.index(term)
        if ax is None:
            _, ax = plt.subplots(figsize=(6, 4))
        values = self.permuted_statistics[:, j]
        ax.hist(values[~np.isnan(values)], bins=bins, color="lightgrey", edgecolor="grey")
        obs = float(self.frame["statistic"].iloc[j])
        for x in (obs, -obs):
            ax.axvline(x, color="black", linestyle="--", linewidth=1)
        ax.set_xlabel(f"permuted test statistic ({terms[j]})")
        ax.set_ylabel("count")
        return ax

    def summary(self) -> str:
        """Plain-text summary (numbers rounded for display only)."""
        kind = "exact" if self.exact else "random"
        lines = super().summary().splitlines()
        lines.insert(2, f"{self.n_permutations} permutations ({kind}); omnibus test QM = "
                        f"{self.QM:.4f}, permutation p = {self.QM_p:.4g}")  # fmt: skip
        return "\n".join(lines)


def permutation_test(
    res: MetaResult,
    n_permutations: int = 1000,
    *,
    rng: Any = None,
    exact: bool | str = "auto",
) -> PermutationResult:
    r"""Permutation p-values of the coefficients and of the omnibus test (metafor
    ``permutest``).

    Parameters
    ----------
    n_permutations : int
        Random permutations (the observed data are counted as the first of them, as metafor).
    rng : int or numpy.random.Generator, optional
        Seed or generator of the random permutations (unused for an exact test).
    exact : {"auto", True, False}
        ``"auto"`` (metafor's default): enumerate every distinct permutation when there are no
        more than ``n_permutations`` of them; ``True``: always enumerate (metafor's
        ``exact = TRUE``; at most 1,000,000); ``False``: always random.

    Returns
    -------
    PermutationResult
        ``.to_frame()``: term, estimate, std_error, statistic (z or t), df, p_value (the
        permutation p-value), ci_low, ci_high (the model's Wald intervals), p_value_model (the
        model's own p-value); ``.QM``, ``.QM_p``, ``.n_permutations``, ``.exact``,
        ``.permuted_statistics``, ``.permuted_QM``.

    Raises
    ------
    ValueError
        ``n_permutations < 2``, a bad ``exact``, or ``exact=True`` with more than 1,000,000
        permutations.

    Notes
    -----
    Without moderators, :math:`y_i` are multiplied by random signs (all :math:`2^k` sign
    vectors when exact); with moderators, the rows of the model matrix are permuted against
    :math:`(y_i, v_i)` (all :math:`k!/\prod_g n_g!` distinct orderings when exact, :math:`n_g`
    the sizes of groups of identical rows). Each permutation is refitted with the model's
    estimator, test, weights and control; refits that fail are dropped (metafor's
    ``na.rm``). With :math:`t_j` the observed z / t statistic and :math:`t^*_{jb}` the
    permuted ones, :math:`p_j = \#\{b: |t^*_{jb}| \ge |t_j| - \epsilon\} / B` and
    :math:`p_{QM} = \#\{b: QM^*_b \ge QM - \epsilon\} / B` with
    :math:`\epsilon = \sqrt{\text{machine eps}}` (metafor's ``comptol``). Validated against
    metafor 3.8 ``permutest(..., exact = TRUE)`` (``tests/reference/metafor/permutest.csv``).

    References
    ----------
    Follmann DA, Proschan MA (1999). Valid inference in random effects meta-analysis.
    *Biometrics* 55:732-737. https://doi.org/10.1111/j.0006-341X.1999.00732.x

    Higgins JPT, Thompson SG (2004). Controlling the risk of spurious findings from
    meta-regression. *Statistics in Medicine* 23:1663-1682. https://doi.org/10.1002/sim.1752

    Examples
    --------
    >>> from imrstats import meta
    >>> res = meta.pool(yi=[0.42, 0.10, 0.65, 0.28, 0.05], vi=[0.02, 0.03, 0.05, 0.01, 0.04])
    >>> perm = res.permutation_test()
    >>> perm.exact, perm.n_permutations
    (True, 32)
    >>> float(perm.to_frame()["p_value"].iloc[0])
    0.0625
    """
    if isinstance(n_permutations, bool) or int(n_permutations) != n_permutations:
        raise ValueError(f"n_permutations must be an integer >= 2, got {n_permutations!r}")
    n_permutations = int(n_permutations)
    if n_permutations < 2:
        raise ValueError(f"n_permutations must be >= 2, got {n_permutations}")
    if exact not in ("auto", True, False):
        raise ValueError(f"exact must be 'auto', True or False, got {exact!r}")
    y, v, X = res.yi, res.vi, res.X
    k, p = X.shape
    n_exact = count_permutations(X)
    use_exact = exact is True or (exact == "auto" and n_exact <= n_permutations)
    if exact is True and n_exact > MAX_EXACT:
        raise ValueError(
            f"an exact test needs {n_exact} permutations (more than {MAX_EXACT:,}); "
            "use exact='auto' or False with n_permutations"
        )

    def refit(yp: np.ndarray, Xp: np.ndarray) -> tuple[np.ndarray, float]:
        try:
            f = fit_model(yp, v, Xp, method=res.method, test=res.test, level=res.level,
                          weights=res.user_weights, control=res.control)  # fmt: skip
        except (DataError, ValueError, np.linalg.LinAlgError, ArithmeticError):
            return np.full(p, math.nan), math.nan
        return f.statistic, f.QM

    if p == 1:
        if use_exact:
            bits = (np.arange(n_exact)[:, None] >> np.arange(k)[None, :]) & 1
        else:
            bits = np.random.default_rng(rng).integers(0, 2, size=(n_permutations, k))
            bits[0] = 0  # the observed data
        designs: Any = ((y * (1 - 2 * b), X) for b in bits)
        n_perm = len(bits)
    else:
        rows, codes = np.unique(X, axis=0, return_inverse=True)
        codes = codes.ravel()
        if use_exact:
            designs = ((y, rows[lab]) for lab in _multiset_permutations(codes))
            n_perm = n_exact
        else:
            idx = np.random.default_rng(rng).permuted(
                np.tile(np.arange(k), (n_permutations, 1)), axis=1
            )
            idx[0] = np.arange(k)
            designs = ((y, X[i]) for i in idx)
            n_perm = n_permutations

    stats_perm = np.full((n_perm, p), math.nan)
    qm_perm = np.full(n_perm, math.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ImrstatsWarning)  # as metafor's suppressWarnings
        with np.errstate(all="ignore"):
            for b, (yp, Xp) in enumerate(designs):
                stats_perm[b], qm_perm[b] = refit(yp, Xp)

    f = res.fit
    with np.errstate(invalid="ignore"):
        hits = np.abs(stats_perm) >= np.abs(f.statistic)[None, :] - COMPTOL
        ok = ~np.isnan(stats_perm)
        pvals = np.minimum(1.0, (hits & ok).sum(axis=0) / ok.sum(axis=0))
        okq = ~np.isnan(qm_perm)
        QM_p = float(((qm_perm >= f.QM - COMPTOL) & okq).sum() / okq.sum())
    notes = []
    failed = int((~okq).sum())
    if failed:
        notes.append(f"{failed} permutation refits failed and were left out (as metafor)")
    res_frame = res.to_frame()
    frame = tidy_frame({**{c: res_frame[c].to_numpy() for c in res_frame.columns},
                        "p_value": pvals, "p_value_model": f.p_value})  # fmt: skip
    kind = "exact" if use_exact else "random"
    what = "sign flips" if p == 1 else "permutations of the moderator rows"
    return PermutationResult(
        title=f"Permutation test ({kind}; {n_perm} {what}; metafor permutest)",
        frame=frame,
        level=res.level,
        notes=tuple(notes),
        QM=float(f.QM),
        QM_p=QM_p,
        n_permutations=int(n_perm),
        exact=bool(use_exact),
        permuted_statistics=stats_perm,
        permuted_QM=qm_perm,
    )
