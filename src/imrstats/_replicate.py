"""``imrstats.replicate("mcguire2014")``: rebuild a published review from the bundled data.

Only what the bundled published data hold is used. Where a number the analysis needs was not
reported (per-arm n, SE or CI of an effect), the row says "not reported" and is left out of
the pool with the reason; nothing is filled in.
"""

from __future__ import annotations

import html
import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from imrstats import datasets
from imrstats._compat import STR_DTYPE
from imrstats._html import CSS, notes_html, table_html
from imrstats.review import NOT_REPORTED, study_table

__all__ = ["Replication", "replicate"]

AVAILABLE: tuple[str, ...] = ("mcguire2014",)

ETA2_FORMULA = "d = 2 * sqrt(eta2 / (1 - eta2))"
_CONVERTED = f"converted from η² (formula {ETA2_FORMULA}; Cohen 1988, two equal groups)"
_AS_REPORTED = "as reported (Cohen's d)"
_NS = "not reported (NS; McGuire listed only p < .05 effects)"
_WHICH = ("client", "clinician")


def d_from_eta2_equal(eta2: float | np.ndarray) -> float | np.ndarray:
    r"""Cohen's d of two equal groups from eta squared, :math:`d = 2\sqrt{\eta^2/(1-\eta^2)}`.

    Cohen's f is :math:`\sqrt{\eta^2/(1-\eta^2)}` and for two equal groups :math:`d = 2f`
    (Cohen 1988, sect. 8.2). No sample size is needed; with known group sizes use
    :func:`imrstats.meta.d_from_eta2`, which is exact for a one-way two-group ANOVA.

    References
    ----------
    Cohen J (1988). Statistical Power Analysis for the Behavioral Sciences, 2nd ed.
    Lawrence Erlbaum. doi:10.4324/9780203771587

    Examples
    --------
    >>> round(float(d_from_eta2_equal(0.2)), 6)
    1.0
    """
    e = np.asarray(eta2, dtype="float64")
    out = 2.0 * np.sqrt(e / (1.0 - e))
    return float(out) if out.ndim == 0 else out


