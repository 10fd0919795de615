"""The declarative mapping of :func:`imrstats.read_trial`: parse, check, resolve.

A mapping says which source columns hold what. It is checked in two steps:
:func:`parse_mapping` checks its own structure (keys, types, occasions) before
any data is read; :meth:`MappingSpec.resolve` then matches it against the
columns of the file and returns a :class:`Plan`. Every problem is collected and
raised as one :class:`~imrstats.DataError`.
"""

from __future__ import annotations

import difflib
import itertools
import math
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imrstats._errors import DataError, ProblemLog

__all__ = [
    "MAPPING_KEYS",
    "MappingSpec",
    "Plan",
    "ValueColumn",
    "load_mapping",
    "parse_mapping",
    "suggest",
]

#: Every key a mapping may hold.
MAPPING_KEYS: tuple[str, ...] = (
    "layout",
    "participant",
    "arm",
    "arm_labels",
    "reference",
    "site",
    "cluster",
    "covariates",
    "occasions",
    "missing_codes",
    # wide layout
    "measures",
    "wide_pattern",
    "raters",
    # long layout
    "occasion",
    "time",
    "value",
    # both: a column (long) or {"constant": name}
    "measure",
    "rater",
)

_PATTERN_FIELDS = ("measure", "rater", "occasion")


def suggest(name: str, candidates: Sequence[str]) -> str:
    """``" (did you mean 'x'?)"`` for the closest candidates, or ``""``."""
    candidates = [str(c) for c in candidates]
    folded = [c for c in candidates if c.casefold() == str(name).casefold()]
    close = folded or difflib.get_close_matches(str(name), candidates, n=3, cutoff=0.6)
    if not close:
        return ""
    return " (did you mean " + " or ".join(repr(c) for c in close) + "?)"


def _available(columns: Sequence[str], limit: int = 40) -> str:
    shown = ", ".join(repr(c) for c in columns[:limit])
    more = f", ... ({len(columns) - limit} more)" if len(columns) > limit else ""
    return f"available columns: {shown}{more}"


def _log_unknown_column(log: ProblemLog, name: Any, key: str, columns: Sequence[str]) -> None:
    """Log that column ``name``, named by mapping key ``key``, is not in the data."""
    log.add(
        "unknown_column",
        f"column {name!r} (mapping key {key!r}) is not in the data"
        f"{suggest(name, columns)}; {_available(columns)}",
        column=name,
        value=key,
    )


def load_mapping(mapping: Mapping[str, Any] | str | os.PathLike[str]) -> dict[str, Any]:
    """Return the mapping as a dict, reading it from a TOML file when given a path."""
    if isinstance(mapping, Mapping):
        return dict(mapping)
    if not isinstance(mapping, str | os.PathLike):
        raise TypeError(
            f"mapping must be a dict or the path of a TOML file, got {type(mapping).__name__}"
        )
    path = Path(mapping)
    if not path.is_file():
        raise FileNotFoundError(
            f"mapping file {str(path)!r} not found (looked in {path.resolve()})"
        )
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as err:
        raise DataError(
            "the mapping file is not valid TOML",
            [{"rule": "bad_mapping", "message": str(err)}],
            source=str(path),
        ) from None
    except UnicodeDecodeError as err:
        raise DataError(
            "the mapping file is not UTF-8 text",
            [{"rule": "bad_mapping", "message": str(err)}],
            source=str(path),
        ) from None


@dataclass(frozen=True)
class ValueColumn:
    """One wide-layout value column and what it holds."""

    column: str
    measure: str
    rater: str | None
    occasion: str


