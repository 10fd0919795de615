"""Simulate IMR trials as tidy data with known truth: :func:`simulate_trial`.

The generator is fully vectorised (numpy arrays over participants x occasions x
raters; the only Python loops run over occasions and over the 15 IMRS items),
so a trial of 20,000 participants takes a fraction of a second.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from imrstats._compat import STR_DTYPE, as_str

__all__ = [
    "DESIGNS",
    "DROPOUT_MECHANISMS",
    "IMRS_ITEM_COLUMNS",
    "IMRS_ITEM_OFFSETS",
    "SimulatedTrial",
    "simulate_trial",
    "tidy_dtypes",
]

#: Trial designs :func:`simulate_trial` knows, with their arms (reference first).
DESIGNS: dict[str, tuple[str, ...]] = {
    "rct": ("TAU", "IMR"),
    "quasi": ("TAU", "IMR"),
    "prepost": ("IMR",),
}

#: Dropout mechanisms: none, missing completely at random, at random (driven by the last
#: observed score), not at random (driven by the score that goes missing).
DROPOUT_MECHANISMS: tuple[str, ...] = ("none", "mcar", "mar", "mnar")

#: Column names of the item-level frame (``SimulatedTrial.items``), item 1 first.
IMRS_ITEM_COLUMNS: tuple[str, ...] = tuple(f"imrs_{k}" for k in range(1, 16))

#: Item offsets (points on the 1-5 item scale, summing to zero) added to the mean item score
#: ``total / 15``: structured roles (5) and self-help (12) score low, hospitalisation (10),
#: medication (13), alcohol (14) and drugs (15) score high, as in IMRS samples where most
#: people are not impaired by substance use.
IMRS_ITEM_OFFSETS: tuple[float, ...] = (
    -0.3, 0.0, -0.2, -0.1, -0.8, -0.2, -0.2, -0.4, 0.2, 0.6, 0.0, -0.7, 0.5, 0.8, 0.8,
)  # fmt: skip

_IMRS_MIN, _IMRS_MAX = 15, 75
_TEXT_COLUMNS = ("participant", "site", "cluster", "measure", "rater")


@dataclass(frozen=True, repr=False)
class SimulatedTrial:
    """A simulated trial: the tidy data, the truth that generated it and optional items.

    Attributes
    ----------
    data : pandas.DataFrame
        Tidy frame (one row per participant x occasion x measure x rater; see
        :func:`simulate_trial` for the columns). Occasions after dropout keep their row
        with ``value`` NaN.
    params : dict
        The true parameters: ``design``, ``arms``, ``n_per_arm``, ``months``, ``labels``,
        ``raters``, ``fixed_effects``, ``variance_components``, ``rater_corr``,
        ``allocation``, ``groups``, ``dropout`` and ``items`` (see :func:`simulate_trial`).
    items : pandas.DataFrame or None
        Item-level IMRS responses, wide by item (``imrs_1`` ... ``imrs_15``), one row per
        row of ``data`` and in the same order; ``None`` unless ``items=True``.
    """

    data: pd.DataFrame
    params: dict[str, Any]
    items: pd.DataFrame | None = None

    def __repr__(self) -> str:
        p = self.params
        n = ", ".join(f"{arm}={k}" for arm, k in p["n_per_arm"].items())
        missing = float(self.data["value"].isna().mean()) if len(self.data) else 0.0
        return (
            f"SimulatedTrial(design={p['design']!r}, n_per_arm=({n}), "
            f"occasions={list(p['labels'])}, raters={list(p['raters'])}, "
            f"dropout={p['dropout']['mechanism']!r}, rows={len(self.data)}, "
            f"missing={missing:.1%}, items={'yes' if self.items is not None else 'no'})"
        )


# ----------------------------------------------------------------------------- validation


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_real(name: str, value: Any, low: float = -math.inf, high: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{name} must lie in [{low:g}, {high:g}], got {value!r}")
    return float(value)


def _check_choice(name: str, value: Any, choices: Sequence[str]) -> str:
    if not isinstance(value, str) or value.lower() not in choices:
        raise ValueError(f"unknown {name} {value!r}; expected one of {', '.join(choices)}")
    return value.lower()


def _check_n(n_per_arm: Any, arms: tuple[str, ...]) -> dict[str, int]:
    if isinstance(n_per_arm, Mapping):
        if set(n_per_arm) != set(arms):
            raise ValueError(
                f"n_per_arm must have exactly the keys {list(arms)} for this design, "
                f"got {sorted(map(str, n_per_arm))}"
            )
        return {arm: _check_int(f"n_per_arm[{arm!r}]", n_per_arm[arm], 1) for arm in arms}
    n = _check_int("n_per_arm", n_per_arm, 1)
    return dict.fromkeys(arms, n)


def _check_months(months: Any) -> np.ndarray:
    if isinstance(months, str | bytes) or not isinstance(months, Sequence | np.ndarray):
        raise ValueError(f"months must be a sequence of numbers, got {months!r}")
    if len(months) == 0:
        raise ValueError("months must hold at least one occasion (the baseline, 0)")
    for m in months:
        _check_real("each month", m)
    out = np.asarray(months, dtype=np.float64)
    if out[0] != 0.0:
        raise ValueError(f"months must start with the baseline 0, got {list(months)!r}")
    if np.any(np.diff(out) <= 0):
        raise ValueError(
            f"months must be strictly increasing (sorted, no duplicates), got {list(months)!r}"
        )
    return out


def _occasion_labels(months: np.ndarray, labels: Sequence[str] | None) -> tuple[str, ...]:
    if labels is None:
        return ("baseline", *(f"{m:g}m" for m in months[1:]))
    if isinstance(labels, str) or len(labels) != len(months):
        raise ValueError(f"labels must give one label per month ({len(months)}), got {labels!r}")
    if not all(isinstance(x, str) and x for x in labels) or len(set(labels)) != len(labels):
        raise ValueError(f"labels must be distinct non-empty strings, got {list(labels)!r}")
    return tuple(labels)


def _check_raters(raters: Any) -> tuple[str, ...]:
    if isinstance(raters, str):
        raters = (raters,)
    raters = tuple(raters)
    if len(raters) not in (1, 2) or not all(isinstance(r, str) and r for r in raters):
        raise ValueError(f"raters must be one or two non-empty names, got {raters!r}")
    if len(set(raters)) != len(raters):
        raise ValueError(f"raters must be distinct, got {raters!r}")
    return raters


# ----------------------------------------------------------------------------- building blocks


def _ids(prefix: str, n: int, width: int) -> np.ndarray:
    width = max(width, len(str(n)))
    digits = np.char.zfill(np.arange(1, n + 1).astype(str), width)
    return np.char.add(prefix, digits).astype(object)


def _rater_normals(gen: np.random.Generator, shape: tuple[int, ...], n_raters: int, rho: float):
    """Standard normals of shape ``shape + (n_raters,)``, correlation ``rho`` between raters."""
    z = gen.standard_normal((*shape, n_raters))
    if n_raters == 2:
        first = z[..., 0]
        second = rho * first + math.sqrt(max(0.0, 1.0 - rho * rho)) * z[..., 1]
        z = np.stack([first, second], axis=-1)
    return z


def _logit_intercept(hazard: float, coef: float) -> float:
    """Intercept a with E[expit(a + coef * Z)] = hazard for Z ~ N(0, 1) (Gauss-Hermite)."""
    from scipy.optimize import brentq
    from scipy.special import expit, logit

    if coef == 0.0:
        return float(logit(hazard))
    nodes, weights = np.polynomial.hermite_e.hermegauss(60)
    weights = weights / weights.sum()
    return float(brentq(lambda a: weights @ expit(a + coef * nodes) - hazard, -60.0, 60.0))


def _assign_groups(site: np.ndarray, imr: np.ndarray, group_size: int) -> np.ndarray:
    """Group index (0-based, -1 if not in a group) for each participant.

    IMR participants are grouped within site in id order; a site with ``m`` IMR participants
    runs ``ceil(m / group_size)`` groups whose sizes differ by at most one.
    """
    group = np.full(site.shape, -1, dtype=np.int64)
    idx = np.flatnonzero(imr)
    if idx.size == 0:
        return group
    sites, first, counts = np.unique(site[idx], return_index=True, return_counts=True)
    del sites
    n_groups = -(-counts // group_size)
    offset = np.concatenate([[0], np.cumsum(n_groups)[:-1]])
    pos = np.searchsorted(first, np.arange(idx.size), side="right") - 1
    rank = np.arange(idx.size) - first[pos]
    group[idx] = offset[pos] + (rank * n_groups[pos]) // counts[pos]
    return group


def _items_from_totals(gen: np.random.Generator, totals: np.ndarray, item_sd: float) -> np.ndarray:
    """15 integer items in 1..5 per row whose sum is exactly the (integer) total."""
    prop = totals[:, None] / 15.0 + np.asarray(IMRS_ITEM_OFFSETS)
    prop = prop + item_sd * gen.standard_normal(prop.shape)
    x = np.clip(np.rint(prop), 1.0, 5.0)
    gap = totals - x.sum(axis=1)
    todo = np.flatnonzero(gap)
    position = np.arange(15)[None, :]
    while todo.size:  # each pass moves every item with room by at most one point
        xs, gs = x[todo], gap[todo]
        sign = np.sign(gs)[:, None]
        room = sign * (xs - 3.0) < 2.0  # x < 5 when moving up, x > 1 when moving down
        # move first the items whose propensity lies furthest beyond their value
        priority = np.where(room, sign * (prop[todo] - xs), -np.inf)
        order = np.argsort(-priority, axis=1)  # ties only among unmovable items
        step = np.zeros_like(xs)
        np.put_along_axis(step, order, (position < np.abs(gs)[:, None]) * sign, axis=1)
        step = step * room
        x[todo] = xs + step
        gap[todo] = gs - step.sum(axis=1)
        todo = todo[gap[todo] != 0]
    return x


def tidy_dtypes(frame: pd.DataFrame, arms: Sequence[str], labels: Sequence[str]) -> pd.DataFrame:
    """Give ``frame`` the canonical tidy dtypes (shared by the simulator and the loader)."""
    out = frame.copy()
    for col in _TEXT_COLUMNS:
        if col in out.columns:
            out[col] = as_str(out[col])
    out["arm"] = pd.Categorical(out["arm"].astype(object), categories=list(arms))
    out["occasion"] = pd.Categorical(
        out["occasion"].astype(object), categories=list(labels), ordered=True
    )
    out["time"] = out["time"].astype(np.float64)
    value_cols = ["value"] if "value" in out.columns else list(IMRS_ITEM_COLUMNS)
    for col in value_cols:
        out[col] = out[col].astype(np.float64)
    return out


# ----------------------------------------------------------------------------- simulator


def simulate_trial(
    design: str = "rct",
    n_per_arm: int | Mapping[str, int] = 100,
    months: Sequence[float] = (0, 3, 6, 9, 12),
    *,
    labels: Sequence[str] | None = None,
    n_sites: int = 3,
    group_size: int = 8,
    intercept: float = 50.0,
    slope: float = 0.1,
    effect: float = 0.25,
    intercept_sd: float = 7.0,
    slope_sd: float = 0.2,
    intercept_slope_corr: float = -0.2,
    residual_sd: float = 4.0,
    group_sd: float = 0.1,
    site_sd: float = 0.0,
    raters: Sequence[str] = ("client", "clinician"),
    rater_corr: float = 0.5,
    rater_shift: float = -3.0,
    selection: float | None = None,
    dropout: str = "mar",
    dropout_rate: float = 0.25,
    dropout_coef: float = -0.7,
    items: bool = False,
    item_sd: float = 1.3,
    p_no_medication: float = 0.0,
    rng: int | np.random.Generator | None = None,
) -> SimulatedTrial:
    r"""Simulate a longitudinal IMR trial with IMRS outcomes as a tidy frame, with its truth.

    Parameters
    ----------
    design : {"rct", "quasi", "prepost"}, default "rct"
        ``"rct"``: TAU vs IMR, complete randomisation with fixed arm sizes. ``"quasi"``: TAU
        vs IMR, non-random allocation that depends on the baseline score (see
        ``selection``), so the arms differ at baseline. ``"prepost"``: one IMR arm.
    n_per_arm : int or mapping, default 100
        Participants per arm, or a mapping ``{"TAU": n0, "IMR": n1}`` (keys = the design's
        arms). Each must be >= 1.
    months : sequence of float, default (0, 3, 6, 9, 12)
        Assessment times in months since baseline: start with 0, strictly increasing.
    labels : sequence of str, optional
        Occasion labels, one per month. Default ``"baseline"`` then ``"3m"``, ``"6m"``, ...
    n_sites : int, default 3
        Sites ("S1", "S2", ...); participants are split into contiguous, equal-as-possible
        blocks of ids by site.
    group_size : int, default 8
        Maximum size of an IMR therapy group (IMR Fidelity Scale item 1 scores groups of
        <= 8 as full fidelity). Within each site the IMR participants form
        ``ceil(m / group_size)`` groups whose sizes differ by at most one.
    intercept : float, default 50.0
        Mean baseline IMRS total of the first rater (the client).
    slope : float, default 0.1
        Mean change per month in the reference arm (TAU; in ``"prepost"`` the IMR arm's
        slope is ``slope + effect``).
    effect : float, default 0.25
        Treatment effect on the slope: extra change per month in the IMR arm (0.25 = 3
        points over 12 months, about 0.37 baseline SD).
    intercept_sd, slope_sd : float, default 7.0, 0.2
        SDs of the participant random intercept (points) and slope (points per month).
    intercept_slope_corr : float, default -0.2
        Correlation of the participant random intercept and slope, in [-1, 1].
    residual_sd : float, default 4.0
        SD of the occasion-level residual (points). With the defaults the baseline SD is
        :math:`\sqrt{7^2 + 4^2} \approx 8.1`.
    group_sd : float, default 0.1
        SD of the IMR group random effect on the slope (points per month; 0.1 = 1.2 points
        over 12 months). TAU participants belong to no group (partial nesting).
    site_sd : float, default 0.0
        SD of a site random intercept (points), shared by both arms.
    raters : sequence of str, default ("client", "clinician")
        One or two raters. The second rater's scores are shifted by ``rater_shift``.
    rater_corr : float, default 0.5
        Correlation in [-1, 1] between the two raters' scores at the same occasion, within
        arm (before rounding and clipping). The Dutch IMRS found r = 0.37-0.69.
    rater_shift : float, default -3.0
        Mean of the second rater minus the first (clinicians rate lower).
    selection : float, optional
        ``"quasi"`` only (default -1.0 there): log-odds of allocation to IMR per SD of the
        first rater's baseline score; negative means worse-off participants are referred to
        IMR. Must be 0 or None for the other designs.
    dropout : {"none", "mcar", "mar", "mnar"}, default "mar"
        Dropout mechanism (monotone: once gone, a participant misses every later occasion,
        for every rater). ``"mar"``: the hazard depends on the last observed score of the
        first rater; ``"mnar"``: on the score the participant would have had at the
        occasion being missed; ``"mcar"``: on nothing.
    dropout_rate : float, default 0.25
        Target proportion of participants gone by the last occasion, in [0, 1). Exact in
        expectation for ``"mcar"``, approximate otherwise (the McGuire et al. 2014 review
        reports a median IMR dropout of 24%).
    dropout_coef : float, default -0.7
        Change in the log-odds of dropping out per SD of the driving score (ignored for
        ``"mcar"``); negative means lower (worse) scores drop out more.
    items : bool, default False
        Also return the 15 IMRS items (1-5) whose sum is each total (``.items``).
    item_sd : float, default 1.3
        SD of the item-level noise around ``total / 15 + offset``. With totals of SD 8,
        Cronbach's alpha of the generated items is about 0.70 (the Dutch IMRS reported
        0.69 for clients and 0.71 for clinicians); a smaller ``item_sd`` raises it.
    p_no_medication : float, default 0.0
        Needs ``items=True``: probability that a participant has no medication prescribed.
        Item 13 ("skip if none prescribed") is then missing at every occasion for them; see
        Notes.
    rng : int, numpy.random.Generator or None
        Seed or generator, normalised with :func:`numpy.random.default_rng`.

    Returns
    -------
    SimulatedTrial
        ``.data`` is the tidy frame, sorted by participant, occasion and rater, with
        ``n_participants x n_occasions x n_raters`` rows:

        - ``participant`` (text): "P0001", "P0002", ...
        - ``arm`` (categorical, reference first): categories ``["TAU", "IMR"]``, or
          ``["IMR"]`` for ``"prepost"``.
        - ``site`` (text): "S1", "S2", ...
        - ``cluster`` (text): IMR group "G01", "G02", ...; missing for TAU participants.
        - ``occasion`` (ordered categorical): ``labels``, baseline first.
        - ``time`` (float64): months since baseline.
        - ``measure`` (text): ``"imrs"``.
        - ``rater`` (text): the ``raters``.
        - ``value`` (float64): IMRS total, a whole number in [15, 75]; NaN at the occasions
          after a participant dropped out (the rows are kept so dropout stays visible).

        ``.params`` is a dict of the truth: ``fixed_effects`` (``intercept``, ``time``,
        ``arm_IMR`` = 0: the model has no arm term, though in ``"quasi"`` the arms differ
        at baseline through selection; ``time_x_arm_IMR`` = ``effect``, ``rater_shift``),
        ``variance_components`` (the SDs and the intercept-slope correlation),
        ``rater_corr``, ``allocation`` (``method``, ``selection``), ``groups``
        (``max_size``, ``n_groups``), ``dropout`` (``mechanism``, ``rate``, ``coef``,
        ``driver``, ``hazard``, ``logit_intercept``, ``center``, ``scale``) and ``items``.
        ``.items`` is the item frame (``participant``, ``arm``, ``site``, ``cluster``,
        ``occasion``, ``time``, ``rater``, ``imrs_1`` ... ``imrs_15``, float64) or None.

    Raises
    ------
    ValueError
        For an unknown design or dropout mechanism, a non-positive number of participants,
        months that do not start at 0 or are unsorted or duplicated, a correlation outside
        [-1, 1], a negative SD, or ``selection`` given for a randomised design.

    Notes
    -----
    For participant :math:`i` in arm :math:`a_i` (1 = IMR), IMR group :math:`g(i)`, site
    :math:`s(i)`, occasion time :math:`t_j` (months) and rater :math:`r`, the latent score is

    .. math::

        y^*_{ijr} = \beta_0 + \delta_r + (\beta_1 + \beta_2 a_i) t_j + b_{0ir} + b_{1ir} t_j
                    + v_{s(i)r} + a_i u_{g(i)r} t_j + e_{ijr},

    with :math:`\beta_0` = ``intercept``, :math:`\beta_1` = ``slope``, :math:`\beta_2` =
    ``effect``, :math:`\delta_r` = 0 for the first rater and ``rater_shift`` for the second,
    :math:`(b_{0ir}, b_{1ir})` bivariate normal (SDs ``intercept_sd``, ``slope_sd``,
    correlation ``intercept_slope_corr``), :math:`v \sim N(0, \text{site\_sd}^2)`,
    :math:`u \sim N(0, \text{group\_sd}^2)` (IMR arm only: partial nesting, a group effect
    on the slope because groups form after baseline) and :math:`e \sim N(0,
    \text{residual\_sd}^2)`. Every random term is drawn for both raters with correlation
    ``rater_corr`` between them (and equal variances), so the client-clinician correlation at
    any occasion within arm is exactly ``rater_corr``. The reported value is
    :math:`\min(75, \max(15, \operatorname{round}(y^*)))`, a whole IMRS sum score (round half
    to even).

    Dropout is monotone. Between occasions :math:`j-1` and :math:`j` a participant still in
    the study drops out with probability :math:`\operatorname{expit}(\alpha + \gamma z)`,
    :math:`\gamma` = ``dropout_coef``, where :math:`z` is the first rater's observed score at
    :math:`j-1` (MAR) or at :math:`j` (MNAR), standardised with the baseline mean
    ``intercept`` and SD :math:`\sqrt{\text{intercept\_sd}^2 + \text{site\_sd}^2 +
    \text{residual\_sd}^2}`, and :math:`z = 0` for MCAR. :math:`\alpha` is chosen so that
    :math:`E[\operatorname{expit}(\alpha + \gamma Z)] = h` for :math:`Z \sim N(0, 1)` with
    per-interval hazard :math:`h = 1 - (1 - \text{dropout\_rate})^{1/(J-1)}`.

    Quasi-experimental allocation ranks :math:`\text{selection}\, z_{i0} + \ell_i`
    (:math:`z_{i0}` the standardised latent baseline of the first rater, :math:`\ell_i`
    standard logistic) and sends the ``n_per_arm["IMR"]`` highest to IMR.

    Items: the integer total :math:`T` is split into 15 items in 1..5 that sum to exactly
    :math:`T`: item :math:`k` starts at :math:`\operatorname{round}(T/15 + o_k + \sigma
    \epsilon_k)` clipped to 1..5 (:math:`o_k` = ``IMRS_ITEM_OFFSETS``, :math:`\sigma` =
    ``item_sd``), then the items whose propensity lies furthest from their value are moved
    one point at a time until the sum is :math:`T`. Items are drawn from their own random
    stream, so ``items=True`` does not change ``.data``. With ``p_no_medication > 0`` item 13
    is masked (NaN) for the participants without medication; their ``value`` stays the
    15-item total that was drawn, so it equals the item sum only where item 13 is present
    (the VA scoring rule would report the 14-item sum for them).

    References
    ----------
    Bauer DJ, Sterba SK, Hallfors DD (2008). Evaluating group-based interventions when
    control participants are ungrouped. *Multivariate Behavioral Research* 43(2):210-236.
    https://doi.org/10.1080/00273170802034810

    Rubin DB (1976). Inference and missing data. *Biometrika* 63(3):581-592.
    https://doi.org/10.1093/biomet/63.3.581

    Salyers MP, Godfrey JL, Mueser KT, Labriola S (2007). Measuring illness management
    outcomes: a psychometric study of clinician and consumer rating scales for illness
    self management and recovery. *Community Mental Health Journal* 43(5):459-480.
    https://doi.org/10.1007/s10597-007-9087-6

    McGuire AB, Kukla M, Green A, Gilbride D, Mueser KT, Salyers MP (2014). Illness
    management and recovery: a review of the literature. *Psychiatric Services*
    65(2):171-179. https://doi.org/10.1176/appi.ps.201200274

    Examples
    --------
    >>> import imrstats
    >>> sim = imrstats.simulate_trial("rct", n_per_arm=50, rng=1)
    >>> sim.data.shape
    (1000, 9)
    >>> list(sim.data["arm"].cat.categories)
    ['TAU', 'IMR']
    >>> bool(sim.data.loc[sim.data["arm"] == "TAU", "cluster"].isna().all())
    True
    >>> sim.params["fixed_effects"]["time_x_arm_IMR"]
    0.25
    """
    design = _check_choice("design", design, tuple(DESIGNS))
    arms = DESIGNS[design]
    n_arm = _check_n(n_per_arm, arms)
    t = _check_months(months)
    occ_labels = _occasion_labels(t, labels)
    n_sites = _check_int("n_sites", n_sites, 1)
    group_size = _check_int("group_size", group_size, 1)
    intercept = _check_real("intercept", intercept)
    slope = _check_real("slope", slope)
    effect = _check_real("effect", effect)
    sds = {
        name: _check_real(name, value, 0.0)
        for name, value in (
            ("intercept_sd", intercept_sd),
            ("slope_sd", slope_sd),
            ("residual_sd", residual_sd),
            ("group_sd", group_sd),
            ("site_sd", site_sd),
        )
    }
    r01 = _check_real("intercept_slope_corr", intercept_slope_corr, -1.0, 1.0)
    raters = _check_raters(raters)
    rho = _check_real("rater_corr", rater_corr, -1.0, 1.0)
    rater_shift = _check_real("rater_shift", rater_shift)
    if selection is None:
        selection = -1.0 if design == "quasi" else 0.0
    selection = _check_real("selection", selection)
    if design != "quasi" and selection != 0.0:
        raise ValueError(f"selection applies to design='quasi' only, not {design!r}")
    mechanism = _check_choice("dropout", dropout, DROPOUT_MECHANISMS)
    dropout_rate = _check_real("dropout_rate", dropout_rate, 0.0, 1.0)
    if dropout_rate >= 1.0:
        raise ValueError("dropout_rate must be < 1 (someone has to stay), got 1")
    dropout_coef = _check_real("dropout_coef", dropout_coef)
    if not isinstance(items, bool | np.bool_):
        raise ValueError(f"items must be True or False, got {items!r}")
    item_sd = _check_real("item_sd", item_sd, 0.0)
    p_no_med = _check_real("p_no_medication", p_no_medication, 0.0, 1.0)
    if p_no_med > 0 and not items:
        raise ValueError("p_no_medication > 0 needs items=True (it masks item 13)")

    gen = np.random.default_rng(rng)
    g_alloc, g_person, g_group, g_site, g_resid, g_drop, g_items = (
        np.random.default_rng(s) for s in gen.integers(0, 2**63, size=7, dtype=np.uint64)
    )

    n = sum(n_arm.values())
    n_occ, n_rat = t.size, len(raters)
    shift = np.array([0.0, rater_shift][:n_rat])
    site = (np.arange(n) * n_sites) // n

    # random effects and residuals (independent of arm), shape (..., rater)
    z = _rater_normals(g_person, (n, 2), n_rat, rho)
    b0 = sds["intercept_sd"] * z[:, 0, :]
    b1 = sds["slope_sd"] * (r01 * z[:, 0, :] + math.sqrt(max(0.0, 1 - r01 * r01)) * z[:, 1, :])
    v = sds["site_sd"] * _rater_normals(g_site, (n_sites,), n_rat, rho)
    e = sds["residual_sd"] * _rater_normals(g_resid, (n, n_occ), n_rat, rho)
    baseline_sd = math.sqrt(
        sds["intercept_sd"] ** 2 + sds["site_sd"] ** 2 + sds["residual_sd"] ** 2
    )
    scale = baseline_sd if baseline_sd > 0 else 1.0

    # allocation
    n_imr = n_arm["IMR"]
    if design == "prepost":
        imr = np.ones(n, dtype=bool)
        method = "single arm"
    elif design == "rct":
        imr = g_alloc.permutation(np.arange(n) < n_imr)
        method = "complete randomisation with fixed arm sizes"
    else:
        z0 = (b0[:, 0] + v[site, 0] + e[:, 0, 0]) / scale
        score = selection * z0 + g_alloc.logistic(size=n)
        imr = np.zeros(n, dtype=bool)
        imr[np.argsort(-score, kind="stable")[:n_imr]] = True
        method = "top n_IMR of selection * z_baseline + logistic noise"
    arm_code = imr.astype(np.int64) if len(arms) == 2 else np.zeros(n, dtype=np.int64)

    group = _assign_groups(site, imr, group_size)
    n_groups = int(group.max()) + 1 if (group >= 0).any() else 0
    u = sds["group_sd"] * _rater_normals(g_group, (n_groups,), n_rat, rho)
    u_i = np.where((group >= 0)[:, None], u[np.maximum(group, 0)] if n_groups else 0.0, 0.0)

    # latent and observed scores, shape (n, n_occ, n_rat)
    slope_i = slope + effect * imr
    ystar = (
        intercept
        + shift[None, None, :]
        + (slope_i[:, None, None] + b1[:, None, :] + u_i[:, None, :]) * t[None, :, None]
        + b0[:, None, :]
        + v[site][:, None, :]
        + e
    )
    value = np.clip(np.rint(ystar), _IMRS_MIN, _IMRS_MAX)

    # dropout (monotone), driven by the first rater's observed score
    hazard = 1.0 - (1.0 - dropout_rate) ** (1.0 / (n_occ - 1)) if n_occ > 1 else 0.0
    coef = 0.0 if mechanism == "mcar" else dropout_coef
    active = mechanism != "none" and hazard > 0.0
    alpha = _logit_intercept(hazard, coef) if active else -math.inf
    observed = np.ones((n, n_occ), dtype=bool)
    if active:
        from scipy.special import expit

        unif = g_drop.random((n, n_occ))
        for j in range(1, n_occ):
            driver = value[:, j - 1 if mechanism == "mar" else j, 0]
            prob = expit(alpha + coef * (driver - intercept) / scale)
            observed[:, j] = observed[:, j - 1] & ~(unif[:, j] < prob)
    value = np.where(observed[:, :, None], value, np.nan)

    # the tidy frame
    rows = n * n_occ * n_rat
    pid = np.repeat(np.arange(n), n_occ * n_rat)
    occ = np.tile(np.repeat(np.arange(n_occ), n_rat), n)
    rat = np.tile(np.arange(n_rat), n * n_occ)
    p_labels = _ids("P", n, 4)
    s_labels = _ids("S", n_sites, 1)
    g_labels = _ids("G", max(n_groups, 1), 2)
    cluster_i = np.where(group >= 0, g_labels[np.maximum(group, 0)], None)
    data = pd.DataFrame(
        {
            "participant": pd.array(p_labels[pid], dtype=STR_DTYPE),
            "arm": pd.Categorical.from_codes(arm_code[pid], categories=list(arms)),
            "site": pd.array(s_labels[site][pid], dtype=STR_DTYPE),
            "cluster": pd.array(cluster_i[pid], dtype=STR_DTYPE),
            "occasion": pd.Categorical.from_codes(occ, categories=list(occ_labels), ordered=True),
            "time": t[occ],
            "measure": pd.array(np.full(rows, "imrs", dtype=object), dtype=STR_DTYPE),
            "rater": pd.array(np.array(raters, dtype=object)[rat], dtype=STR_DTYPE),
            "value": value.reshape(rows),
        }
    )

    item_frame = None
    if items:
        totals = np.nan_to_num(value, nan=float(_IMRS_MIN)).reshape(rows)
        x = _items_from_totals(g_items, totals, item_sd)
        x[~np.repeat(observed.reshape(-1), n_rat)] = np.nan
        if p_no_med > 0:
            no_med = g_items.random(n) < p_no_med
            x[no_med[pid], 12] = np.nan
        item_frame = data.drop(columns=["measure", "value"])
        item_frame = pd.concat(
            [item_frame, pd.DataFrame(x, columns=list(IMRS_ITEM_COLUMNS))], axis=1
        )

    params: dict[str, Any] = {
        "design": design,
        "arms": arms,
        "n_per_arm": n_arm,
        "months": tuple(float(m) for m in t),
        "labels": occ_labels,
        "raters": raters,
        "fixed_effects": {
            "intercept": intercept,
            "time": slope,
            "arm_IMR": 0.0,
            "time_x_arm_IMR": effect,
            "rater_shift": rater_shift,
        },
        "variance_components": {
            **sds,
            "intercept_slope_corr": r01,
        },
        "rater_corr": rho,
        "allocation": {"method": method, "selection": selection},
        "groups": {"max_size": group_size, "n_groups": n_groups, "effect_on": "slope"},
        "dropout": {
            "mechanism": mechanism,
            "rate": dropout_rate,
            "coef": coef,
            "driver": raters[0],
            "hazard": hazard,
            "logit_intercept": alpha,
            "center": intercept,
            "scale": scale,
        },
        "items": {
            "generated": bool(items),
            "item_sd": item_sd,
            "offsets": IMRS_ITEM_OFFSETS,
            "p_no_medication": p_no_med,
        },
    }
    return SimulatedTrial(data=data, params=params, items=item_frame)