@dataclass(frozen=True, eq=False)
class Replication:
    """A published analysis rebuilt from the bundled data (see :func:`imrstats.replicate`).

    Attributes
    ----------
    name : str
        The replication's name (``"mcguire2014"``).
    title : str
        The publication replicated.
    study_table : pandas.DataFrame
        The studies (columns of :func:`imrstats.review.study_table`).
    effects : pandas.DataFrame
        One row per study x outcome; see :func:`imrstats.replicate` for the columns.
    pooled : dict
        ``"client"`` / ``"clinician"`` -> :class:`imrstats.meta.MetaResult`, or None when no
        pool could be computed (the reason is in ``pool_reasons``).
    pool_reasons : dict
        ``"client"`` / ``"clinician"`` -> why there is no pool, or what the pool assumes.
    left_out : pandas.DataFrame
        Forest rows not pooled: ``which``, ``study_id``, ``reason``.
    notes : tuple of str
        What was converted, what is missing, and the caveats.
    """

    name: str
    title: str
    study_table: pd.DataFrame = field(repr=False)
    effects: pd.DataFrame = field(repr=False)
    pooled: dict[str, Any] = field(repr=False)
    pool_reasons: dict[str, str] = field(repr=False)
    left_out: pd.DataFrame = field(repr=False)
    notes: tuple[str, ...] = ()

    def to_frame(self) -> pd.DataFrame:
        """The effect-size table (a copy of ``.effects``)."""
        return self.effects.copy()

    def forest_rows(self, which: str) -> pd.DataFrame:
        """The rows of one forest plot (``which``: ``"client"`` or ``"clinician"`` IMRS total)."""
        if which not in _WHICH:
            raise ValueError(f"which={which!r}: choose 'client' or 'clinician'")
        rows = self.effects[self.effects["forest"].eq(which)]
        return rows.reset_index(drop=True)

    def summary(self) -> str:
        """Plain text: studies, effects, pools and notes."""
        cols = ["study_id", "outcome", "rater_type", "reported", "d", "d_basis", "variance_basis"]
        with pd.option_context("display.width", 220, "display.max_colwidth", 60):
            lines = [
                f"Replication: {self.title}",
                "",
                "Studies:",
                self.study_table[["study_id", "design", "country", "n", "comparator"]].to_string(
                    index=False
                ),
                "",
                "Effects (d scale):",
                self.effects[cols].to_string(index=False),
                "",
            ]
        for which in _WHICH:
            res = self.pooled.get(which)
            if res is None:
                lines.append(f"Pooled {which} IMRS: none. {self.pool_reasons[which]}")
            else:
                lines.append(
                    f"Pooled {which} IMRS: d = {res.estimate:.3f} "
                    f"[{res.ci_low:.3f}, {res.ci_high:.3f}], k = {res.k}, tau2 = {res.tau2:.3f}. "
                    f"{self.pool_reasons[which]}"
                )
        lines.append("")
        lines.extend(f"note: {n}" for n in self.notes)
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<Replication {self.name!r}: {len(self.effects)} effects, {len(self.study_table)} studies>"

    def _repr_html_(self) -> str:
        pools = []
        for which in _WHICH:
            res = self.pooled.get(which)
            text = (
                f"Pooled {which} IMRS: none. {self.pool_reasons[which]}"
                if res is None
                else f"Pooled {which} IMRS: d = {res.estimate:.3f} [{res.ci_low:.3f}, "
                f"{res.ci_high:.3f}], k = {res.k}. {self.pool_reasons[which]}"
            )
            pools.append(f"<p>{html.escape(text)}</p>")
        cols = ["study_id", "outcome", "rater_type", "reported", "d", "d_basis", "variance_basis"]
        return (
            f'<div class="imr-block"><style>{CSS}</style>'
            f"<h3>{html.escape(self.title)}</h3>"
            + table_html(self.study_table[["study_id", "design", "country", "n", "n_text",
                                           "comparator", "timepoints"]],
                         caption="Studies", missing=NOT_REPORTED)
            + table_html(self.effects[cols], caption="Effect sizes (d scale)",
                         missing=NOT_REPORTED)
            + "".join(pools)
            + notes_html(self.notes)
            + "</div>"
        )  # fmt: skip

    def plot(self, which: str = "client", ax: Any = None) -> Any:
        """Forest plot of the RCT effects on the client or clinician IMRS total.

        Effects with a variance get a 95% CI; effects without one are drawn as points with
        "CI not reported"; NS rows without a value are listed as "not reported". The pooled
        estimate (when there is one) is a diamond. Returns the Axes.
        """
        from imrstats._replicate_plot import forest

        return forest(self, which, ax)


def _rater_of(outcome: str, rater_type: Any) -> str | None:
    """Which IMRS forest a McGuire row belongs to (IMRS totals only)."""
    if outcome == "illness self-management (IMRS client)":
        return "client"
    if outcome == "illness self-management (total)" and rater_type in _WHICH:
        return str(rater_type)
    return None


