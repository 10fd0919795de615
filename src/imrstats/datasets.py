"""Published IMR study data shipped with imrstats.

The tables come from the project's literature file (``imr_studies.csv`` and the §1 study
table of ``imr_literature.md``). They were built by ``tools/build_published.py``, a
deterministic script that keeps every original field verbatim and adds typed columns
parsed from the text of the same row. Nothing is added that is not in the literature
file, and every row keeps its ``source``. The data dictionary is in
``imrstats/data/published/README.md``.

* :func:`published_studies` - the full long table, one row per study x outcome x arm x
  timepoint (210 rows);
* :func:`mcguire2014_effects` - the McGuire et al. 2014 effect-size table (d and eta^2);
* :func:`study_characteristics` - one row per study (§1 of the literature file);
* :func:`fidelity_items` - Dutch pilot IMR Fidelity Scale scores, group x item.

Every function returns a fresh DataFrame; changing it does not change the next call.
"""

from __future__ import annotations

import functools
import io
import re
from dataclasses import dataclass
from importlib import resources

import pandas as pd

from imrstats._compat import as_str

__all__ = [
    "fidelity_items",
    "mcguire2014_effects",
    "published_studies",
    "study_characteristics",
]

_PACKAGE_DIR = "data/published"

#: dtype label in the docs -> the pandas dtype the loader produces ("str" is STR_DTYPE).
_KINDS = ("str", "int64", "Int64", "float64", "bool", "boolean", "category")


@dataclass(frozen=True)
class _Column:
    name: str
    kind: str
    doc: str
    levels: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in _KINDS or (self.kind == "category") != bool(self.levels):
            raise ValueError(f"bad column spec {self.name}")

    @property
    def label(self) -> str:
        if self.kind == "category":
            return "category [" + ", ".join(self.levels) + "]"
        return self.kind


def _cols(*specs: tuple) -> dict[str, _Column]:
    return {spec[0]: _Column(*spec) for spec in specs}


_VERBATIM = "verbatim from imr_studies.csv"

