"""``imrstats.meta.subgroups``: subgroup meta-analysis with tests of subgroup differences."""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from imrstats._errors import DataError
from imrstats.meta._pool import _column, pool
from imrstats.meta._result import MetaResult
from imrstats.meta._tables import DiagnosticTable, quiet, tidy_frame
from imrstats.meta._tau2 import FIXED_METHODS
from imrstats.meta._wls import wls

__all__ = ["SubgroupResult", "subgroups"]


@dataclass(frozen=True, repr=False, eq=False)
class SubgroupResult(DiagnosticTable):
    """Result of :func:`subgroups`.

    Attributes
    ----------
    groups : tuple of str
        Subgroup names in order (categories of a categorical column, else first appearance).
    results : dict of str to MetaResult
        The model fitted within each subgroup.
    Q_between, Q_between_df, Q_between_p : float, int, float
        Test of subgroup differences as RevMan: Cochran's Q of a fixed-effect meta-analysis of
        the subgroup estimates with their standard errors (chi-square, G - 1 df).
    I2_between : float
        ``max(0, 100 (Q_between - df) / Q_between)`` (%), as RevMan reports.
    moderator : MetaResult or None
        The (mixed-effects) meta-regression on the subgroup indicator (one tau^2 common to all
        subgroups); its ``QM`` / ``QM_df`` / ``QM_p`` are the omnibus test of subgroup
        differences (chi-square, or F for t/knha tests). ``None`` with a single subgroup.
    """

    groups: tuple[str, ...] = ()
    results: Any = None
    Q_between: float = math.nan
    Q_between_df: int = 0
    Q_between_p: float = math.nan
    I2_between: float = math.nan
    moderator: Any = None

    def tests(self) -> pd.DataFrame:
        """Tests of subgroup differences: term, statistic, df, df2 (F tests), p_value.

        Rows ``Q_between`` (RevMan's fixed-effect test) and ``QM`` (meta-regression omnibus).
        """
        rows = [("Q_between", self.Q_between, float(self.Q_between_df), math.nan,
                 self.Q_between_p)]  # fmt: skip
        if self.moderator is not None:
            m = self.moderator
            rows.append(("QM", m.QM, m.QM_df[0], m.QM_df[1], m.QM_p))
        frame = pd.DataFrame(rows, columns=["term", "statistic", "df", "df2", "p_value"])
        return tidy_frame(frame.to_dict("list"))

    def summary(self) -> str:
        """Plain-text summary (numbers rounded for display only)."""
        lines = [super().summary(), "", "Test of subgroup differences:"]
        for r in self.tests().itertuples(index=False):
            df = f"{r.df:g}" if math.isnan(r.df2) else f"{r.df:g}, {r.df2:g}"
            lines.append(f"  {r.term}({df}) = {r.statistic:.4f}, p = {r.p_value:.4g}")
        lines.append(f"  I2 (between subgroups) = {self.I2_between:.2f} %")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        tests = "; ".join(
            f"{r.term} = {r.statistic:.4f} (df {r.df:g}), p = {r.p_value:.4g}"
            for r in self.tests().itertuples(index=False)
        )
        return super()._repr_html_()[: -len("</div>")] + f"<p>{html.escape(tests)}</p></div>"


def _group_values(raw: np.ndarray, data: pd.DataFrame | None, subgroup: Any) -> tuple[
    list[str], list[str]
]:  # fmt: skip
    series = data[subgroup] if isinstance(subgroup, str) else pd.Series(raw)
    if isinstance(series.dtype, pd.CategoricalDtype):
        order = [str(c) for c in series.cat.categories if (series == c).any()]
    else:
        order = list(dict.fromkeys(str(x) for x in series if not pd.isna(x)))
    return [str(x) if not pd.isna(x) else "" for x in series], order