@dataclass(frozen=True)
class Plan:
    """A mapping resolved against the columns of one source."""

    layout: str
    participant: str
    arm: str
    arm_labels: dict[str, str] | None
    reference: str | None
    site: str | None
    cluster: str | None
    covariates: tuple[str, ...]
    occasions: dict[str, float] | None
    #: source column (or "*": every other recodable column) -> missing codes
    missing_codes: dict[str, tuple[Any, ...]]
    # wide
    values: tuple[ValueColumn, ...] = ()
    # long (and constants for wide)
    occasion: str | None = None
    time: str | None = None
    value: str | None = None
    measure: tuple[str, str] | None = None  # ("column", name) or ("constant", label)
    rater: tuple[str, str] | None = None

    @property
    def used_columns(self) -> list[str]:
        """Every source column the plan reads, each once, in mapping order."""
        cols: list[str] = [self.participant, self.arm]
        cols += [c for c in (self.site, self.cluster) if c is not None]
        cols += [c for c in (self.occasion, self.time) if c is not None]
        for spec in (self.measure, self.rater):
            if spec is not None and spec[0] == "column":
                cols.append(spec[1])
        if self.value is not None:
            cols.append(self.value)
        cols += [v.column for v in self.values]
        cols += list(self.covariates)
        return list(dict.fromkeys(cols))

    @property
    def text_columns(self) -> list[str]:
        """Columns holding labels or identifiers (read as text from CSV, keeping ``007``)."""
        cols = [self.participant, self.arm, self.site, self.cluster, self.occasion]
        for spec in (self.measure, self.rater):
            if spec is not None and spec[0] == "column":
                cols.append(spec[1])
        return [c for c in cols if c is not None]

    @property
    def numeric_columns(self) -> list[str]:
        """Columns that must hold numbers (outcome values, time)."""
        cols = [v.column for v in self.values]
        cols += [c for c in (self.value, self.time) if c is not None]
        return cols


