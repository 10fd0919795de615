"""Coefficient accessors and the coefficient table shared by :class:`MetaResult` and
:class:`MultilevelResult` (both keep their fit in ``.fit`` with ``beta``, ``se``, ``vcov``,
``statistic``, ``p_value``, ``df``, ``crit`` and the Q/QM tests)."""

from __future__ import annotations

import html
from typing import Any

import numpy as np
import pandas as pd

from imrstats.meta._tables import tidy_frame

__all__ = ["CoefficientsMixin"]


def _scalar_or_array(values: np.ndarray) -> float | np.ndarray:
    return float(values[0]) if values.shape[0] == 1 else values.copy()


def _from_fit(name: str, doc: str, *, per_term: bool = False) -> Any:
    """A read-only property returning ``self.fit.<name>`` (a float for a single coefficient
    and a copy of the array otherwise when ``per_term``)."""
    if per_term:

        def get(self: Any) -> Any:
            return _scalar_or_array(getattr(self.fit, name))
    else:

        def get(self: Any) -> Any:
            return getattr(self.fit, name)

    get.__name__ = name
    return property(get, doc=doc)


class CoefficientsMixin:
    """Coefficient attributes, ``to_frame`` and the coefficient part of the displays."""

    X: np.ndarray
    terms: tuple[str, ...]
    labels: tuple[str, ...] | None
    test: str
    level: float
    fit: Any

    @property
    def k(self) -> int:
        """Number of studies (of effects, in a three-level model)."""
        return int(self.X.shape[0])

    @property
    def p(self) -> int:
        """Number of coefficients."""
        return int(self.X.shape[1])

    @property
    def study_labels(self) -> list[str]:
        """Study (effect) labels (the given ``labels`` or "1", "2", ...)."""
        if self.labels is None:
            return [str(i + 1) for i in range(self.k)]
        return list(self.labels)

    @property
    def coef(self) -> np.ndarray:
        """All coefficients (array of length p)."""
        return self.fit.beta.copy()

    @property
    def vcov(self) -> np.ndarray:
        """Variance-covariance matrix of the coefficients (p x p)."""
        return self.fit.vcov.copy()

    estimate = _from_fit(
        "beta", "Pooled estimate (intercept-only model) or the coefficients.", per_term=True
    )
    std_error = _from_fit(
        "se",
        'Standard error(s) (Knapp-Hartung-scaled for ``test="knha"``/``"adhoc"``; '
        "model-based otherwise).",
        per_term=True,
    )
    statistic = _from_fit("statistic", "z or t statistic(s).", per_term=True)
    p_value = _from_fit("p_value", "Two-sided p-value(s).", per_term=True)
    df = _from_fit("df", "Degrees of freedom of the t tests (``k - p``); NaN for z tests.")
    vt = _from_fit(
        "vt", 'metafor\'s "typical" within-study variance ``(k - p) / tr(P)``, weights 1/vi.'
    )
    Q = _from_fit("QE", "Cochran's Q (test of (residual) heterogeneity, weights ``1/vi``).")
    Q_df = _from_fit("QE_df", "Degrees of freedom of Q (``k - p``).")
    Q_p = _from_fit("QE_p", "p-value of Q (chi-square, ``k - p`` df).")
    QM = _from_fit("QM", "Omnibus test of the moderators (chi-square for z tests, else F).")
    QM_df = _from_fit(
        "QM_df", "(numerator df, denominator df) of QM (denominator NaN for a chi-square test)."
    )
    QM_p = _from_fit("QM_p", "p-value of QM.")

    @property
    def ci_low(self) -> float | np.ndarray:
        """Lower confidence limit(s) at ``level``."""
        return _scalar_or_array(self.fit.beta - self.fit.crit * self.fit.se)

    @property
    def ci_high(self) -> float | np.ndarray:
        """Upper confidence limit(s) at ``level``."""
        return _scalar_or_array(self.fit.beta + self.fit.crit * self.fit.se)

    def to_frame(self) -> pd.DataFrame:
        """Coefficients: term, estimate, std_error, statistic, df, p_value, ci_low, ci_high."""
        f = self.fit
        return tidy_frame({
            "term": list(self.terms), "estimate": f.beta, "std_error": f.se,
            "statistic": f.statistic, "df": np.full(self.p, f.df), "p_value": f.p_value,
            "ci_low": f.beta - f.crit * f.se, "ci_high": f.beta + f.crit * f.se,
        })  # fmt: skip

    # ------------------------------------------------------------------ display parts
    def _estimate_text(self) -> str:
        """``estimate=<b0> [<lo>, <hi>]`` of the first coefficient (for ``__repr__``)."""
        f = self.fit
        return (f"estimate={f.beta[0]:.4g} [{f.beta[0] - f.crit * f.se[0]:.4g}, "
                f"{f.beta[0] + f.crit * f.se[0]:.4g}]")  # fmt: skip

    def _moderator_test_line(self) -> str:
        """``Test of moderators: QM(df) = ..., p = ...`` (F(df1, df2) for t tests)."""
        d1, d2 = self.QM_df
        qm = f"QM({d1:g}) = {self.QM:.4f}" if self.test == "z" else (
            f"F({d1:g}, {d2:g}) = {self.QM:.4f}")  # fmt: skip
        return f"Test of moderators: {qm}, p = {self.QM_p:.4g}"

    def _coefficient_lines(self) -> list[str]:
        """The plain-text coefficient table of ``summary()`` (a blank line first)."""
        pct = f"{100 * self.level:g} %"
        lines = ["", f"{'term':<16}{'estimate':>11}{'std_error':>11}{'statistic':>11}"
                     f"{'p_value':>11}   {pct} CI"]  # fmt: skip
        for r in self.to_frame().itertuples(index=False):
            lines.append(
                f"{r.term:<16}{r.estimate:>11.4f}{r.std_error:>11.4f}{r.statistic:>11.4f}"
                f"{r.p_value:>11.4g}   [{r.ci_low:.4f}, {r.ci_high:.4f}]"
            )
        if self.test != "z":
            lines.append(f"(t tests on {self.df:g} df)")
        return lines

    def _html(self, model_name: str, heterogeneity: str) -> str:
        """``_repr_html_``: the model name, a heterogeneity line and the coefficient table."""
        pct = f"{100 * self.level:g} %"
        head = "".join(f"<th>{html.escape(c)}</th>" for c in
                       ("term", "estimate", "std_error", "statistic", "p_value", f"{pct} CI"))  # fmt: skip
        body = "".join(
            f"<tr><td>{html.escape(r.term)}</td><td>{r.estimate:.4f}</td>"
            f"<td>{r.std_error:.4f}</td><td>{r.statistic:.4f}</td><td>{r.p_value:.4g}</td>"
            f"<td>[{r.ci_low:.4f}, {r.ci_high:.4f}]</td></tr>"
            for r in self.to_frame().itertuples(index=False)
        )
        return (f"<div><p><b>{html.escape(model_name)}</b></p><p>{html.escape(heterogeneity)}</p>"
                f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>")  # fmt: skip