def subgroups(
    data: pd.DataFrame | None = None,
    *,
    yi: Any,
    vi: Any,
    subgroup: Any,
    labels: Any = None,
    method: str = "REML",
    test: str = "z",
    level: float = 0.95,
    control: dict[str, Any] | None = None,
) -> SubgroupResult:
    r"""Subgroup meta-analysis: a model per subgroup and the tests of subgroup differences.

    Parameters
    ----------
    data : pandas.DataFrame, optional
        With ``data``, ``yi``, ``vi``, ``subgroup`` and ``labels`` may name its columns.
    yi, vi : str or array-like
        Effect sizes and sampling variances.
    subgroup : str or array-like
        Subgroup of each study (missing values are an error).
    labels : str or array-like, optional
        Study labels.
    method, test, level, control
        As :func:`pool`, for every subgroup and for the meta-regression. A subgroup of one study
        is fitted with tau^2 = 0 and a z test (as metafor), noted in ``.notes``.

    Returns
    -------
    SubgroupResult
        ``.to_frame()``: one row per subgroup with ``subgroup``, ``k``, ``estimate``,
        ``std_error``, ``statistic``, ``df``, ``p_value``, ``ci_low``, ``ci_high``, ``tau2``,
        ``I2``, ``Q``, ``Q_p``; ``.tests()``: the tests of subgroup differences.

    Raises
    ------
    imrstats.DataError
        Missing subgroup values (one problem per study), or the errors of :func:`pool`.

    Notes
    -----
    Separate tau^2 per subgroup. RevMan's test: :math:`Q_b = \sum_g w_g(\hat\theta_g -
    \bar\theta)^2`, :math:`w_g = 1/SE_g^2`, :math:`\bar\theta = \sum w_g\hat\theta_g/\sum w_g`,
    on G - 1 df. The meta-regression test ``QM`` assumes one tau^2 common to the subgroups.
    Validated against metafor 3.8 (``rma.uni(..., subset=)``, ``rma.uni(est, sei=se,
    method="FE")$QE`` and ``rma.uni(..., mods = ~ factor(g))$QM``).

    References
    ----------
    Borenstein M, Higgins JPT (2013). Meta-analysis and subgroups. *Prevention Science*
    14:134-143. https://doi.org/10.1007/s11121-013-0377-7

    Examples
    --------
    >>> from imrstats import meta
    >>> sg = meta.subgroups(yi=[0.4, 0.1, 0.6, 0.3, 0.05, 0.2],
    ...                     vi=[0.02, 0.03, 0.05, 0.01, 0.04, 0.02],
    ...                     subgroup=["a", "b", "a", "a", "b", "b"], method="DL")
    >>> sg.groups
    ('a', 'b')
    >>> sg.tests().term.tolist()
    ['Q_between', 'QM']
    """
    g_raw, g_name = _column(data, subgroup, "subgroup")
    y_raw, _ = _column(data, yi, "yi")
    if len(g_raw) != len(y_raw):
        raise DataError(
            "subgroup and yi differ in length",
            [
                {
                    "column": g_name,
                    "rule": "length_mismatch",
                    "message": f"{len(g_raw)} vs {len(y_raw)}",
                }
            ],
        )
    gvals, groups = _group_values(g_raw, data, subgroup)
    missing = [i for i, x in enumerate(gvals) if x == ""]
    if missing:
        raise DataError(
            f"subgroup is missing for {len(missing)} studies",
            [
                {
                    "row": i,
                    "column": g_name,
                    "rule": "missing_subgroup",
                    "message": "subgroup is missing",
                }
                for i in missing
            ],
        )
    full = pool(data, yi=yi, vi=vi, labels=labels, method="FE", level=level)  # validates input
    garr = np.array(gvals, dtype=object)
    notes: list[str] = []
    results: dict[str, MetaResult] = {}
    for name in groups:
        idx = np.flatnonzero(garr == name)
        lab = None if full.labels is None else [full.labels[i] for i in idx]
        m, t = method, test
        if len(idx) == 1:  # as metafor: tau2 = 0 and a z test
            m, t = (method if method in FIXED_METHODS else "FE"), "z"
            if (m, t) != (method, test):
                notes.append(f"subgroup {name!r} has one study: tau2 = 0, z test (as metafor)")
        results[name] = quiet(
            lambda idx=idx, lab=lab, m=m, t=t: pool(
                yi=full.yi[idx], vi=full.vi[idx], labels=lab, method=m, test=t, level=level,
                control=control,
            ),
            notes, f"subgroup {name!r}",
        )  # fmt: skip
    est = np.array([r.fit.beta[0] for r in results.values()])
    se = np.array([r.fit.se[0] for r in results.values()])
    G = len(groups)
    if G > 1:
        Qb = max(0.0, wls(est, np.ones((G, 1)), 1.0 / se**2).rss)
        Qb_p = float(special.chdtrc(G - 1, Qb))
        I2b = max(0.0, 100 * (Qb - (G - 1)) / Qb) if Qb > 0 else 0.0
        dummies = pd.DataFrame(
            {f"subgroup[{name}]": (garr == name).astype(float) for name in groups[1:]}
        )
        moderator = quiet(
            lambda: pool(yi=full.yi, vi=full.vi, labels=full.labels, mods=dummies,
                         method=method, test=test, level=level, control=control),
            notes, "meta-regression on the subgroups",
        )  # fmt: skip
    else:
        Qb, Qb_p, I2b, moderator = 0.0, 1.0, 0.0, None
        notes.append("a single subgroup: nothing to compare")
    rows = {
        "subgroup": list(groups),
        "k": [r.k for r in results.values()],
        "estimate": est,
        "std_error": se,
        "statistic": [r.fit.statistic[0] for r in results.values()],
        "df": [r.df for r in results.values()],
        "p_value": [r.fit.p_value[0] for r in results.values()],
        "ci_low": [r.ci_low for r in results.values()],
        "ci_high": [r.ci_high for r in results.values()],
        "tau2": [r.tau2 for r in results.values()],
        "I2": [r.I2 for r in results.values()],
        "Q": [r.Q for r in results.values()],
        "Q_p": [r.Q_p for r in results.values()],
    }
    frame = tidy_frame(rows, text=("subgroup",))
    title = f"Subgroup analysis ({G} subgroups; tau2 estimator {method}, test {test})"
    return SubgroupResult(
        title, frame, level, tuple(notes), groups=tuple(groups), results=results,
        Q_between=float(Qb), Q_between_df=G - 1, Q_between_p=Qb_p, I2_between=float(I2b),
        moderator=moderator,
    )  # fmt: skip