@dataclass(frozen=True)
class MappingSpec:
    """A structurally valid mapping, not yet matched against a file's columns."""

    raw: dict[str, Any]
    layout: str
    occasions: dict[str, float] | None
    arm_labels: dict[str, str] | None
    pattern: re.Pattern[str] | None = None
    pattern_loose: re.Pattern[str] | None = None
    missing_codes: tuple[Any, ...] | dict[str, tuple[Any, ...]] = ()

    def resolve(self, columns: Sequence[str], *, source: str) -> Plan:
        """Match the mapping against ``columns``; raise one DataError listing every problem."""
        columns = [str(c) for c in columns]
        present = set(columns)
        log = ProblemLog()
        raw = self.raw

        def col(key: str, name: Any, required: bool = False) -> str | None:
            if name is None:
                if required:
                    log.add("missing_mapping_key", f"the mapping needs {key!r}", column=key)
                return None
            if not isinstance(name, str):
                log.add(
                    "bad_mapping",
                    f"mapping key {key!r} must name a column (a string), got {name!r}",
                    column=key,
                    value=name,
                )
                return None
            if name not in present:
                _log_unknown_column(log, name, key, columns)
                return None
            return name

        def column_or_constant(key: str) -> tuple[str, str] | None:
            spec = raw.get(key)
            if spec is None:
                return None
            if isinstance(spec, Mapping):
                return ("constant", str(spec["constant"]))
            name = col(key, spec)
            return None if name is None else ("column", name)

        participant = col("participant", raw.get("participant"), required=True)
        arm = col("arm", raw.get("arm"), required=True)
        site = col("site", raw.get("site"))
        cluster = col("cluster", raw.get("cluster"))
        covariates = tuple(
            c
            for i, name in enumerate(raw.get("covariates", ()))
            if (c := col(f"covariates[{i}]", name)) is not None
        )
        from imrstats._schema import TIDY_COLUMNS

        for name in covariates:
            if name in TIDY_COLUMNS:
                log.add(
                    "bad_mapping",
                    f"covariate {name!r} has the name of a tidy column; rename it in the data",
                    column=name,
                )
        values: tuple[ValueColumn, ...] = ()
        occasion = time = value = None
        measure = rater = None
        if self.layout == "wide":
            if "measures" in raw and isinstance(raw["measures"], Mapping):
                values = self._wide_from_measures(columns, log)
            else:
                values = self._wide_from_pattern(columns, log, source)
            measure = column_or_constant("measure")
            rater = column_or_constant("rater")
            if measure is not None and "measures" in raw and isinstance(raw["measures"], Mapping):
                log.add(
                    "bad_mapping",
                    "a measure constant only applies to a wide_pattern without {measure}",
                    column="measure",
                )
        else:
            occasion = col("occasion", raw.get("occasion"), required=True)
            time = col("time", raw.get("time"))
            value = col("value", raw.get("value"), required=True)
            measure = column_or_constant("measure")
            rater = column_or_constant("rater")
            if self.occasions is None and time is None and "time" not in raw:
                log.add(
                    "missing_mapping_key",
                    "the long layout needs 'occasions' (label -> months) or a 'time' column",
                    column="occasions",
                )

        # One column, one role.
        roles: dict[str, list[str]] = {}
        for role, name in (
            ("participant", participant),
            ("arm", arm),
            ("site", site),
            ("cluster", cluster),
            ("occasion", occasion),
            ("time", time),
            ("value", value),
            ("measure", measure[1] if measure and measure[0] == "column" else None),
            ("rater", rater[1] if rater and rater[0] == "column" else None),
        ):
            if name is not None:
                roles.setdefault(name, []).append(role)
        for v in values:
            roles.setdefault(v.column, []).append(
                f"value of {v.measure}/{v.rater or '-'}/{v.occasion}"
            )
        for name in covariates:
            roles.setdefault(name, []).append("covariate")
        for name, what in roles.items():
            if len(what) > 1:
                log.add(
                    "column_used_twice",
                    f"column {name!r} is mapped more than once: {', '.join(what)}",
                    column=name,
                )

        missing_codes = self._resolve_missing_codes(columns, log)
        log.raise_if_any("the mapping does not fit the data", source=source)
        assert participant is not None and arm is not None
        return Plan(
            layout=self.layout,
            participant=participant,
            arm=arm,
            arm_labels=self.arm_labels,
            reference=None if raw.get("reference") is None else str(raw["reference"]),
            site=site,
            cluster=cluster,
            covariates=covariates,
            occasions=self.occasions,
            missing_codes=missing_codes,
            values=values,
            occasion=occasion,
            time=time,
            value=value,
            measure=measure,
            rater=rater,
        )

    # -- wide helpers ---------------------------------------------------------------
    def _wide_from_measures(self, columns: list[str], log: ProblemLog) -> tuple[ValueColumn, ...]:
        present = set(columns)
        out: list[ValueColumn] = []
        for measure, spec in self.raw["measures"].items():
            by_rater = spec if any(isinstance(v, Mapping) for v in spec.values()) else {None: spec}
            for rater, occs in by_rater.items():
                for occ, name in occs.items():
                    key = ".".join(
                        str(p) for p in ("measures", measure, rater, occ) if p is not None
                    )
                    if name not in present:
                        _log_unknown_column(log, name, key, columns)
                        continue
                    out.append(
                        ValueColumn(name, str(measure), None if rater is None else str(rater), str(occ))
                    )
        return tuple(out)

    def _wide_from_pattern(
        self, columns: list[str], log: ProblemLog, source: str
    ) -> tuple[ValueColumn, ...]:
        assert self.pattern is not None and self.pattern_loose is not None
        raw = self.raw
        mapped = {raw.get(k) for k in ("participant", "arm", "site", "cluster")}
        mapped |= set(raw.get("covariates", ()))
        out: list[ValueColumn] = []
        for name in columns:
            if name in mapped:
                continue
            m = self.pattern.fullmatch(name)
            if m is None:
                loose = self.pattern_loose.fullmatch(name)
                if loose is not None:
                    occ = loose.group("occasion")
                    log.add(
                        "undeclared_occasion",
                        f"column {name!r} matches wide_pattern {raw['wide_pattern']!r} but its "
                        f"occasion {occ!r} is not declared in 'occasions' "
                        f"{list(self.occasions or {})}{suggest(occ, list(self.occasions or {}))}",
                        column=name,
                        value=occ,
                    )
                continue
            groups = m.groupdict()
            constant = raw.get("measure", {})
            out.append(
                ValueColumn(
                    column=name,
                    measure=groups.get("measure") or str(constant.get("constant", "")),
                    rater=groups.get("rater"),
                    occasion=groups["occasion"],
                )
            )
        if not out and not log:
            log.add(
                "pattern_no_match",
                f"wide_pattern {raw['wide_pattern']!r} matches no column; {_available(columns)}",
                column="wide_pattern",
                value=raw["wide_pattern"],
            )
        return tuple(out)

    def _resolve_missing_codes(
        self, columns: list[str], log: ProblemLog
    ) -> dict[str, tuple[Any, ...]]:
        codes = self.missing_codes
        if isinstance(codes, dict):
            out = {}
            for name, these in codes.items():
                if name != "*" and name not in set(columns):
                    _log_unknown_column(log, name, "missing_codes", columns)
                    continue
                out[name] = these
            return out
        return {"*": codes} if codes else {}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _check_codes(codes: Any, key: str, log: ProblemLog) -> tuple[Any, ...]:
    if not isinstance(codes, list | tuple):
        log.add(
            "bad_mapping",
            f"{key} must be a list of codes such as [-99, -9, 999], got {codes!r}",
            column="missing_codes",
            value=codes,
        )
        return ()
    bad = [c for c in codes if isinstance(c, bool) or not isinstance(c, int | float | str)]
    for c in bad:
        log.add(
            "bad_mapping",
            f"{key}: a missing code must be a number or a string, got {c!r}",
            column="missing_codes",
            value=c,
        )
    return tuple(c for c in codes if c not in bad)


