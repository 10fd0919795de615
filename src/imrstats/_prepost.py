"""Single-group pre-post analysis: paired t, Wilcoxon, effect sizes, reliable change."""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from imrstats._compat import as_str
from imrstats._errors import DataError, ImrstatsWarning
from imrstats._prepost_data import extract_pairs, format_table, html_table
from imrstats._prepost_stats import (
    PairedStats,
    effect_rows,
    paired_stats,
    reliable_change,
    wilcoxon_signed_rank,
)
from imrstats._vocab import ESTIMATE_COLUMNS

__all__ = ["PrePostResult", "prepost"]

_COLUMNS = (*ESTIMATE_COLUMNS, "n", "method", "note")
_NORM_KEYS = frozenset(
    {"functional_mean", "functional_sd", "dysfunctional_mean", "dysfunctional_sd"}
)


@dataclass(frozen=True, eq=False, repr=False)
class PrePostResult:
    """Result of :func:`imrstats.prepost`.

    Attributes
    ----------
    outcome, rater, pre, post : str
        What was compared.
    by : str or None
        The grouping column (its values are the first column of every frame).
    level : float
        Confidence level of every interval.
    descriptives : pandas.DataFrame
        Per group: ``n``, ``mean_pre``, ``sd_pre``, ``mean_post``, ``sd_post``,
        ``r`` (pre-post correlation), ``mean_change``, ``sd_change``.
    excluded : pandas.DataFrame
        Participants without a complete pair: ``participant``, the ``by``
        column, ``reason``.
    pairs : pandas.DataFrame
        The complete pairs: ``participant``, the ``by`` column, ``pre``, ``post``.
    reliable_change : pandas.DataFrame or None
        With ``reliability``: per participant ``pre``, ``post``, ``change``,
        ``rci``, ``reliable_change`` (improved / unchanged / deteriorated) and,
        with ``norms``, ``criterion_a`` ... (recovered / improved / unchanged /
        deteriorated).
    reliable_change_counts : pandas.DataFrame or None
        Counts per group, ``criterion`` (``"rci"``, ``"a"``, ``"b"``, ``"c"``),
        ``category`` and ``count``.
    reliable_change_constants : pandas.DataFrame or None
        Per group: ``reliability``, ``sd``, ``se_measurement``, ``s_diff``,
        ``critical``, ``reliable_change_points`` and the cut-offs.
    notes : tuple of str
        Why a value is undefined, and other caveats.
    """

    outcome: str
    rater: str
    pre: str
    post: str
    by: str | None
    level: float
    table: pd.DataFrame
    descriptives: pd.DataFrame
    excluded: pd.DataFrame
    pairs: pd.DataFrame
    reliable_change: pd.DataFrame | None = None
    reliable_change_counts: pd.DataFrame | None = None
    reliable_change_constants: pd.DataFrame | None = None
    notes: tuple[str, ...] = field(default=())

    def to_frame(self) -> pd.DataFrame:
        """Every estimate, one row per group and term, at full precision.

        Columns: the ``by`` column (when given), ``term``, ``estimate``,
        ``std_error``, ``statistic``, ``df``, ``p_value``, ``ci_low``,
        ``ci_high``, ``n``, ``method``, ``note``. Terms: ``mean_pre``,
        ``mean_post``, ``mean_change`` (paired t), ``wilcoxon`` (statistic =
        V; no estimate), ``d_z``, ``g_z``, ``d_av``, ``g_av``, ``d_rm``,
        ``becker_g``. The level is in ``.attrs["level"]``.
        """
        out = self.table.copy()
        out.attrs["level"] = self.level
        return out

    def _title(self) -> str:
        return f"Pre-post: {self.outcome} ({self.rater}), {self.pre} -> {self.post}"

    def _lines(self) -> list[str]:
        lines = []
        n = int(self.descriptives["n"].sum())
        lines.append(
            f"{n} complete pairs; {len(self.excluded)} participants excluded (incomplete)."
        )
        if self.reliable_change_counts is not None:
            counts = self.reliable_change_counts
            rci = counts[counts["criterion"] == "rci"]
            for key, grp in (
                rci.groupby(self.by, observed=True, sort=False) if self.by else [(None, rci)]
            ):
                text = ", ".join(
                    f"{c} {k}" for c, k in zip(grp["category"], grp["count"], strict=True)
                )
                prefix = f"{key}: " if key is not None else ""
                lines.append(f"Reliable change: {prefix}{text}.")
        lines.extend(self.notes)
        return lines

    def _display_columns(self) -> list[str]:
        return ([self.by] if self.by else []) + [*ESTIMATE_COLUMNS, "n"]

    def summary(self) -> str:
        """Plain-text report: counts, notes and the estimates (rounded for display)."""
        cols = self._display_columns()
        return "\n".join(
            [self._title(), *self._lines(), "", format_table(self.table, self.level, cols)]
        )

    def __repr__(self) -> str:
        n = int(self.descriptives["n"].sum())
        return (
            f"<PrePostResult {self.outcome} ({self.rater}) {self.pre} -> {self.post}: "
            f"{n} pairs, {len(self.excluded)} excluded>"
        )

    def _repr_html_(self) -> str:
        cols = self._display_columns()
        return html_table(self._title(), self._lines(), self.table, self.level, cols)

    def plot(self, ax: Any = None, *, kind: Literal["means", "rci"] = "means") -> Any:
        """Pre and post means with CIs per group (``kind="means"``), or the RCI scatter.

        ``kind="rci"`` draws post against pre with the identity line and the
        reliable-change band (± critical x S_diff around it); it needs
        ``reliability``. Returns the matplotlib Axes.
        """
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots()
        if kind == "means":
            t = self.table
            groups = list(self.descriptives[self.by]) if self.by else [None]
            for i, g in enumerate(groups):
                sel = t if g is None else t[(t[self.by] == g).to_numpy()]
                rows = sel.set_index("term").loc[["mean_pre", "mean_post"]]
                x = np.array([0.0, 1.0]) + 0.04 * (i - (len(groups) - 1) / 2)
                est = rows["estimate"].to_numpy()
                err = np.vstack([est - rows["ci_low"].to_numpy(), rows["ci_high"].to_numpy() - est])
                ax.errorbar(
                    x,
                    est,
                    yerr=err,
                    marker="o",
                    capsize=4,
                    label=self.outcome if g is None else str(g),
                )
            ax.set_xticks([0, 1], [self.pre, self.post])
            ax.set_ylabel(f"{self.outcome} ({self.rater}), mean with {100 * self.level:g}% CI")
            if self.by:
                ax.legend(title=self.by)
        elif kind == "rci":
            if self.reliable_change is None or self.reliable_change_constants is None:
                raise ValueError("kind='rci' needs prepost(..., reliability=...)")
            rc = self.reliable_change
            colors = {"improved": "tab:green", "unchanged": "tab:gray", "deteriorated": "tab:red"}
            for cat, color in colors.items():
                sel = rc[(rc["reliable_change"] == cat).to_numpy()]
                ax.scatter(sel["pre"], sel["post"], color=color, label=cat, s=18)
            lo = float(np.nanmin(rc[["pre", "post"]].to_numpy()))
            hi = float(np.nanmax(rc[["pre", "post"]].to_numpy()))
            grid = np.array([lo, hi])
            band = float(self.reliable_change_constants["reliable_change_points"].max())
            ax.plot(grid, grid, color="black", linewidth=1)
            ax.fill_between(
                grid, grid - band, grid + band, color="gray", alpha=0.2, label="no reliable change"
            )
            ax.set_xlabel(f"{self.outcome} at {self.pre}")
            ax.set_ylabel(f"{self.outcome} at {self.post}")
            ax.legend()
        else:
            raise ValueError(f"kind must be 'means' or 'rci', got {kind!r}")
        return ax