def _effects(assume_equal_arms: bool, n_total: dict[str, Any]) -> pd.DataFrame:
    raw = datasets.mcguire2014_effects()
    rows = []
    for rec in raw.itertuples(index=False):
        metric = None if pd.isna(rec.effect_metric) else str(rec.effect_metric)
        value, low, high = rec.effect_value, rec.effect_range_low, rec.effect_range_high
        d = d_lo = d_hi = math.nan
        if metric == "d":
            d, basis = float(value), _AS_REPORTED
        elif metric == "eta2":
            basis = _CONVERTED
            if pd.notna(value):
                d = float(d_from_eta2_equal(value))
            else:
                d_lo, d_hi = float(d_from_eta2_equal(low)), float(d_from_eta2_equal(high))
        else:
            basis = _NS
        if metric is None:
            reported = "NS"
        elif pd.notna(value):
            reported = f"{'η²' if metric == 'eta2' else 'd'} = {value:g}"
        else:
            reported = f"{'η²' if metric == 'eta2' else 'd'} = {low:g} to {high:g}"
        n = n_total.get(rec.study_id)
        var, vbasis = math.nan, "not reported (per-arm n, SE and CI not reported)"
        if math.isnan(d):
            vbasis = "not reported (no effect value)"
        elif assume_equal_arms and n is not None and not pd.isna(n):
            n = int(n)
            var = 4.0 / n + d * d / (2.0 * n)
            vbasis = (f"assumed: equal arms of the total N = {n}, var = 4/N + d^2/(2N) "
                      "(a lower bound: unequal arms give a larger variance)")  # fmt: skip
        rows.append({
            "study": rec.study, "study_id": rec.study_id, "outcome": rec.outcome,
            "rater": rec.rater, "rater_type": None if pd.isna(rec.rater_type) else str(rec.rater_type),
            "timepoint": rec.timepoint, "reported_metric": metric,
            "reported_value": value, "reported": reported,
            "d": d, "d_range_low": d_lo, "d_range_high": d_hi, "d_basis": basis,
            "n_total": n, "n_per_arm": NOT_REPORTED, "variance": var, "variance_basis": vbasis,
            "significant": rec.significant,
            "forest": _rater_of(rec.outcome, None if pd.isna(rec.rater_type) else str(rec.rater_type)),
            "source_row": rec.source_row,
        })  # fmt: skip
    frame = pd.DataFrame(rows)
    for col in ("study", "study_id", "outcome", "rater", "rater_type", "timepoint",
                "reported_metric", "reported", "d_basis", "n_per_arm", "variance_basis",
                "forest"):  # fmt: skip
        frame[col] = frame[col].astype(STR_DTYPE)
    frame["n_total"] = frame["n_total"].astype("Int64")
    frame["significant"] = frame["significant"].astype("boolean")
    return frame


def _pools(effects: pd.DataFrame) -> tuple[dict[str, Any], dict[str, str], pd.DataFrame]:
    from imrstats.meta import pool

    pooled: dict[str, Any] = {}
    reasons: dict[str, str] = {}
    left = []
    for which in _WHICH:
        rows = effects[effects["forest"].eq(which)]
        usable = rows["d"].notna() & rows["variance"].notna()
        for rec in rows[~usable].itertuples(index=False):
            reason = (
                "effect value not reported (NS)"
                if math.isnan(rec.d)
                else "variance not reported (per-arm n, SE and CI not reported)"
            )
            left.append({"which": which, "study_id": rec.study_id, "reason": reason})
        use = rows[usable]
        if len(use) < 2:
            reasons[which] = (
                f"{len(use)} of {len(rows)} studies have an effect with a variance (per-arm n, "
                "SE or CI not reported); a pool needs at least 2. Pass "
                "assume_equal_arms=True for a sensitivity pool that assumes equal arms."
            )
            pooled[which] = None
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            pooled[which] = pool(use, yi="d", vi="variance", labels="study_id", method="REML")
        reasons[which] = (
            f"Sensitivity pool (REML) of {len(use)} studies under assumed equal arms; the NS "
            "studies (no value reported) are left out, so the pool overstates the effect."
        )
    frame = pd.DataFrame(left, columns=["which", "study_id", "reason"]).astype(STR_DTYPE)
    return pooled, reasons, frame


_NOTES = (
    f"η² (Färdig 2011) is converted to d with {ETA2_FORMULA} (Cohen's f = sqrt(eta2 / "
    "(1 - eta2)), d = 2f for two equal groups). It holds for eta squared of a one-way "
    "two-group comparison. If Färdig's values are partial η² from a repeated-measures or "
    "covariate model (the sources consulted do not say), the error term excludes other "
    "variance and the converted d is on a residual scale, larger than a raw-score d.",
    "η² has no sign; the converted d are given the direction the abstracts report (IMR "
    "improved more). Levitt's BPRS d = -0.20 keeps its printed sign (lower = fewer symptoms).",
    "McGuire et al. listed only effects with p < .05; NS rows print no value and cannot be "
    "pooled. Any pool of the listed values leaves the NS studies out and overstates the effect.",
    "Per-arm n, SEs and CIs were not found for Hasson-Ohayon 2007, Levitt 2009 and Färdig "
    "2011 (only total N: 210, 104, 41), so no sampling variance is reported and no pool is "
    "computed by default.",
    "McGuire 2014 counted three RCTs (study table rows 1-3); the reprinted table also lists "
    "Salyers 2014. Its 3 quasi-controlled and 3 pre-post trials could not be listed exactly.",
    "All effects run from baseline to the longest follow-up.",
)