_PUBLISHED = _cols(
    ("study_id", "str",
     "Stable slug of the publication: first author's surname (ASCII letters, lower "
     "case) plus the year, e.g. ``fardig2011``. One per (``study``, ``year``)."),
    ("trial_id", "str",
     "``study_id`` of the study-table row (``study_characteristics()``) the "
     "publication reports on. Equals ``study_id`` except ``jensen2019`` -> "
     "``dalum2018`` (1-year follow-up of the Danish RCT); missing for the McGuire 2014 "
     "review, which is not a primary study. Group by it so one trial is not counted twice."),
    ("source_row", "int64", "0-based data row of imr_studies.csv (file line minus 2)."),
    ("study", "str", f"Study label, {_VERBATIM}."),
    ("year", "int64", f"Publication year, {_VERBATIM}."),
    ("design", "str", f"Design as described, {_VERBATIM}."),
    ("design_class", "category",
     "``design`` classified by an explicit table: ``rct``, ``cluster_rct`` (teams "
     "randomised, including Salyers 2010's 2 of 4 ACT teams), ``quasi`` (non-randomised "
     "comparison), ``prepost``, ``implementation`` (implementation + pre-post), ``review``.",
     ("rct", "cluster_rct", "quasi", "prepost", "implementation", "review")),
    ("is_rct", "bool", "``design_class`` is ``rct`` or ``cluster_rct``."),
    ("country", "str", f"Country, {_VERBATIM}."),
    ("outcome", "str", f"Outcome or count described by the row, {_VERBATIM}."),
    ("instrument", "str", f"Instrument, {_VERBATIM}; may be missing."),
    ("imrs_total", "bool",
     "The row is an IMR Scale total score, client or clinician: ``instrument`` names "
     "the IMRS / IMR Scale (not a subscale, not a list of instruments) or ``outcome`` "
     "names the IMRS."),
    ("scale_metric", "category",
     "Metric of an IMRS total: ``sum`` of the 15 items (15-75) or item ``mean`` (1-5). "
     "Sums for Jensen 2019 and Monroe-DeVita 2018, means for the Dutch pilot "
     "(Roosenschoon 2016) and Salyers 2014 (its registry), per literature §4.4 and §7 "
     "or the instrument text. Missing when not ``imrs_total`` or unknown (Hasson-Ohayon, "
     "Levitt, Färdig, Wong, Roosenschoon 2021: its B values only suggest means).",
     ("sum", "mean")),
    ("scale_metric_basis", "str", "Why ``scale_metric`` has its value (the text relied on)."),
    ("rater", "str", f"Rater, {_VERBATIM}; may be missing."),
    ("rater_type", "category",
     "``rater`` normalised: ``client``; ``clinician`` (including 'clinician (non-blind)'); "
     "``observer`` (blinded assessor / clinician / interviewer, interviewer); "
     "``fidelity_assessor``; ``records`` (attendance and programme records); ``objective`` "
     "(the McGuire table's objective outcomes: hospitalisation, employment, medication). "
     "Missing when ``rater`` is missing, ambiguous ('interviewer/clinician') or names two "
     "rater types ('client & clinician').",
     ("client", "clinician", "observer", "fidelity_assessor", "records", "objective")),
    ("rater_blinded", "boolean",
     "True for 'blinded ...', False for '(non-blind)', missing when the text does not say."),
    ("arm", "str", f"Arm or contrast, {_VERBATIM}."),
    ("arm_type", "category",
     "``intervention`` (an IMR arm or IMR groups), ``control`` (TAU, CAU, waitlist, ACT "
     "only, problem-solving group), ``total`` ('overall': both arms pooled), ``contrast`` "
     "(``arm`` reads 'X vs Y': a between-arm result, or both arms together in N rows "
     "such as 'randomized (total)'). Missing for the review's 'studies reporting ...'.",
     ("intervention", "control", "total", "contrast")),
    ("comparator", "str", "'Y' of an ``arm`` that reads 'X vs Y'; missing otherwise."),
    ("timepoint", "str", f"Timepoint, {_VERBATIM}."),
    ("n", "Int64", f"N of the row, {_VERBATIM}."),
    ("mean", "float64", f"Mean, {_VERBATIM} (never rounded further)."),
    ("sd", "float64", f"Standard deviation, {_VERBATIM}."),
    ("std_error", "float64", "Standard error printed as 'SE=' in ``other_stat`` (Jensen ITT)."),
    ("percent", "float64",
     "Percentage (0-100) printed first in ``other_stat`` when it is the row's own value "
     "('28%', '82% of allocated', '85%; lost 12, ...'); missing otherwise."),
    ("other_stat", "str",
     f"Reported statistics and notes, {_VERBATIM}; every parsed number below is in it."),
    ("effect_metric", "category",
     "Effect size printed in ``other_stat``: ``d`` (\"d=\", \"Cohen's d=\"), ``eta2`` "
     "('eta^2=', eta squared), ``OR`` (odds ratio), ``B`` (unstandardised regression "
     "coefficient, on the outcome's own scale). d and eta2 are not on one scale.",
     ("d", "eta2", "OR", "B")),
    ("effect_value", "float64",
     "The printed effect size, sign as printed (Levitt's BPRS d=-.20); missing when a "
     "range is printed. '(ITT d=...)' in a completer row repeats another row and is "
     "not parsed."),
    ("effect_range_low", "float64",
     "Low end of a printed range ('eta^2=.14 to .19': 4 of 8 coping subscales)."),
    ("effect_range_high", "float64", "High end of a printed range."),
    ("ci_low", "float64", "Lower limit of the printed 95% confidence interval of the effect."),
    ("ci_high", "float64", "Upper limit of the printed 95% confidence interval of the effect."),
    ("statistic_name", "category",
     "Test statistic printed: ``t`` (t test; paired in pre-post rows), ``F``, ``U`` "
     "(Mann-Whitney).",
     ("t", "F", "U")),
    ("statistic", "float64", "Value of the test statistic."),
    ("df", "float64", "Degrees of freedom printed as 'df='."),
    ("p_value", "float64",
     "Printed p value ('p=', 'P=', 'P(IMR vs TAU)='); an upper bound when "
     "``p_relation`` is '<'. The McGuire note 'only p<.05 effects reported' is not a p value."),
    ("p_relation", "category", "'=' or '<' as printed before the p value.", ("=", "<")),
    ("significant", "boolean",
     "Whether the row's result is statistically significant, from the text only: 'NS' "
     "-> False; else a printed p value (p < 0.05, or a '<' bound <= 0.05); else an effect "
     "in the McGuire table, which lists only p < .05 effects -> True; else a cell that "
     "starts with 'significant' -> True. Missing otherwise (prose about other outcomes in "
     "N rows is not read)."),
    ("significant_basis", "category",
     "Which rule set ``significant``: ``NS``, ``p_value``, ``mcguire_table``, ``text``.",
     ("NS", "p_value", "mcguire_table", "text")),
    ("stat_comparison", "category",
     "What the row's statistic compares: ``pre_post`` ('paired' tests within IMR "
     "completers), ``baseline_difference`` (Monroe-DeVita baseline balance tests: a "
     "significant one is an imbalance, not an effect), ``between_arms`` (everything "
     "else). Missing when the row has no statistic.",
     ("between_arms", "pre_post", "baseline_difference")),
    ("source", "str", f"Source of every number in the row, {_VERBATIM}."),
)  # fmt: skip