def _group_rows(
    s: PairedStats,
    pre: np.ndarray,
    post: np.ndarray,
    *,
    level: float,
    exact: bool | None,
    correct: bool,
    ci: str,
) -> tuple[list[dict[str, Any]], list[str]]:
    n = s.n
    notes: list[str] = []
    rows: list[dict[str, Any]] = []
    q = float(stats.t.ppf(0.5 + level / 2, n - 1))
    for term, mean, sd in (
        ("mean_pre", s.mean_pre, s.sd_pre),
        ("mean_post", s.mean_post, s.sd_post),
    ):
        se = sd / math.sqrt(n)
        rows.append(
            {
                "term": term,
                "estimate": mean,
                "std_error": se,
                "df": float(n - 1),
                "ci_low": mean - q * se,
                "ci_high": mean + q * se,
                "method": "mean with t interval",
                "note": "",
            }
        )
    if s.sd_change > 0:
        res = stats.ttest_rel(post, pre)
        cint = res.confidence_interval(level)
        rows.append(
            {
                "term": "mean_change",
                "estimate": s.mean_change,
                "std_error": s.sd_change / math.sqrt(n),
                "statistic": float(res.statistic),
                "df": float(res.df),
                "p_value": float(res.pvalue),
                "ci_low": float(cint.low),
                "ci_high": float(cint.high),
                "method": "paired t (R t.test paired = TRUE)",
                "note": "",
            }
        )
    else:
        why = "t undefined: SD of change is zero (every participant changed by the same amount)"
        notes.append(why)
        rows.append(
            {
                "term": "mean_change",
                "estimate": s.mean_change,
                "std_error": 0.0,
                "df": float(n - 1),
                "ci_low": s.mean_change,
                "ci_high": s.mean_change,
                "method": "paired t (R t.test paired = TRUE)",
                "note": why,
            }
        )
    w = wilcoxon_signed_rank(post - pre, exact=exact, correct=correct)
    rows.append(
        {
            "term": "wilcoxon",
            "statistic": w.statistic,
            "p_value": w.p_value,
            "method": f"{w.method} (statistic = V, R wilcox.test)",
            "note": w.note,
        }
    )
    if w.note.startswith("undefined"):
        notes.append(f"Wilcoxon {w.note}")
    for es in effect_rows(s, level=level, ci=ci):
        rows.append(dict(es))
        if str(es["note"]).startswith("undefined"):
            notes.append(f"{es['term']} {es['note']}")
    for r in rows:
        r["n"] = n
    return rows, notes