def replicate(name: str, *, assume_equal_arms: bool = False) -> Replication:
    """Rebuild a published IMR analysis from the bundled published data.

    Parameters
    ----------
    name : {"mcguire2014"}
        The analysis: McGuire et al. (2014)'s effect-size table of the first IMR RCTs.
    assume_equal_arms : bool, default False
        The bundled data give no per-arm n, SE or CI for these RCTs, so by default no
        sampling variance and no pool. True: a sensitivity analysis that assumes two equal arms
        of the total N (variance ``4/N + d^2/(2N)``, a lower bound) and pools the studies with
        a value (REML); the result says so everywhere.

    Returns
    -------
    Replication
        ``.study_table`` (the 4 RCTs of the table), ``.effects`` and ``.to_frame()`` (one row
        per study x outcome, 34 rows): ``study``, ``study_id``, ``outcome``, ``rater``,
        ``rater_type``, ``timepoint``, ``reported_metric`` (``d``, ``eta2`` or missing),
        ``reported_value`` (as printed), ``reported`` (display text), ``d`` (as reported, or
        converted from η²), ``d_range_low``, ``d_range_high`` (a converted η² range),
        ``d_basis`` ("as reported (Cohen's d)", "converted from η² (formula ...)", "not
        reported ..."), ``n_total`` (the study's total N), ``n_per_arm`` ("not reported"),
        ``variance`` (NaN unless ``assume_equal_arms``), ``variance_basis``, ``significant``,
        ``forest`` (``client`` / ``clinician`` for IMRS totals), ``source_row``;
        ``.pooled``, ``.pool_reasons``, ``.left_out``, ``.notes``, ``.plot(which, ax)``.

    Raises
    ------
    ValueError
        Unknown ``name`` (the message lists the available ones).

    Notes
    -----
    Eta squared is converted as :math:`d = 2\\sqrt{\\eta^2 / (1 - \\eta^2)}` (Cohen 1988);
    see the notes of the result for the partial η² caveat. Step by step in
    ``docs/howto-replicate.md``.

    References
    ----------
    McGuire AB et al. (2014). Illness management and recovery: a review of the literature.
    Psychiatr Serv 65(2), 171-179. doi:10.1176/appi.ps.201200274

    Roosenschoon BJ et al. (2016). BMC Psychiatry 16, Table 1. doi:10.1186/s12888-016-0774-0

    Examples
    --------
    >>> import imrstats
    >>> rep = imrstats.replicate("mcguire2014")
    >>> fardig = rep.effects[rep.effects["study_id"].eq("fardig2011")]
    >>> round(float(fardig["d"].iloc[0]), 4), fardig["d_basis"].iloc[0].startswith("converted")
    (1.2782, True)
    >>> rep.pooled["client"] is None
    True
    """
    if name not in AVAILABLE:
        raise ValueError(f"unknown replication {name!r}; available: {', '.join(AVAILABLE)}")
    effects_ids = list(dict.fromkeys(datasets.mcguire2014_effects()["study_id"]))
    chars = datasets.study_characteristics()
    chars = chars[chars["study_id"].isin(effects_ids)]
    table = study_table(chars).to_frame()
    n_total = dict(zip(chars["study_id"], chars["n_total"], strict=True))
    effects = _effects(assume_equal_arms, n_total)
    pooled, reasons, left = _pools(effects)
    notes = _NOTES + (
        ("SENSITIVITY: variances assume equal arms of the total N (not reported).",)
        if assume_equal_arms
        else ()
    )
    return Replication(
        name, "McGuire et al. 2014, IMR review: RCT effect sizes", table, effects, pooled,
        reasons, left, notes,
    )  # fmt: skip