_STUDIES = _cols(
    ("study_number", "int64", "Row number (#) of the §1 study table."),
    ("study_id", "str",
     "Slug of the first publication named in ``study`` (same rule as "
     "``published_studies()``); join on ``published_studies().trial_id``."),
    ("publication_ids", "str",
     "Space-separated ``study_id`` of every publication named in ``study`` "
     "(``dalum2018 jensen2019`` for the Danish RCT)."),
    ("study", "str", "Citation, verbatim from §1 (markdown '*' removed)."),
    ("design", "str", "Design, verbatim from §1."),
    ("design_class", "category", _PUBLISHED["design_class"].doc,
     _PUBLISHED["design_class"].levels),
    ("is_rct", "bool", _PUBLISHED["is_rct"].doc),
    ("country_setting", "str", "'Country / setting', verbatim from §1."),
    ("country", "str", "``country_setting`` up to the first ';', ',' or ' ('."),
    ("n_text", "str", "'N (per arm)', verbatim from §1."),
    ("n_total", "Int64",
     "Leading integer of ``n_text`` (enrolled, randomised or assessed total as printed); "
     "missing when ``n_text`` does not start with a number (Salyers 2010: N not found)."),
    ("comparator", "str", "Comparator, verbatim from §1 ('none' for uncontrolled studies)."),
    ("imr_format", "str", "'IMR format / dose', verbatim from §1; missing where §1 prints '—'."),
    ("timepoints", "str", "Timepoints, verbatim from §1."),
    ("main_result", "str", "'Main result (as reported)', verbatim from §1."),
    ("numbers_captured", "str", "'Numbers captured here', verbatim from §1."),
    ("notes", "str",
     "Cells that say 'not found' / 'not shown' (= not found in the sources consulted), "
     "and '—' cells stored as missing."),
    ("source", "str", "'imr_literature.md §1 study table, row k'."),
)  # fmt: skip