def _compile_pattern(
    pattern: str, occasions: Sequence[str], raw: Mapping[str, Any], log: ProblemLog
) -> tuple[re.Pattern[str] | None, re.Pattern[str] | None]:
    fields = re.findall(r"\{([^{}]*)\}", pattern)
    unknown = [f for f in fields if f not in _PATTERN_FIELDS]
    for f in unknown:
        log.add(
            "bad_mapping",
            f"wide_pattern field {{{f}}} is not one of {{measure}}, {{rater}}, {{occasion}}"
            f"{suggest(f, _PATTERN_FIELDS)}",
            column="wide_pattern",
            value=pattern,
        )
    repeated = {f for f in fields if fields.count(f) > 1}
    for f in sorted(repeated):
        log.add(
            "bad_mapping", f"wide_pattern uses {{{f}}} twice", column="wide_pattern", value=pattern
        )
    if "occasion" not in fields:
        log.add(
            "bad_mapping",
            "wide_pattern must contain {occasion}, e.g. '{measure}_{rater}_{occasion}'",
            column="wide_pattern",
            value=pattern,
        )
    if "measure" not in fields and not isinstance(raw.get("measure"), Mapping):
        log.add(
            "missing_mapping_key",
            'wide_pattern has no {measure}: name the measure with "measure": {"constant": "imrs"}',
            column="measure",
        )
    if unknown or repeated or "occasion" not in fields:
        return None, None

    def alternatives(names: Sequence[str]) -> str:
        ordered = sorted((str(n) for n in names), key=len, reverse=True)
        return "|".join(re.escape(n) for n in ordered)

    def build(loose: bool) -> re.Pattern[str]:
        parts = []
        for piece in re.split(r"(\{[^{}]*\})", pattern):
            if not (piece.startswith("{") and piece.endswith("}")):
                parts.append(re.escape(piece))
                continue
            name = piece[1:-1]
            if name == "occasion":
                body = ".+?" if loose else alternatives(occasions)
            elif name == "measure" and isinstance(raw.get("measures"), list):
                body = alternatives(raw["measures"])
            elif name == "rater" and isinstance(raw.get("raters"), list):
                body = alternatives(raw["raters"])
            else:
                body = ".+?"
            parts.append(f"(?P<{name}>{body})")
        return re.compile("".join(parts))

    return build(False), build(True)


