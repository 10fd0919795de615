"""imrstats.read_trial: trial data from files (or a DataFrame) to the tidy frame."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from imrstats._errors import DataError, ProblemLog
from imrstats._io_columns import (
    Coded,
    Recodes,
    code_labels,
    labels_in_code_order,
    mask_declared_missing,
    to_numbers,
    with_labels,
)
from imrstats._io_formats import RawSource, read_source
from imrstats._io_mapping import Plan, load_mapping, parse_mapping, suggest
from imrstats._io_report import (
    EXCLUDED_COLUMNS,
    RECODED_COLUMNS,
    LoadedTrial,
    LoadReport,
    frame_of,
)
from imrstats._schema import _small_int, validate_tidy

__all__ = ["LoadReport", "LoadedTrial", "read_trial"]


def read_trial(
    source: str | os.PathLike[str] | pd.DataFrame,
    mapping: Mapping[str, Any] | str | os.PathLike[str],
    *,
    format: str | None = None,
    sheet: str | int | None = None,
    encoding: str | None = None,
    drop_empty: bool = False,
) -> LoadedTrial:
    """Read trial data (wide or long) into the tidy frame, with a load report.

    Parameters
    ----------
    source : path or pandas.DataFrame
        A ``.csv``, ``.tsv``, ``.xlsx``, ``.sav`` (SPSS), ``.dta`` (Stata),
        ``.sas7bdat`` or ``.xpt`` (SAS), or ``.parquet`` file, or a DataFrame.
    mapping : dict or path
        Which columns hold what (the grammar is below), or the path of a TOML
        file holding the same keys.
    format : str, optional
        Overrides the extension: ``"csv"``, ``"tsv"``, ``"excel"``, ``"spss"``,
        ``"stata"``, ``"sas7bdat"``, ``"xport"``, ``"parquet"``.
    sheet : str or int, optional
        Excel sheet (default: the first).
    encoding : str, optional
        Text encoding of CSV/TSV (default UTF-8) or of SPSS/Stata/SAS strings.
    drop_empty : bool, default False
        Leave out participant-occasions at which every outcome is missing
        (each left-out tidy row is listed in ``report.excluded``). By default
        they are kept as rows with ``value`` NaN: models report missing
        outcomes, they do not hide them.

    Returns
    -------
    LoadedTrial
        A named tuple ``(data, report)``, so ``tidy, report = read_trial(...)``.
        ``data`` is the tidy frame of :func:`imrstats.validate_tidy`:
        ``participant``, ``arm`` (categorical, reference arm first), ``site``,
        ``cluster``, ``occasion`` (ordered categorical, baseline first),
        ``time`` (months), ``measure``, ``rater``, ``value`` (float64, NaN =
        missing), then the covariates. Wide data are in participant order,
        then value columns in mapping order. ``report`` is a
        :class:`~imrstats.LoadReport`: rows read and written, every cell
        recoded to missing (``report.recoded``: row, participant, column,
        value, reason), every row excluded (``report.excluded``), unused
        columns and notes.

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    imrstats.DataError
        With ``.problems`` (row, participant, column, value, rule, message),
        listing every problem found. ``row`` is the 0-based data row of the
        source (the first row below the header is 0; the message adds the
        spreadsheet line, e.g. "CSV line 7", when it is known); ``column`` is
        the source column. Rules, besides those of
        :func:`~imrstats.validate_tidy`: ``unsupported_format``,
        ``unreadable_file`` (e.g. a CSV renamed ``.sav``), ``empty_file``,
        ``duplicate_column``, ``unknown_mapping_key``, ``missing_mapping_key``,
        ``bad_mapping``, ``bad_occasions``, ``undeclared_occasion``,
        ``pattern_no_match``, ``unknown_column``, ``column_used_twice``,
        ``missing_id``, ``duplicate_participant`` (wide), ``missing_arm``,
        ``unknown_arm_code`` (an arm value not in ``arm_labels``),
        ``non_numeric_value``, ``non_finite_value``, ``non_numeric_time``.

    Notes
    -----
    **Mapping grammar** (keys of the dict / TOML file)::

        participant   column with the participant id                 (required)
        arm           column with the trial arm                      (required)
        arm_labels    {raw code: label}, e.g. {"1": "IMR", "2": "TAU"}; every
                      arm value (its code, or its SPSS/Stata value label) must
                      be listed; the label order is the arm order
        reference     comparison arm label (default "TAU" when present;
                      required otherwise, e.g. "waitlist")
        site, cluster columns (optional); cluster = IMR therapy group
        covariates    [columns] carried into the tidy frame as they are
                      (value labels applied)
        occasions     {label: months since baseline}, baseline first, months
                      increasing (required in the wide layout)
        missing_codes [codes], e.g. [-99, -9, 999, "refused"], for every
                      outcome, time, site, cluster and covariate column; or
                      {column: [codes], "*": [codes for the other columns]}
        layout        "wide" or "long" (default: "long" when "value" is given)

        wide layout, either
        measures      {measure: {occasion: column}}, or split by rater
                      {measure: {rater: {occasion: column}}}
        or
        wide_pattern  e.g. "{measure}_{rater}_{occasion}": every column whose
                      name matches is a value column; {occasion} matches the
                      declared occasion labels; {measure} and {rater} match any
                      text (shortest first) unless listed in
                      measures = [names] / raters = [names]
        measure       {"constant": name} when the pattern has no {measure}
        rater         {"constant": name} for value columns without a rater
                      (default "unspecified")

        long layout (one row per participant x occasion [x measure x rater])
        occasion      column with the occasion label
        time          column with months since baseline (optional when
                      occasions give the months)
        value         column with the outcome
        measure       column, or {"constant": name}
        rater         column, or {"constant": name} (optional)

    Text cells are labels: integral numbers lose ``.0`` (an SPSS id 12.0 is
    ``"12"``), surrounding spaces are stripped. SPSS/Stata value labels become
    the text of the arm, site, cluster, occasion, measure and rater columns and
    make covariates categorical. Cells recoded to missing, and why: a declared
    missing code (``missing_code``), an SPSS user-declared missing value
    (``user_missing``), a Stata/SAS tagged missing value such as ``.a``
    (``tagged_missing``), text such as ``NA``, ``N/A``, ``NaN``, ``null``,
    ``#N/A`` or ``.`` in a number column (``na_text``), and space-only cells
    (``blank``). Empty cells are missing as read and are not listed. Blank
    lines of a CSV are skipped by the parser (a note says so).

    In the wide layout a row whose id is blank is an error (``missing_id``),
    never dropped; the wide frame has ``n_rows x n_value_columns`` tidy rows
    minus those listed in ``report.excluded``.

    Examples
    --------
    >>> import pandas as pd, imrstats
    >>> wide = pd.DataFrame({"ID": [1, 2], "Group": [1, 2],
    ...                      "imrs_base": [50, -99], "imrs_9m": [55, 52]})
    >>> tidy, report = imrstats.read_trial(wide, mapping={
    ...     "participant": "ID", "arm": "Group", "arm_labels": {"1": "IMR", "2": "TAU"},
    ...     "measures": {"imrs": {"baseline": "imrs_base", "9m": "imrs_9m"}},
    ...     "occasions": {"baseline": 0, "9m": 9}, "missing_codes": [-99]})
    >>> tidy[["participant", "arm", "occasion", "value"]]
      participant  arm  occasion  value
    0           1  IMR  baseline   50.0
    1           1  IMR        9m   55.0
    2           2  TAU  baseline    NaN
    3           2  TAU        9m   52.0
    >>> report.recoded_counts()
          column value        reason  n
    0  imrs_base   -99  missing_code  1
    """
    mapping_source = None if isinstance(mapping, Mapping) else str(mapping)
    raw_mapping = load_mapping(mapping)
    name = "<DataFrame>" if isinstance(source, pd.DataFrame) else str(source)
    spec = parse_mapping(raw_mapping, source=mapping_source or name)
    resolved: dict[str, Plan] = {}

    def need_of(columns: list[str]) -> tuple[list[str], list[str]]:
        plan = spec.resolve(columns, source=name)
        resolved["plan"] = plan
        return plan.used_columns, plan.text_columns

    raw = read_source(source, format=format, sheet=sheet, encoding=encoding, need_of=need_of)
    plan = resolved["plan"]
    loader = _Loader(raw, plan)
    if plan.layout == "wide":
        long, excluded = loader.wide(drop_empty)
    else:
        long, excluded = loader.long(drop_empty)
    tidy = loader.validate(long)
    report = LoadReport(
        source=raw.name,
        format=raw.format,
        layout=plan.layout,
        rows_read=len(raw.frame),
        rows_tidy=len(tidy),
        value_columns=tuple(v.column for v in plan.values) if plan.values else (plan.value,),
        recoded=loader.recoded_frame(),
        excluded=excluded,
        unused_columns=tuple(c for c in raw.columns if c not in set(plan.used_columns)),
        labelled_columns=tuple(loader.labelled),
        notes=tuple(raw.notes + loader.notes),
        values_missing=int(tidy["value"].isna().sum()),
    )
    return LoadedTrial(tidy, report)


class _Loader:
    """The conversions of one read_trial call, with their problems and recodes."""

    def __init__(self, raw: RawSource, plan: Plan) -> None:
        self.raw = raw
        self.plan = plan
        self.log = ProblemLog()
        self.recodes = Recodes()
        self.notes: list[str] = []
        self.labelled: list[str] = []
        self.n = len(raw.frame)
        self.pid: Coded | None = None
        self.arms: list[str] | None = None
        self.reference: str | None = None
        for column in plan.used_columns:
            codes = self._codes_for(column)
            mask_declared_missing(raw, column, codes, self.recodes)

    # -- helpers ---------------------------------------------------------------------------
    def _codes_for(self, column: str) -> tuple[Any, ...]:
        plan = self.plan
        recodable = set(plan.numeric_columns) | set(plan.covariates)
        recodable |= {c for c in (plan.site, plan.cluster) if c is not None}
        if column not in recodable:
            return ()
        codes = plan.missing_codes
        return codes.get(column, codes.get("*", ()))

    def _at(self, row: int) -> str:
        where = self.raw.where(int(row))
        return f" ({where})" if where else ""

    def _labels(self, column: str) -> dict[Any, str] | None:
        labels = self.raw.value_labels.get(column)
        if labels and column not in self.labelled:
            self.labelled.append(column)
        return labels or None

    def _problem_rows(self, rows: np.ndarray, rule: str, column: str, message: str) -> None:
        cells = self.raw.frame[column].iloc[rows[:1000]].astype(object).to_numpy()
        for r, cell in zip(rows[:1000], cells, strict=True):
            self.log.add(
                rule,
                message + self._at(r),
                row=int(r),
                participant=None if self.pid is None else self.pid.text_at([r])[0],
                column=column,
                value=cell,
            )
        if rows.size > 1000:
            self.log.add(rule, f"{rows.size - 1000} more rows (not listed)", column=column)

    def _pid_text(self, rows: np.ndarray) -> np.ndarray | None:
        return None if self.pid is None else self.pid.text_at(rows)

    def _participant(self) -> Coded:
        column = self.plan.participant
        values = self.raw.frame[column]
        coded, _ = code_labels(values, self._labels(column))
        self.pid = coded
        if pd.api.types.is_float_dtype(values.dtype):
            self.notes.append(
                f"participant ids in {column!r} are stored as numbers; they are written as "
                "text without a trailing '.0' (e.g. 101.0 -> '101')"
            )
        missing = np.flatnonzero(coded.codes < 0)
        self._problem_rows(missing, "missing_id", column, "the participant id is missing")
        return coded

    def _arm(self) -> Coded:
        plan, column = self.plan, self.plan.arm
        labels = self._labels(column)
        coded, unmatched = code_labels(self.raw.frame[column], labels, plan.arm_labels)
        if unmatched.size:
            keys = list(plan.arm_labels or {})
            first = _id_text_of(self.raw.frame[column].iloc[int(unmatched[0])])
            self._problem_rows(
                unmatched,
                "unknown_arm_code",
                column,
                f"arm value not among the arm_labels codes {keys}{suggest(first, keys)}",
            )
        missing = np.setdiff1d(np.flatnonzero(coded.codes < 0), unmatched)
        self._problem_rows(missing, "missing_arm", column, "the arm is missing")
        if plan.arm_labels is not None:
            levels = list(dict.fromkeys(plan.arm_labels.values()))
            self.notes.append(
                "arm codes relabelled with arm_labels: "
                + ", ".join(f"{k} -> {v}" for k, v in plan.arm_labels.items())
            )
        elif labels:
            in_order = labels_in_code_order(labels)
            levels = list(dict.fromkeys(in_order + sorted(set(coded.categories) - set(in_order))))
        else:
            levels = sorted(coded.categories)
        reference = plan.reference
        if reference is not None and reference not in levels:
            self.log.add(
                "unknown_reference_arm",
                f"reference arm {reference!r} is not among the arm labels {levels}"
                f"{suggest(reference, levels)}",
                column=column,
                value=reference,
            )
            reference = None
        elif reference is None and len(levels) > 1:
            if "TAU" in levels:
                reference = "TAU"
            else:
                self.log.add(
                    "unknown_reference_arm",
                    f"arm labels {levels} do not include 'TAU': declare the comparison arm "
                    "in the mapping, e.g. \"reference\": \"waitlist\"",
                    column=column,
                )
        self.arms, self.reference = levels, reference
        return coded

    def _plain(self, column: str) -> Coded:
        """Site, cluster, occasion, measure or rater column: labels applied, blanks reported."""
        coded, _ = code_labels(self.raw.frame[column], self._labels(column))
        if coded.blank.size:
            cells = self.raw.frame[column].iloc[coded.blank].astype(object).to_numpy()
            self.recodes.add(column, coded.blank, np.array([repr(c) for c in cells]), "blank")
        return coded

    def _numbers(self, column: str, what: str = "value") -> np.ndarray:
        return to_numbers(self.raw, column, self.recodes, self.log, self.pid, what=what)

    # -- layouts ---------------------------------------------------------------------------
    def _design(self) -> dict[str, Any]:
        """Participant-level columns: codes per source row."""
        plan = self.plan
        out: dict[str, Any] = {"participant": self._participant(), "arm": self._arm()}
        for key in ("site", "cluster"):
            column = getattr(plan, key)
            if column is not None:
                out[key] = self._plain(column)
        return out

    def wide(self, drop_empty: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
        plan, n = self.plan, self.n
        design = self._design()
        pid = design["participant"]
        # duplicate participants (ids compared as text after stripping)
        present = pid.codes >= 0
        counts = np.bincount(pid.codes[present], minlength=len(pid.categories))
        dup = np.flatnonzero(present & (counts[np.where(present, pid.codes, 0)] > 1))
        self._problem_rows(
            dup,
            "duplicate_participant",
            plan.participant,
            "the participant id appears on more than one row (the wide layout has one row "
            "per participant)",
        )
        k = len(plan.values)
        values = np.empty((n, k), dtype=np.float64)
        for j, vc in enumerate(plan.values):
            values[:, j] = self._numbers(vc.column)
        occ_levels = list(plan.occasions or {})
        measures = list(dict.fromkeys(v.measure for v in plan.values))
        rater_const = plan.rater[1] if plan.rater is not None else None
        raters_of = [v.rater if v.rater is not None else rater_const for v in plan.values]
        with_rater = any(r is not None for r in raters_of)
        raters_of = [r if r is not None else "unspecified" for r in raters_of]
        raters = list(dict.fromkeys(raters_of))
        occ_idx = np.array([occ_levels.index(v.occasion) for v in plan.values], dtype=np.intp)
        meas_idx = np.array([measures.index(v.measure) for v in plan.values], dtype=np.intp)
        rater_idx = np.array([raters.index(r) for r in raters_of], dtype=np.intp)

        keep: np.ndarray | None = None
        excluded = _empty_excluded()
        if drop_empty:
            empty = np.zeros((n, len(occ_levels)), dtype=bool)
            for o in range(len(occ_levels)):
                cols = np.flatnonzero(occ_idx == o)
                if cols.size:
                    empty[:, o] = np.isnan(values[:, cols]).all(axis=1)
            drop = empty[:, occ_idx]  # (n, k)
            if drop.any():
                keep = ~drop.ravel()
                r, j = np.nonzero(drop)
                excluded = frame_of(
                    {
                        "row": r,
                        "participant": self._pid_text(r),
                        "column": np.array([plan.values[i].column for i in j], dtype=object),
                        "occasion": np.array(occ_levels, dtype=object)[occ_idx[j]],
                        "measure": np.array(measures, dtype=object)[meas_idx[j]],
                        "rater": np.array(raters, dtype=object)[rater_idx[j]],
                        "reason": "empty_occasion",
                    },
                    EXCLUDED_COLUMNS,
                )

        def long_codes(per_row: np.ndarray, n_codes: int | None = None) -> np.ndarray:
            if n_codes is not None:  # category codes: repeat them in their smallest dtype
                per_row = _small_int(per_row, n_codes)
            out = np.repeat(per_row, k)
            return out if keep is None else out[keep]

        def tiled(per_col: np.ndarray) -> np.ndarray:
            out = np.tile(_small_int(per_col, k), n)
            return out if keep is None else out[keep]

        rows = long_codes(np.arange(n, dtype=np.int64))
        columns: dict[str, Any] = {}
        for key, coded in design.items():
            columns[key] = pd.Categorical.from_codes(
                long_codes(coded.codes, len(coded.categories)),
                categories=coded.categories,
                validate=False,
            )
        columns["occasion"] = pd.Categorical.from_codes(
            tiled(occ_idx), categories=occ_levels, ordered=True, validate=False
        )
        columns["measure"] = pd.Categorical.from_codes(
            tiled(meas_idx), categories=measures, validate=False
        )
        if with_rater:
            columns["rater"] = pd.Categorical.from_codes(
                tiled(rater_idx), categories=raters, validate=False
            )
        flat = values.reshape(-1)
        columns["value"] = flat if keep is None else flat[keep]
        for cov in plan.covariates:
            self._labels(cov)
            columns[cov] = with_labels(self.raw, cov).take(rows).array
        long = pd.DataFrame(columns, copy=False)
        long.index = pd.Index(rows)
        return long, excluded

    def long(self, drop_empty: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
        plan, n = self.plan, self.n
        design = self._design()
        columns: dict[str, Any] = {}
        for key, coded in design.items():
            columns[key] = coded.categorical()
        assert plan.occasion is not None and plan.value is not None
        occ = self._plain(plan.occasion)
        columns["occasion"] = occ.categorical()
        if plan.time is not None:
            columns["time"] = self._numbers(plan.time, what="time")
        for key in ("measure", "rater"):
            spec = getattr(plan, key)
            if spec is None:
                continue
            kind, what = spec
            if kind == "constant":
                columns[key] = pd.Categorical.from_codes(
                    np.zeros(n, dtype=np.int8), categories=[what], validate=False
                )
            else:
                columns[key] = self._plain(what).categorical()
        value = self._numbers(plan.value)
        columns["value"] = value
        for cov in plan.covariates:
            self._labels(cov)
            columns[cov] = with_labels(self.raw, cov).array
        long = pd.DataFrame(columns, copy=False)
        excluded = _empty_excluded()
        if drop_empty:
            # participant-occasions whose values (every measure and rater) are all missing
            group, _ = pd.factorize(
                pd.MultiIndex.from_arrays([design["participant"].codes, occ.codes])
            )
            has_value = np.zeros(group.max() + 1 if n else 0, dtype=bool)
            has_value[group[~np.isnan(value)]] = True
            drop = ~has_value[group]
            if drop.any():
                r = np.flatnonzero(drop)
                excluded = frame_of(
                    {
                        "row": r,
                        "participant": self._pid_text(r),
                        "column": plan.value,
                        "occasion": occ.text_at(r),
                        "measure": _text_of(long.get("measure"), r),
                        "rater": _text_of(long.get("rater"), r, "unspecified"),
                        "reason": "empty_occasion",
                    },
                    EXCLUDED_COLUMNS,
                )
                long = long.iloc[np.flatnonzero(~drop)]
        return long, excluded

    # -- validation --------------------------------------------------------------------------
    def validate(self, long: pd.DataFrame) -> pd.DataFrame:
        plan = self.plan
        try:
            tidy = validate_tidy(
                long,
                arms=self.arms,
                reference=self.reference,
                occasions=plan.occasions,
                source=self.raw.name,
            )
        except DataError as err:
            self._merge(err.problems)
            self.log.raise_if_any("the trial data have problems", source=self.raw.name)
            raise  # pragma: no cover - _merge always adds the schema's problems
        self.log.raise_if_any("the trial data have problems", source=self.raw.name)
        return tidy

    def _merge(self, problems: pd.DataFrame) -> None:
        """Add validate_tidy's problems, naming source columns, without repeats."""
        plan = self.plan
        source_of = {
            "participant": plan.participant,
            "arm": plan.arm,
            "site": plan.site,
            "cluster": plan.cluster,
            "occasion": plan.occasion,
            "time": plan.time,
            "value": plan.value,
        }
        for key in ("measure", "rater"):
            spec = getattr(plan, key)
            if spec is not None and spec[0] == "column":
                source_of[key] = spec[1]
        ours = self.log._rows  # the loader's own problems, reported first
        seen = {(p["row"], p["column"]) for p in ours if p["row"] is not None}
        seen |= {(p["row"], p["rule"]) for p in ours if p["row"] is not None}
        seen_rules = {(p["rule"], p["column"]) for p in ours if p["row"] is None}
        # Participants whose rows the loader already flagged: the per-participant
        # rules of the schema would only repeat those problems.
        flagged = {str(p["participant"]) for p in ours if p["participant"] is not None}
        added: set[tuple[Any, ...]] = set()
        for rec in problems.to_dict("records"):
            row = None if pd.isna(rec["row"]) else int(rec["row"])
            column = rec["column"]
            if isinstance(column, str) and source_of.get(column):
                column = source_of[column]
            if row is not None and ((row, column) in seen or (row, rec["rule"]) in seen):
                continue
            if row is None and (rec["rule"], column) in seen_rules:
                continue
            if rec["rule"] in _PER_PARTICIPANT and ours and row is not None:
                pid = self.pid.text_at([row])[0] if self.pid is not None else None
                if pid is None or pid in flagged:
                    continue
            key = (row, column, rec["rule"], rec["message"])
            if key in added:
                continue
            added.add(key)
            message = rec["message"] if isinstance(rec["message"], str) else ""
            self.log.add(
                rec["rule"],
                message + ("" if row is None else self._at(row)),
                row=row,
                participant=None if pd.isna(rec["participant"]) else rec["participant"],
                column=None if pd.isna(column) else column,
                value=None if pd.isna(rec["value"]) else rec["value"],
            )

    def recoded_frame(self) -> pd.DataFrame:
        """One row per recoded cell, in source order (row, then column order)."""
        rows, columns, values, reasons = self.recodes.frame_parts()
        position = {c: i for i, c in enumerate(self.plan.used_columns)}
        order = np.lexsort((np.array([position[c] for c in columns], dtype=np.intp), rows))
        pick = order.tolist()
        return frame_of(
            {
                "row": rows[order],
                "participant": self._pid_text(rows[order]),
                "column": [columns[i] for i in pick],
                "value": [values[i] for i in pick],
                "reason": [reasons[i] for i in pick],
            },
            RECODED_COLUMNS,
        )


#: Schema rules about a participant's rows together; repeats of a loader problem
#: (a missing or repeated id, an unknown arm code) when that participant is flagged.
_PER_PARTICIPANT = frozenset(
    {"duplicate_key", "arm_changes", "site_changes", "cluster_changes", "missing_arm"}
)


def _empty_excluded() -> pd.DataFrame:
    return frame_of({c: [] for c in EXCLUDED_COLUMNS}, EXCLUDED_COLUMNS)


def _text_of(values: pd.Series | None, rows: np.ndarray, default: str | None = None) -> Any:
    if values is None:
        return default
    return values.iloc[rows].astype(object).to_numpy()


def _id_text_of(value: Any) -> str:
    from imrstats._schema import _id_text

    return _id_text(value)
