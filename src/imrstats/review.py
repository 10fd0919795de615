"""Tables of the IMR literature review, built from the bundled published data.

* :func:`study_table` - one row per study: design, country, N, comparator, IMR format,
  timepoints, outcomes and the main result as reported;
* :func:`outcome_table` - one row per study x outcome: rater, effect size and its metric,
  significant or not (default: the McGuire et al. 2014 effect table).

Both return a :class:`ReviewTable` (``.to_frame()``, ``.summary()``, ``.to_html()``,
``_repr_html_``). A value the sources do not give is ``"not reported"`` (text) or missing
(numbers); nothing is filled in.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field

import pandas as pd

from imrstats import datasets
from imrstats._compat import STR_DTYPE, as_str
from imrstats._html import CSS, notes_html, table_html

__all__ = ["ReviewTable", "outcome_table", "study_table"]

NOT_REPORTED = "not reported"

_STUDY_COLUMNS = (
    "study", "study_id", "design", "country", "n", "n_text", "comparator", "imr_format",
    "timepoints", "outcomes", "main_result",
)  # fmt: skip

_OUTCOME_COLUMNS = (
    "study", "study_id", "outcome", "rater", "rater_type", "timepoint", "metric", "estimate",
    "range_low", "range_high", "effect", "significant", "source",
)  # fmt: skip

_METRIC_LABEL = {"d": "d", "eta2": "η²", "OR": "OR", "B": "B"}


@dataclass(frozen=True, eq=False)
class ReviewTable:
    """A review table: a frame plus its title, notes and source.

    Attributes
    ----------
    title : str
        What the table shows.
    table : pandas.DataFrame
        The rows (full precision; missing text is ``"not reported"``, missing numbers NaN).
    notes : tuple of str
        Caveats printed under the table.
    source : str
        Where the rows come from.
    """

    title: str
    table: pd.DataFrame = field(repr=False)
    notes: tuple[str, ...] = ()
    source: str = ""

    def to_frame(self) -> pd.DataFrame:
        """A copy of the table."""
        return self.table.copy()

    def summary(self) -> str:
        """Plain-text table with the title, notes and source."""
        with pd.option_context("display.max_colwidth", 40, "display.width", 200):
            shown = self.table.drop(columns=["source"], errors="ignore")  # printed below
            body = shown.to_string(index=False)
        lines = [self.title, body]
        lines.extend(f"note: {n}" for n in self.notes)
        if self.source:
            lines.append(f"source: {self.source}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<ReviewTable {self.title!r}: {len(self.table)} rows>"

    def _repr_html_(self) -> str:
        body = table_html(self.table, caption=self.title, digits={"n": 0}, missing=NOT_REPORTED)
        src = f'<p class="imr-notes">Source: {html.escape(self.source)}</p>' if self.source else ""
        return f'<div class="imr-block">{body}{notes_html(self.notes)}{src}</div>'

    def to_html(self, *, standalone: bool = False) -> str:
        """The escaped HTML table (``standalone=True``: a whole page with its stylesheet)."""
        frag = f"<style>{CSS}</style>{self._repr_html_()}"
        if not standalone:
            return frag
        title = html.escape(self.title)
        return (
            f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title}'
            f"</title></head><body>{frag}</body></html>"
        )


def _text(values: pd.Series) -> pd.Series:
    """Text column with missing cells as ``"not reported"``."""
    out = as_str(values)
    return out.where(out.notna(), NOT_REPORTED).astype(STR_DTYPE)


def _outcome_list(studies: pd.DataFrame) -> dict[str, str]:
    """``trial_id`` -> the outcomes of its rows, item rows collapsed into one entry."""
    published = datasets.published_studies()
    out: dict[str, str] = {}
    for trial, rows in published.dropna(subset=["trial_id"]).groupby("trial_id", sort=False):
        names: dict[str, None] = {}
        for name in rows["outcome"]:
            if name.startswith("fidelity item "):
                name = "IMR Fidelity Scale items"
            elif name.startswith("IT-IS item"):
                name = "IT-IS items"
            names[name] = None
        out[str(trial)] = "; ".join(names)
    return {sid: out.get(sid, NOT_REPORTED) for sid in studies["study_id"]}


def study_table(studies: pd.DataFrame | None = None) -> ReviewTable:
    """The review's study characteristics table, one row per study.

    Parameters
    ----------
    studies : pandas.DataFrame, optional
        Rows of :func:`imrstats.datasets.study_characteristics` (e.g. a subset); default all
        16 bundled studies.

    Returns
    -------
    ReviewTable
        ``.to_frame()`` columns: ``study`` (citation), ``study_id``, ``design``, ``country``,
        ``n`` (leading number of the N cell, missing when none is printed), ``n_text`` (the N
        cell verbatim: what was counted, arm split), ``comparator``, ``imr_format``,
        ``timepoints``, ``outcomes`` (outcomes with numbers in
        :func:`imrstats.datasets.published_studies`, item rows collapsed), ``main_result``
        (as reported). Missing text is ``"not reported"``.

    Raises
    ------
    ValueError
        ``studies`` lacks a column of the bundled table.

    Notes
    -----
    Cells the literature file marks 'not found' are kept verbatim; they mean not found in
    the sources consulted. ``n`` counts what the source counted (randomised, enrolled or
    assessed), not always the analysed N.

    References
    ----------
    McGuire AB et al. (2014). Illness management and recovery: a review of the literature.
    Psychiatr Serv 65(2), 171-179. doi:10.1176/appi.ps.201200274

    Examples
    --------
    >>> from imrstats import review
    >>> table = review.study_table()
    >>> len(table.to_frame())
    16
    >>> first = table.to_frame().iloc[0]
    >>> first["study_id"], int(first["n"]), first["n_text"]
    ('hassonohayon2007', 210, '210 total (split not found)')
    """
    data = datasets.study_characteristics() if studies is None else studies
    need = ["study", "study_id", "design", "country", "n_total", "n_text", "comparator",
            "imr_format", "timepoints", "main_result"]  # fmt: skip
    missing = [c for c in need if c not in data.columns]
    if missing:
        raise ValueError(f"studies lacks column(s) {missing}; pass rows of study_characteristics()")
    outcomes = _outcome_list(data)
    frame = pd.DataFrame(
        {
            "study": _text(data["study"]),
            "study_id": _text(data["study_id"]),
            "design": _text(data["design"]),
            "country": _text(data["country"]),
            "n": data["n_total"].astype("Int64"),
            "n_text": _text(data["n_text"]),
            "comparator": _text(data["comparator"]),
            "imr_format": _text(data["imr_format"]),
            "timepoints": _text(data["timepoints"]),
            "outcomes": pd.Series(
                [outcomes[s] for s in data["study_id"]], dtype=STR_DTYPE, index=data.index
            ),
            "main_result": _text(data["main_result"]),
        }
    ).reset_index(drop=True)
    notes = (
        "'not found' / 'not reported': not found in the sources consulted, not absent.",
        "n is the first number of the N cell (what the source counted); see n_text.",
    )
    return ReviewTable(
        "IMR studies: characteristics",
        frame[list(_STUDY_COLUMNS)],
        notes,
        "imr_literature.md §1 study table (imrstats.datasets.study_characteristics)",
    )


def _effect_text(metric: object, value: float, low: float, high: float, sig: object) -> str:
    label = _METRIC_LABEL.get(str(metric), str(metric)) if pd.notna(metric) else None
    if label is not None and pd.notna(value):
        return f"{label} = {value:g}"
    if label is not None and pd.notna(low) and pd.notna(high):
        return f"{label} = {low:g} to {high:g}"
    if sig is False:
        return "NS (value not reported)"
    return NOT_REPORTED


def outcome_table(effects: pd.DataFrame | None = None) -> ReviewTable:
    """Outcomes of the review: which outcome, which rater, the effect size and its metric.

    Parameters
    ----------
    effects : pandas.DataFrame, optional
        Rows of :func:`imrstats.datasets.mcguire2014_effects` or
        :func:`imrstats.datasets.published_studies` (e.g. filtered); default the McGuire
        et al. 2014 effect table (34 rows).

    Returns
    -------
    ReviewTable
        ``.to_frame()`` columns: ``study``, ``study_id``, ``outcome``, ``rater`` (as printed),
        ``rater_type`` (normalised), ``timepoint``, ``metric`` (``d``, ``eta2``, ``OR``,
        ``B``; ``"not reported"`` for NS rows), ``estimate`` (the printed value, NaN when none),
        ``range_low``, ``range_high`` (a printed range), ``effect`` (display text, e.g.
        ``"η² = 0.29"``, ``"NS (value not reported)"``), ``significant`` (boolean, missing when
        the source does not say), ``source``.

    Raises
    ------
    ValueError
        ``effects`` lacks a needed column.

    Notes
    -----
    d and η² are on different scales; this table shows each as printed. See
    :func:`imrstats.replicate` for the conversion ``d = 2 sqrt(eta2 / (1 - eta2))``.
    McGuire et al. listed only effects with p < .05, so their NS rows have no value.

    References
    ----------
    McGuire AB et al. (2014). Psychiatr Serv 65(2), 171-179. doi:10.1176/appi.ps.201200274

    Examples
    --------
    >>> from imrstats import review
    >>> frame = review.outcome_table().to_frame()
    >>> frame.loc[frame["study_id"].eq("fardig2011"), "effect"].tolist()[:2]
    ['η² = 0.29', 'η² = 0.34']
    """
    data = datasets.mcguire2014_effects() if effects is None else effects
    need = ["study", "study_id", "outcome", "rater", "rater_type", "timepoint", "effect_metric",
            "effect_value", "effect_range_low", "effect_range_high", "significant", "source"]  # fmt: skip
    missing = [c for c in need if c not in data.columns]
    if missing:
        raise ValueError(f"effects lacks column(s) {missing}; pass rows of mcguire2014_effects()")
    metric = as_str(data["effect_metric"].astype(object))
    effect = [
        _effect_text(m, v, lo, hi, (None if pd.isna(s) else bool(s)))
        for m, v, lo, hi, s in zip(
            data["effect_metric"].astype(object), data["effect_value"],
            data["effect_range_low"], data["effect_range_high"], data["significant"],
            strict=True,
        )
    ]  # fmt: skip
    frame = pd.DataFrame(
        {
            "study": _text(data["study"]),
            "study_id": _text(data["study_id"]),
            "outcome": _text(data["outcome"]),
            "rater": _text(data["rater"]),
            "rater_type": _text(data["rater_type"].astype(object)),
            "timepoint": _text(data["timepoint"]),
            "metric": metric.where(metric.notna(), NOT_REPORTED).astype(STR_DTYPE),
            "estimate": data["effect_value"].astype("float64"),
            "range_low": data["effect_range_low"].astype("float64"),
            "range_high": data["effect_range_high"].astype("float64"),
            "effect": pd.Series(effect, dtype=STR_DTYPE, index=data.index),
            "significant": data["significant"].astype("boolean"),
            "source": _text(data["source"]),
        }
    ).reset_index(drop=True)
    notes = (
        "McGuire et al. 2014 listed only effects with p < .05; 'NS' rows print no value.",
        "Cohen's d (Hasson-Ohayon, Levitt) and η² (Färdig) are not on one scale.",
        "Levitt's BPRS d = -0.20 is printed negative (lower BPRS = fewer symptoms).",
    )
    return ReviewTable("IMR outcomes: effect sizes as reported", frame[list(_OUTCOME_COLUMNS)],
                       notes, "McGuire et al. 2014, reprinted in Roosenschoon et al. 2016, "
                       "Table 1 (imrstats.datasets.mcguire2014_effects)")  # fmt: skip