_FIDELITY = _cols(
    ("study_id", "str", "``roosenschoon2016`` (the Dutch pilot)."),
    ("source_row", "int64", "The row of ``published_studies()`` the scores come from."),
    ("item", "int64", "IMR Fidelity Scale item number, 1-13."),
    ("item_name", "str", "Item name: ``outcome`` after 'fidelity item <number> ' (e.g. 'IMR goal follow-up')."),
    ("group", "category", "IMR group, A-F as printed.", ("A", "B", "C", "D", "E", "F")),
    ("score", "int64", "The group's item score, 1-5 (5 = full implementation)."),
    ("source", "str", "Source of the scores (Roosenschoon et al. 2016, Table 4)."),
)  # fmt: skip

_MCGUIRE_NAMES = (
    "study_id", "study", "year", "outcome", "instrument", "rater", "rater_type",
    "rater_blinded", "comparator", "timepoint", "effect_metric", "effect_value",
    "effect_range_low", "effect_range_high", "significant", "other_stat", "source_row",
    "source",
)  # fmt: skip
_MCGUIRE = {name: _PUBLISHED[name] for name in _MCGUIRE_NAMES}
_MCGUIRE["effect_metric"] = _Column(
    "effect_metric", "category",
    "``d`` (Cohen's d; Hasson-Ohayon, Levitt) or ``eta2`` (eta squared; Färdig); missing "
    "for NS rows, which print no value.",
    ("d", "eta2"),
)  # fmt: skip
_MCGUIRE_SOURCE = "McGuire AB et al. Psychiatr Serv 2014;65(2):171-9, effect sizes"

_FILES = {
    "published_studies.csv": _PUBLISHED,
    "studies.csv": _STUDIES,
    "fidelity_items.csv": _FIDELITY,
}


def _convert(raw: pd.Series, column: _Column) -> pd.Series:
    """Type one text column of a shipped CSV (an empty cell is missing)."""
    kind = column.kind
    if kind == "str":
        return as_str(raw)
    missing = raw.isna()
    if kind == "category":
        bad = ~missing & ~raw.isin(list(column.levels))
        out = pd.Series(pd.Categorical(raw, categories=list(column.levels)), index=raw.index)
    elif kind in ("bool", "boolean"):
        table = {"True": True, "False": False}
        bad = ~missing & ~raw.isin(list(table))
        values = [None if m else table.get(v) for v, m in zip(raw, missing, strict=True)]
        out = pd.Series(pd.array(values, dtype="boolean"), index=raw.index)
    else:
        out = pd.to_numeric(raw).astype("float64")
        bad = (~missing & (out % 1 != 0)) if kind != "float64" else missing & False
    if kind in ("bool", "int64"):
        bad = bad | missing
    if bad.any():
        raise RuntimeError(f"shipped data damaged: unexpected {column.name!r} values")
    return out.astype(kind) if kind in ("bool", "int64", "Int64") else out


@functools.cache
def _load(name: str) -> pd.DataFrame:
    """Read and type one shipped CSV (cached; the public functions return copies)."""
    columns = _FILES[name]
    text = resources.files("imrstats").joinpath(f"{_PACKAGE_DIR}/{name}").read_text("utf-8")
    raw = pd.read_csv(io.StringIO(text), dtype=object, keep_default_na=False, na_values=[""])
    if list(raw.columns) != list(columns):
        raise RuntimeError(f"shipped {name} does not have the documented columns")
    return pd.DataFrame({col: _convert(raw[col], spec) for col, spec in columns.items()})


_REFERENCES = """\
.. [1] McGuire AB et al. Psychiatr Serv 2014;65(2):171-9. doi:10.1176/appi.ps.201200274
.. [2] Roosenschoon BJ et al. BMC Psychiatry 2016, Table 1 (reprint of the effect sizes
   of [1]). doi:10.1186/s12888-016-0774-0
.. [3] Roosenschoon BJ et al. BMC Psychiatry 2016;16:73 (Dutch pilot).
   doi:10.1186/s12888-016-1096-y
.. [4] Jensen SB et al. BMC Psychiatry 2019;19:65. doi:10.1186/s12888-019-2048-0
.. [5] Monroe-DeVita M et al. Psychiatr Serv 2018;69(5):562-571.
   doi:10.1176/appi.ps.201700124"""