def prepost(
    data: pd.DataFrame,
    outcome: str,
    *,
    pre: str | None = None,
    post: str | None = None,
    rater: str | None = None,
    by: str | None = None,
    reliability: float | None = None,
    norms: Mapping[str, float] | None = None,
    better: Literal["higher", "lower"] = "higher",
    level: float = 0.95,
    exact: bool | None = None,
    correct: bool = True,
    ci: Literal["paired", "independent"] = "paired",
) -> PrePostResult:
    r"""Single-group pre-post analysis of one outcome, the way reviewers check it.

    Complete pairs only (participants missing either occasion are listed in
    ``.excluded``); paired t as R ``t.test(post, pre, paired = TRUE)``;
    Wilcoxon signed-rank as R ``wilcox.test(post, pre, paired = TRUE)``;
    the effect sizes d_z, g_z, d_av, g_av, d_rm and Becker's g each under its
    own name (see :func:`imrstats.prepost_effect_sizes` for the formulas);
    the Jacobson-Truax reliable change index when ``reliability`` is given.

    Parameters
    ----------
    data : pandas.DataFrame
        Tidy trial frame (checked with :func:`imrstats.validate_tidy`).
    outcome : str
        The ``measure`` to analyse (e.g. ``"imrs"``).
    pre : str, optional
        Occasion label of the first measurement. Default: the first occasion.
    post : str, optional
        Occasion label of the second measurement; may be left out when the data have exactly
        two occasions (the second is then the post-test).
    rater : str, optional
        Required when the measure has more than one rater.
    by : str, optional
        A participant-level column (``"arm"``, ``"site"``) to analyse per group.
    reliability : float, optional
        Test-retest reliability of the outcome for the reliable change index
        (e.g. 0.79 for the client IMRS, 0.86 for the clinician IMRS: Dutch
        IMRS, 2-week test-retest). No default: without it, no RCI.
    norms : mapping, optional
        ``functional_mean``, ``functional_sd`` (a functional population) and
        optionally ``dysfunctional_mean``, ``dysfunctional_sd`` (default: this
        sample's pre mean and SD). Cut-off a needs the dysfunctional norms,
        b the functional, c both. Needs ``reliability``.
    better : {"higher", "lower"}, default "higher"
        Direction of improvement (higher is better for the IMRS and GAF).
    level : float, default 0.95
        Confidence level; also sets the RCI critical value (1.96 at 0.95).
    exact : bool, optional
        Wilcoxon: None chooses as R does (exact when fewer than 50 non-zero
        changes and no ties or zeros); True/False force it (ties or zeros
        still fall back to the normal approximation, with a warning).
    correct : bool, default True
        Wilcoxon continuity correction in the normal approximation.
    ci : {"paired", "independent"}, default "paired"
        Standard error of d_av and g_av (see :func:`prepost_effect_sizes`).

    Returns
    -------
    PrePostResult
        ``.to_frame()`` has columns ``term``, ``estimate``, ``std_error``,
        ``statistic``, ``df``, ``p_value``, ``ci_low``, ``ci_high``, ``n``,
        ``method``, ``note`` (plus the ``by`` column first). Terms:
        ``mean_pre``, ``mean_post`` (mean, SE, t interval), ``mean_change``
        (paired t), ``wilcoxon`` (statistic V, p value), ``d_z``, ``g_z``,
        ``d_av``, ``g_av``, ``d_rm``, ``becker_g``.

    Raises
    ------
    imrstats.DataError
        Unknown outcome/rater/occasion, ambiguous rater, or a group with fewer
        than 2 complete pairs (rule ``too_few_pairs``).

    Warns
    -----
    imrstats.ImrstatsWarning
        When a statistic is undefined (zero SD of change, all values
        identical); the row's ``note`` says why.

    Notes
    -----
    Paired t: :math:`t = \bar D / (s_D/\sqrt n)`, df = n - 1. Wilcoxon: V =
    sum of the ranks of ``|D|`` over positive D, zeros dropped. Reliable change
    (Jacobson & Truax 1991): :math:`RCI = (x_{post} - x_{pre}) / S_{diff}`,
    :math:`S_{diff} = \sqrt 2\, s_{pre}\sqrt{1 - r_{xx}}` with the pre SD of
    the complete pairs of each group; ``|RCI| > z`` (1.96) is reliable change.
    Clinical cut-offs: a = dysfunctional mean + 2 SD (towards better), b =
    functional mean - 2 SD, c = (s_d m_f + s_f m_d)/(s_d + s_f); "recovered"
    = reliably improved and beyond the cut-off.

    References
    ----------
    Jacobson NS, Truax P (1991). Clinical significance: a statistical approach
    to defining meaningful change in psychotherapy research. *J Consult Clin
    Psychol* 59(1):12-19. doi:10.1037/0022-006X.59.1.12

    Lakens D (2013). Calculating and reporting effect sizes to facilitate
    cumulative science. *Front Psychol* 4:863. doi:10.3389/fpsyg.2013.00863

    Examples
    --------
    >>> import pandas as pd, imrstats
    >>> df = pd.DataFrame({
    ...     "participant": [f"p{i}" for i in range(6) for _ in range(2)],
    ...     "arm": "IMR", "occasion": ["baseline", "9m"] * 6, "time": [0, 9] * 6,
    ...     "measure": "imrs", "value": [50, 54, 47, 49, 55, 61, 52, 52, 44, 53, 58, 57]})
    >>> res = imrstats.prepost(df, "imrs", post="9m", reliability=0.79)
    >>> print(round(float(res.to_frame().set_index("term").loc["mean_change", "estimate"]), 2))
    3.33
    >>> res.reliable_change["reliable_change"].tolist()
    ['unchanged', 'unchanged', 'unchanged', 'unchanged', 'improved', 'unchanged']
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, got {level!r}")
    if better not in ("higher", "lower"):
        raise ValueError(f"better must be 'higher' or 'lower', got {better!r}")
    if reliability is not None and not 0 <= reliability < 1:
        raise ValueError(f"reliability must be in [0, 1), got {reliability!r}")
    if norms is not None:
        if reliability is None:
            raise ValueError(
                "norms= needs reliability= (clinical significance needs reliable change)"
            )
        unknown = set(norms) - _NORM_KEYS
        if unknown:
            raise ValueError(f"unknown keys in norms: {sorted(unknown)}; use {sorted(_NORM_KEYS)}")
    keep = (by,) if by else ()
    got = extract_pairs(data, outcome, pre=pre, post=post, rater=rater, keep=keep)
    pairs = got.pairs
    groups = _groups(pairs, by)
    problems = [
        {
            "participant": None,
            "column": by or "participant",
            "value": None if g is None else str(g),
            "rule": "too_few_pairs",
            "message": f"{len(idx)} complete pair(s) of {outcome} at {got.pre} and {got.post}"
            + ("" if g is None else f" in {by} {g}")
            + "; at least 2 are needed",
        }
        for g, idx in groups
        if len(idx) < 2
    ]
    if problems:
        raise DataError("too few complete pre-post pairs", problems)

    rows: list[dict[str, Any]] = []
    desc: list[dict[str, Any]] = []
    notes: list[str] = []
    rc_frames, rc_consts = [], []
    for g, idx in groups:
        sub = pairs.loc[idx]
        x, y = sub["pre"].to_numpy(), sub["post"].to_numpy()
        s = paired_stats(x, y)
        grows, gnotes = _group_rows(s, x, y, level=level, exact=exact, correct=correct, ci=ci)
        prefix = "" if g is None else f"{by} {g}: "
        notes.extend(prefix + m for m in dict.fromkeys(gnotes))
        for r in grows:
            rows.append(({by: g} if by else {}) | r)
        desc.append(
            ({by: g} if by else {})
            | {
                "n": s.n,
                "mean_pre": s.mean_pre,
                "sd_pre": s.sd_pre,
                "mean_post": s.mean_post,
                "sd_post": s.sd_post,
                "r": s.r,
                "mean_change": s.mean_change,
                "sd_change": s.sd_change,
            }
        )
        if reliability is not None:
            dys = None
            if norms is not None:
                dys = (
                    norms.get("dysfunctional_mean", s.mean_pre),
                    norms.get("dysfunctional_sd", s.sd_pre),
                )
            if not s.sd_pre > 0:
                notes.append(prefix + "reliable change index undefined: the pre SD is zero")
            frame, consts = reliable_change(
                x,
                y,
                reliability=reliability,
                sd=s.sd_pre,
                better=better,
                level=level,
                norms=norms,
                dysfunctional=dys,
            )
            frame.insert(0, "participant", sub["participant"].to_numpy())
            if by:
                frame.insert(0, by, sub[by].to_numpy())
            rc_frames.append(frame)
            rc_consts.append(({by: g} if by else {}) | consts)
    if notes:
        warnings.warn("; ".join(notes), ImrstatsWarning, stacklevel=2)
    if got.excluded.shape[0] and any(
        got.excluded["reason"].str.contains(f"at {got.post}", regex=False)
    ):
        notes.append(
            f"Completers only: {len(got.excluded)} participant(s) without both {got.pre} and "
            f"{got.post} are excluded; the estimates assume they are missing completely at random."
        )
    table = _tidy_table(rows, by, pairs)
    descriptives = pd.DataFrame(desc)
    rc = rc_counts = rc_const = None
    if rc_frames:
        rc = pd.concat(rc_frames, ignore_index=True)
        rc_const = pd.DataFrame(rc_consts)
        rc_counts = _count_categories(rc, by)
    return PrePostResult(
        outcome=outcome,
        rater=got.rater,
        pre=got.pre,
        post=got.post,
        by=by,
        level=level,
        table=table,
        descriptives=descriptives,
        excluded=got.excluded,
        pairs=pairs,
        reliable_change=rc,
        reliable_change_counts=rc_counts,
        reliable_change_constants=rc_const,
        notes=tuple(notes),
    )


def _groups(pairs: pd.DataFrame, by: str | None) -> list[tuple[Any, np.ndarray]]:
    if by is None:
        return [(None, pairs.index.to_numpy())]
    col = pairs[by]
    if isinstance(col.dtype, pd.CategoricalDtype):
        levels = [c for c in col.cat.categories if (col == c).any()]
    else:
        levels = list(pd.unique(col.dropna()))
    if col.isna().any():
        raise DataError(
            f"by column {by!r} is missing for some participants",
            [
                {
                    "participant": p,
                    "column": by,
                    "rule": "missing_group",
                    "message": f"{by} is missing",
                }
                for p in pairs.loc[col.isna().to_numpy(), "participant"]
            ],
        )
    return [(g, pairs.index[(col == g).to_numpy()].to_numpy()) for g in levels]


def _tidy_table(rows: list[dict[str, Any]], by: str | None, pairs: pd.DataFrame) -> pd.DataFrame:
    cols = ([by] if by else []) + list(_COLUMNS)
    table = pd.DataFrame.from_records(rows)
    for c in cols:
        if c not in table.columns:
            table[c] = np.nan
    table = table[cols]
    for c in ("estimate", "std_error", "statistic", "df", "p_value", "ci_low", "ci_high"):
        table[c] = table[c].astype(np.float64)
    table["n"] = table["n"].astype(np.int64)
    for c in ("term", "method", "note"):
        table[c] = as_str(table[c].fillna(""))
    if by and isinstance(pairs[by].dtype, pd.CategoricalDtype):
        table[by] = pd.Categorical(table[by], categories=pairs[by].cat.categories)
    return table


def _count_categories(rc: pd.DataFrame, by: str | None) -> pd.DataFrame:
    out = []
    crits = ["rci"] + [
        c.removeprefix("criterion_") for c in rc.columns if c.startswith("criterion_")
    ]
    groups = rc.groupby(by, observed=True, sort=False) if by else [(None, rc)]
    for g, sub in groups:
        for crit in crits:
            col = "reliable_change" if crit == "rci" else f"criterion_{crit}"
            cats = ["improved", "unchanged", "deteriorated"]
            if crit != "rci":
                cats = ["recovered", *cats]
            counts = sub[col].value_counts()
            for cat in cats:
                out.append(
                    ({by: g} if by else {})
                    | {"criterion": crit, "category": cat, "count": int(counts.get(cat, 0))}
                )
    frame = pd.DataFrame(out)
    frame["criterion"] = as_str(frame["criterion"])
    frame["category"] = as_str(frame["category"])
    return frame