def parse_mapping(mapping: Mapping[str, Any], *, source: str | None = None) -> MappingSpec:
    """Check the structure of a mapping (no data needed); raise one DataError."""
    raw = dict(mapping)
    log = ProblemLog()
    for key in raw:
        if key not in MAPPING_KEYS:
            log.add(
                "unknown_mapping_key",
                f"unknown mapping key {key!r}{suggest(key, MAPPING_KEYS)}",
                column=str(key),
            )
    for key in ("participant", "arm"):
        if key not in raw:
            log.add("missing_mapping_key", f"the mapping needs {key!r} (a column name)", column=key)

    layout = raw.get("layout", "long" if "value" in raw else "wide")
    if layout not in ("wide", "long"):
        log.add(
            "bad_mapping",
            f"layout must be 'wide' or 'long', got {layout!r}",
            column="layout",
            value=layout,
        )
        layout = "wide"

    # occasions: label -> months, baseline first, strictly increasing
    occasions: dict[str, float] | None = None
    occ_raw = raw.get("occasions")
    if occ_raw is not None:
        if not isinstance(occ_raw, Mapping) or not occ_raw:
            log.add(
                "bad_mapping",
                "occasions must map each occasion label to months since baseline, e.g. "
                "{'baseline': 0, '9m': 9}",
                column="occasions",
                value=occ_raw,
            )
        else:
            occasions = {}
            for label, months in occ_raw.items():
                m = _number(months)
                if m is None or not math.isfinite(m) or m < 0:
                    log.add(
                        "bad_occasions",
                        f"occasion {label!r}: months since baseline must be a number >= 0, "
                        f"got {months!r}",
                        column="occasions",
                        value=months,
                    )
                    continue
                occasions[str(label)] = m
            months_seq = list(occasions.values())
            if any(b <= a for a, b in itertools.pairwise(months_seq)):
                log.add(
                    "bad_occasions",
                    f"occasions must be listed in time order, baseline first, with increasing "
                    f"months; got {occasions}",
                    column="occasions",
                )
    elif layout == "wide":
        log.add(
            "missing_mapping_key",
            "the wide layout needs 'occasions' (label -> months since baseline)",
            column="occasions",
        )

    # arm labels: raw code (as text) -> label
    arm_labels: dict[str, str] | None = None
    labels_raw = raw.get("arm_labels")
    if labels_raw is not None:
        if not isinstance(labels_raw, Mapping) or not labels_raw:
            log.add(
                "bad_mapping",
                "arm_labels must map raw arm codes to labels, e.g. {'1': 'IMR', '2': 'TAU'}",
                column="arm_labels",
                value=labels_raw,
            )
        else:
            arm_labels = {_code_text(k): str(v) for k, v in labels_raw.items()}
    if "reference" in raw and not isinstance(raw["reference"], str):
        log.add(
            "bad_mapping",
            f"reference must be an arm label (a string), got {raw['reference']!r}",
            column="reference",
            value=raw["reference"],
        )

    for key in ("measure", "rater"):
        spec = raw.get(key)
        if isinstance(spec, Mapping):
            extra = set(spec) - {"constant"}
            if extra or not isinstance(spec.get("constant"), str) or not spec["constant"].strip():
                log.add(
                    "bad_mapping",
                    f"{key} must be a column name or {{'constant': 'name'}}, got {spec!r}",
                    column=key,
                    value=spec,
                )
        elif spec is not None and layout == "wide":
            log.add(
                "bad_mapping",
                f"in the wide layout {key} cannot be a column; give a constant: "
                f"{{{key!r}: {{'constant': {spec!r}}}}}",
                column=key,
                value=spec,
            )
        elif spec is not None and not isinstance(spec, str):
            log.add(
                "bad_mapping",
                f"{key} must be a column name or {{'constant': 'name'}}, got {spec!r}",
                column=key,
                value=spec,
            )
    if not isinstance(raw.get("covariates", []), list | tuple):
        log.add(
            "bad_mapping",
            f"covariates must be a list of column names, got {raw['covariates']!r}",
            column="covariates",
        )
        raw["covariates"] = []

    # layout-specific keys
    wide_only = ("measures", "wide_pattern", "raters")
    long_only = ("occasion", "time", "value")
    wrong = long_only if layout == "wide" else wide_only
    for key in wrong:
        if key in raw:
            log.add(
                "bad_mapping",
                f"mapping key {key!r} does not apply to the {layout} layout",
                column=key,
            )
    if layout == "long" and "measure" not in raw:
        log.add(
            "missing_mapping_key",
            "the long layout needs 'measure': a column, or {'constant': 'imrs'}",
            column="measure",
        )
    pattern = loose = None
    if layout == "wide":
        has_measures = isinstance(raw.get("measures"), Mapping)
        has_pattern = "wide_pattern" in raw
        if has_measures == has_pattern:
            log.add(
                "bad_mapping",
                "the wide layout needs exactly one of 'measures' (measure -> [rater ->] "
                "occasion -> column) and 'wide_pattern' (e.g. '{measure}_{rater}_{occasion}')",
                column="measures",
            )
        if has_measures:
            _check_measures(raw["measures"], occasions, log)
            if "raters" in raw:
                log.add(
                    "bad_mapping",
                    "'raters' restricts {rater} in wide_pattern; with 'measures' raters are "
                    "the nested keys",
                    column="raters",
                )
        elif "measures" in raw and not isinstance(raw["measures"], list):
            log.add(
                "bad_mapping",
                "measures must be a mapping (measure -> occasion -> column), or, with "
                "wide_pattern, a list of measure names",
                column="measures",
            )
        if has_pattern:
            if not isinstance(raw["wide_pattern"], str):
                log.add(
                    "bad_mapping",
                    f"wide_pattern must be a string, got {raw['wide_pattern']!r}",
                    column="wide_pattern",
                )
            elif occasions:
                pattern, loose = _compile_pattern(raw["wide_pattern"], list(occasions), raw, log)
        for key in ("measures", "raters"):
            names = raw.get(key)
            if isinstance(names, list) and not all(isinstance(n, str) and n for n in names):
                log.add("bad_mapping", f"{key} must list names (strings)", column=key, value=names)

    # missing codes: a list for every outcome column, or column -> list
    codes_raw = raw.get("missing_codes", [])
    missing_codes: tuple[Any, ...] | dict[str, tuple[Any, ...]]
    if isinstance(codes_raw, Mapping):
        missing_codes = {
            str(k): _check_codes(v, f"missing_codes[{k!r}]", log) for k, v in codes_raw.items()
        }
    else:
        missing_codes = _check_codes(codes_raw, "missing_codes", log)

    log.raise_if_any("the mapping is not valid", source=source)
    return MappingSpec(
        raw=raw,
        layout=layout,
        occasions=occasions,
        arm_labels=arm_labels,
        pattern=pattern,
        pattern_loose=loose,
        missing_codes=missing_codes,
    )