def _column_list(columns: dict[str, _Column], indent: str) -> str:
    return "\n".join(f"{indent}- ``{c.name}`` ({c.label}): {c.doc}" for c in columns.values())


def _document(columns: dict[str, _Column]):
    """Fill a docstring's ``{columns}`` and ``{references}`` lines."""

    def fill(match: re.Match[str]) -> str:
        indent, key = match.group(1), match.group(2)
        if key == "columns":
            return _column_list(columns, indent)
        return "\n".join(indent + line if line else line for line in _REFERENCES.splitlines())

    def decorate(func):
        if func.__doc__:  # None under python -OO
            func.__doc__ = re.sub(
                r"^( *)\{(columns|references)\}$", fill, func.__doc__, flags=re.MULTILINE
            )
        return func

    return decorate


@_document(_PUBLISHED)
def published_studies() -> pd.DataFrame:
    """Published IMR study numbers, one row per study x outcome x arm x timepoint.

    The literature file's 210 rows in their original order. The 14 original fields are
    kept verbatim (typed); the other columns are parsed from the text of the same row
    by ``tools/build_published.py``. Where a parse would be ambiguous the value is
    missing, never guessed; ``other_stat`` and ``source`` are always kept.

    Returns
    -------
    pandas.DataFrame
        210 rows; text columns use ``imrstats._compat.STR_DTYPE`` and missing values
        are missing (never ``""``). Columns, in order:

        {columns}

    See Also
    --------
    mcguire2014_effects : the McGuire 2014 effect sizes only.
    study_characteristics : one row per study, joined on ``trial_id``.

    Notes
    -----
    Significance is read, not recomputed: with a printed p value,
    ``significant = p < 0.05`` (``p <= 0.05`` for an upper bound 'p<'); McGuire et
    al. [1]_ list only effects with p < .05, so a value in their table means
    significant and 'NS' means not.

    IMRS totals are on two metrics (``scale_metric``): the sum of 15 items, range 15-75
    (Jensen [4]_, Monroe-DeVita [5]_), or the item mean, range 1-5 (Dutch pilot [3]_,
    Salyers 2014). With all 15 items answered, ``sum = 15 * mean``. Check the metric
    before pooling raw means or differences.

    Rows are not independent: ``trial_id`` groups the reports of one trial, the per-arm
    rows of one outcome repeat the same between-arm p value, and Monroe-DeVita's
    ``overall`` rows pool its two arms.

    References
    ----------
    {references}

    Examples
    --------
    >>> from imrstats import datasets
    >>> studies = datasets.published_studies()
    >>> len(studies)
    210
    >>> pilot = studies[studies["study_id"].eq("roosenschoon2016") & studies["imrs_total"]]
    >>> pilot["mean"].tolist(), pilot["scale_metric"].unique().tolist()
    ([3.47, 3.66, 3.21, 3.59], ['mean'])
    """
    return _load("published_studies.csv").copy()


@_document(_MCGUIRE)
def mcguire2014_effects() -> pd.DataFrame:
    """The McGuire et al. 2014 study-level effect sizes of the first IMR RCTs.

    McGuire et al. [1]_ tabulated the between-group effects of Hasson-Ohayon 2007,
    Levitt 2009, Färdig 2011 and Salyers 2014, as reprinted in Roosenschoon et al.
    2016, Table 1 [2]_. These are the rows of :func:`published_studies` whose source
    is that table, in source order.

    Returns
    -------
    pandas.DataFrame
        One row per study x outcome (34 rows). Columns, in order:

        {columns}

    See Also
    --------
    published_studies : the full table (it also holds Levitt's completer d values).

    Notes
    -----
    The table mixes two metrics: Cohen's d for Hasson-Ohayon and Levitt, eta squared
    for Färdig (``effect_metric``). They must not be pooled as printed. For a
    two-group, between-subjects comparison eta squared converts as
    ``d = 2 * sqrt(eta2 / (1 - eta2))``; the literature file does not say that Färdig's
    eta squared came from such a comparison, so no converted value is shipped.

    Effects run from baseline to the longest follow-up and were listed only when
    p < .05: a printed value means ``significant`` is True, 'NS' means False. Levitt's
    BPRS d = -.20 is printed negative (lower BPRS = fewer symptoms). Färdig's coping
    effect is a range over 4 of 8 subscales (``effect_range_low``,
    ``effect_range_high``; ``effect_value`` missing). The columns of the reprint were
    assigned from cell spacing and confirmed by the Roosenschoon thesis text (p. 69).

    References
    ----------
    {references}

    Examples
    --------
    >>> from imrstats import datasets
    >>> effects = datasets.mcguire2014_effects()
    >>> sorted(effects["effect_metric"].dropna().unique())
    ['d', 'eta2']
    >>> bool(effects.loc[effects["effect_value"].notna(), "effect_metric"].notna().all())
    True
    """
    frame = _load("published_studies.csv")
    out = frame.loc[frame["source"].str.startswith(_MCGUIRE_SOURCE), list(_MCGUIRE)]
    out = out.reset_index(drop=True)
    levels = list(_MCGUIRE["effect_metric"].levels)
    out["effect_metric"] = pd.Categorical(out["effect_metric"].astype(object), categories=levels)
    return out


@_document(_STUDIES)
def study_characteristics() -> pd.DataFrame:
    """One row per IMR study: the §1 study table of the literature file.

    ``tools/build_published.py`` transcribes the table cell by cell (markdown emphasis
    removed) and adds ``study_id``, ``publication_ids``, ``design_class``, ``is_rct``,
    ``country`` and ``n_total``. The McGuire 2014 review is not a study and is not
    listed. Fujita 2013 is listed but has no rows in :func:`published_studies`.

    Returns
    -------
    pandas.DataFrame
        16 rows, in §1 order. Columns, in order:

        {columns}

    See Also
    --------
    published_studies : the numbers; its ``trial_id`` is this ``study_id``.

    Notes
    -----
    'Not found' in the literature file means not found in the sources consulted, not
    that it does not exist; such cells are kept verbatim and listed in ``notes``.
    ``n_total`` is the first number of the 'N (per arm)' cell and counts what that
    cell counts (randomised, enrolled or assessed): it is not always the analysed N.

    References
    ----------
    {references}

    Examples
    --------
    >>> from imrstats import datasets
    >>> table = datasets.study_characteristics()
    >>> table.loc[table["is_rct"], "study_id"].tolist()[:4]
    ['hassonohayon2007', 'levitt2009', 'fardig2011', 'salyers2014']
    """
    return _load("studies.csv").copy()


@_document(_FIDELITY)
def fidelity_items() -> pd.DataFrame:
    """IMR Fidelity Scale item scores of the six Dutch pilot groups, tidy.

    Parsed from the 'group scores A-F: 4 5 5 5 4 5' text of the 13 item rows of
    Roosenschoon et al. 2016, Table 4 [3]_, in :func:`published_studies`.

    Returns
    -------
    pandas.DataFrame
        78 rows (13 items x 6 groups), item-major. Columns, in order:

        {columns}

    Notes
    -----
    The item mean printed in the item's row is ``mean_j = sum_g score_gj / 6`` and its
    SD is the sample SD (``ddof=1``) over the six groups. A group's total fidelity is
    the mean of its 13 item scores: >= 4 high, 3 to < 4 moderate, < 3 low.

    References
    ----------
    {references}

    Examples
    --------
    >>> from imrstats import datasets
    >>> items = datasets.fidelity_items()
    >>> items.groupby("item")["score"].mean().round(1).loc[[1, 7, 13]].tolist()
    [4.7, 3.2, 2.0]
    """
    return _load("fidelity_items.csv").copy()