def _check_measures(
    measures: Mapping[str, Any], occasions: Mapping[str, float] | None, log: ProblemLog
) -> None:
    declared = list(occasions or {})
    if not measures:
        log.add("bad_mapping", "measures is empty", column="measures")
    for measure, spec in measures.items():
        where = f"measures.{measure}"
        if not isinstance(spec, Mapping) or not spec:
            log.add(
                "bad_mapping",
                f"{where} must map occasions to columns, or raters to such mappings",
                column=where,
                value=spec,
            )
            continue
        nested = [isinstance(v, Mapping) for v in spec.values()]
        if any(nested) and not all(nested):
            log.add(
                "bad_mapping",
                f"{where} mixes occasions (occasion -> column) and raters (rater -> occasion "
                "-> column); use one level or the other",
                column=where,
            )
            continue
        by_rater = spec if all(nested) else {None: spec}
        for rater, occs in by_rater.items():
            here = where if rater is None else f"{where}.{rater}"
            if not occs:
                log.add("bad_mapping", f"{here} lists no occasions", column=here)
            for occ, name in occs.items():
                if not isinstance(name, str):
                    log.add(
                        "bad_mapping",
                        f"{here}.{occ} must name a column (a string), got {name!r}",
                        column=f"{here}.{occ}",
                        value=name,
                    )
                if occasions is not None and str(occ) not in occasions:
                    log.add(
                        "undeclared_occasion",
                        f"{here} uses occasion {occ!r}, which is not declared in 'occasions' "
                        f"{declared}{suggest(str(occ), declared)}",
                        column=f"{here}.{occ}",
                        value=str(occ),
                    )


def _code_text(code: Any) -> str:
    """A raw code as text: integral floats lose their ``.0`` (1.0 -> "1")."""
    if isinstance(code, float) and code.is_integer():
        return str(int(code))
    return str(code).strip()
