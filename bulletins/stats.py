"""Experiment statistics for bulletin reports: the uplift of a variant over the control arm, with
intervals, p-values and sample sizes, and a simulation that checks the intervals' coverage.

Pure Python, NumPy and SciPy, no Django: usable as is in a notebook.

A rate is successes over trials: CTR is unique human clicks over delivered emails, conversion
rate conversions over delivered. `uplift` compares a variant arm with the control arm:

- the absolute difference (variant rate - control rate) with Newcombe's hybrid score interval
  (method 10 of Newcombe 1998, built from each arm's Wilson interval), which keeps its coverage
  at small counts and at rates near 0 or 1, where the Wald interval does not;
- the relative uplift (variant rate / control rate - 1) with the Katz log rate-ratio interval
  (the delta method on log(p_v / p_c)). When a cell of the 2x2 table is 0 (an arm without
  successes, or with nothing but successes), 0.5 is added to every cell (successes + 0.5 and
  trials + 1 in both arms) for the point estimate and its interval alike, and
  `continuity_corrected` says so: without it the ratio would be 0 or infinite and its log
  undefined, or the interval would shrink to a point when both arms are at 100%. When neither
  arm has a success the ratio is undefined and the relative uplift is None;
- a two-sided p-value for "the rates are equal": the pooled two-proportion z-test (the same as
  the Pearson chi-square test without Yates' correction), or Fisher's exact test when a cell of
  the 2x2 table expects fewer than 5 counts under the null.

An arm with no trials gives a result whose statistics are None and whose `reason` says why: a
report renders it instead of failing. The interval and the p-value come from different methods,
so at the margin (p close to 1 - confidence) they can disagree on significance.

Sample sizes use the two-sided two-proportion z-test's normal approximation (Fleiss, without
continuity correction) with equal arms:

    n = (z_{1-a/2} * sqrt(2 * pbar * (1 - pbar)) + z_{power} * sqrt(p1 q1 + p2 q2))^2 / (p2 - p1)^2

with p1 the baseline, p2 = p1 * (1 + relative uplift), pbar = (p1 + p2) / 2, q = 1 - p. For
unequal arms `Uplift.underpowered` uses the equal-arm size with the same variance,
2 n_c n_v / (n_c + n_v).

`simulate_experiment` and `interval_coverage` push a simulated population with a known true
uplift through deliveries, opens, clicks and conversions and count how often `uplift`'s
intervals contain the true value (see `simulate_experiment` for the model).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import optimize, special, stats

Metric = Literal["ctr", "conversion_rate"]

MIN_EXPECTED_COUNT = 5  # below this expected cell count the p-value is Fisher's exact test
HASH_BUCKETS = 10_000  # as recommendations.services.experiments: arms share 10,000 buckets


# ---------------------------------------------------------------------------------------------
# Validation


def _count(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return int(value)


def _real(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def _open_unit(name: str, value: object) -> float:
    """A probability strictly between 0 and 1 (confidence, power, a baseline rate)."""
    number = _real(name, value)
    if not 0 < number < 1:
        raise ValueError(f"{name} must be between 0 and 1 (exclusive), got {value!r}")
    return number


def _z(confidence: float) -> float:
    """The two-sided critical value: 1.959964 for 95%."""
    return float(special.ndtri(1 - (1 - confidence) / 2))


# ---------------------------------------------------------------------------------------------
# Intervals and tests


def wilson_interval(
    *, successes: int, trials: int, confidence: float = 0.95
) -> tuple[float, float]:
    """Wilson's score interval for one rate: within [0, 1], sensible at 0 and at 100%."""
    successes, trials = _count("successes", successes), _count("trials", trials)
    if successes > trials:
        raise ValueError(f"successes ({successes}) must not exceed trials ({trials})")
    if trials == 0:
        raise ValueError("trials must be > 0")
    confidence = _open_unit("confidence", confidence)
    return _wilson(successes, trials, _z(confidence))


def _wilson(successes: int, trials: int, z: float) -> tuple[float, float]:
    z2 = z * z
    centre = (successes + z2 / 2) / (trials + z2)
    half = z / (trials + z2) * math.sqrt(successes * (trials - successes) / trials + z2 / 4)
    # at 0 and 100% the formula gives the bound exactly, up to rounding
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return low, high


def _newcombe(
    control_successes: int,
    control_trials: int,
    variant_successes: int,
    variant_trials: int,
    z: float,
) -> tuple[float, float]:
    """Newcombe's hybrid score interval for variant rate - control rate."""
    p_c, p_v = control_successes / control_trials, variant_successes / variant_trials
    low_c, high_c = _wilson(control_successes, control_trials, z)
    low_v, high_v = _wilson(variant_successes, variant_trials, z)
    difference = p_v - p_c
    low = difference - math.hypot(p_v - low_v, high_c - p_c)
    high = difference + math.hypot(high_v - p_v, p_c - low_c)
    return max(-1.0, low), min(1.0, high)


def _p_value(
    control_successes: int, control_trials: int, variant_successes: int, variant_trials: int
) -> tuple[float, str]:
    """Two-sided p-value of equal rates: pooled z-test, or Fisher's exact test at small counts."""
    successes = control_successes + variant_successes
    trials = control_trials + variant_trials
    failures = trials - successes
    smallest_arm = min(control_trials, variant_trials)
    if smallest_arm * min(successes, failures) / trials < MIN_EXPECTED_COUNT:
        table = [
            [variant_successes, variant_trials - variant_successes],
            [control_successes, control_trials - control_successes],
        ]
        p_value = stats.fisher_exact(table, alternative="two-sided").pvalue
        return min(1.0, float(p_value)), "fisher"
    pooled = successes / trials
    se = math.sqrt(pooled * (1 - pooled) * (1 / control_trials + 1 / variant_trials))
    z = (variant_successes / variant_trials - control_successes / control_trials) / se
    return math.erfc(abs(z) / math.sqrt(2)), "z"


# ---------------------------------------------------------------------------------------------
# Sample size and power


def _arm_rates(baseline_rate: float, relative_uplift: float) -> tuple[float, float]:
    baseline_rate = _open_unit("baseline_rate", baseline_rate)
    relative_uplift = _real("relative_uplift", relative_uplift)
    if relative_uplift == 0:
        raise ValueError("relative_uplift must not be 0: no sample size detects no difference")
    varied = baseline_rate * (1 + relative_uplift)
    if not 0 < varied <= 1:
        raise ValueError(
            f"relative_uplift {relative_uplift!r} takes the baseline {baseline_rate!r} to "
            f"{varied!r}, outside (0, 1]"
        )
    return baseline_rate, varied


def _trials_needed(p1: float, p2: float, z_alpha: float, z_power: float) -> float:
    mean = (p1 + p2) / 2
    spread = z_alpha * math.sqrt(2 * mean * (1 - mean)) + z_power * math.sqrt(
        p1 * (1 - p1) + p2 * (1 - p2)
    )
    return spread * spread / ((p2 - p1) ** 2)


def sample_size_per_arm(
    *, baseline_rate: float, relative_uplift: float, confidence: float = 0.95, power: float = 0.8
) -> int:
    """Trials per arm (equal arms) for a two-sided two-proportion z-test at `confidence` to
    detect `relative_uplift` over `baseline_rate` with probability `power`.

    Baseline 10%, +20% (10% -> 12%), 95%, 80%: 3,841 per arm (3,840.8 rounded up)."""
    p1, p2 = _arm_rates(baseline_rate, relative_uplift)
    z_alpha = _z(_open_unit("confidence", confidence))
    z_power = float(special.ndtri(_open_unit("power", power)))
    needed = _trials_needed(p1, p2, z_alpha, z_power)
    return math.ceil(needed - 1e-9)  # 1e-9: an exact whole number stays itself despite rounding


def achieved_power(
    *,
    baseline_rate: float,
    relative_uplift: float,
    trials_per_arm: float,
    confidence: float = 0.95,
) -> float:
    """The probability that the z-test at `confidence` rejects equal rates when the true rates
    are the baseline and the baseline times (1 + relative_uplift), with `trials_per_arm` in
    each arm (the opposite tail neglected, as in `sample_size_per_arm`, its inverse)."""
    p1, p2 = _arm_rates(baseline_rate, relative_uplift)
    trials = _real("trials_per_arm", trials_per_arm)
    if trials <= 0:
        raise ValueError(f"trials_per_arm must be > 0, got {trials_per_arm!r}")
    z_alpha = _z(_open_unit("confidence", confidence))
    mean = (p1 + p2) / 2
    spread = math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
    score = (abs(p2 - p1) * math.sqrt(trials) - z_alpha * math.sqrt(2 * mean * (1 - mean))) / spread
    return float(special.ndtr(score))


def detectable_uplift(
    *,
    baseline_rate: float,
    trials_per_arm: float,
    confidence: float = 0.95,
    power: float = 0.8,
) -> float:
    """The smallest relative increase over `baseline_rate` that `trials_per_arm` per arm detect
    with probability `power` (the inverse of `sample_size_per_arm` in the uplift, solved with
    Brent's method). `math.inf` when even a variant rate of 100% is not detectable."""
    baseline_rate = _open_unit("baseline_rate", baseline_rate)
    trials = _real("trials_per_arm", trials_per_arm)
    if trials <= 0:
        raise ValueError(f"trials_per_arm must be > 0, got {trials_per_arm!r}")
    z_alpha = _z(_open_unit("confidence", confidence))
    z_power = float(special.ndtri(_open_unit("power", power)))
    largest = 1 / baseline_rate - 1  # the variant at 100%

    def excess(relative: float) -> float:
        p2 = baseline_rate * (1 + relative)
        return _trials_needed(baseline_rate, p2, z_alpha, z_power) - trials

    if excess(largest) > 0:
        return math.inf
    smallest = largest * 1e-9
    if excess(smallest) <= 0:
        return smallest
    return float(optimize.brentq(excess, smallest, largest, xtol=1e-12, rtol=1e-10))


def _signed_percent(value: float) -> str:
    return f"{value:+.1%}" if abs(value) < 10 else f"{value:+,.0%}"


# ---------------------------------------------------------------------------------------------
# The uplift of a variant over the control


@dataclass(frozen=True)
class Uplift:
    """A variant's rate against the control's. Rates, differences and uplifts are fractions
    (0.012 is 1.2%, relative_uplift 0.25 is +25%). Statistics are None when they are undefined;
    `reason` then says why."""

    control_successes: int
    control_trials: int
    variant_successes: int
    variant_trials: int
    confidence: float
    control_rate: float | None = None
    variant_rate: float | None = None
    difference: float | None = None
    difference_low: float | None = None
    difference_high: float | None = None
    relative_uplift: float | None = None
    relative_low: float | None = None
    relative_high: float | None = None
    p_value: float | None = None
    test: Literal["z", "fisher"] | None = None
    continuity_corrected: bool = False
    reason: str | None = None

    @property
    def significant(self) -> bool:
        """The p-value is below 1 - confidence (0.05 at 95%)."""
        return self.p_value is not None and self.p_value < 1 - self.confidence

    @property
    def equal_arm_trials(self) -> float:
        """The equal-arm size with the same variance as these arms: 2 n_c n_v / (n_c + n_v)."""
        total = self.control_trials + self.variant_trials
        return 2 * self.control_trials * self.variant_trials / total if total else 0.0

    def underpowered(self, *, relative_uplift_wanted: float, power: float = 0.8) -> str | None:
        """A warning when these arms are too small to detect `relative_uplift_wanted` over the
        observed control rate with probability `power` at this result's confidence; None when
        they are large enough. Unequal arms count as `equal_arm_trials` per arm; the smallest
        detectable uplift it quotes is an increase."""
        wanted = _real("relative_uplift_wanted", relative_uplift_wanted)
        if wanted == 0 or wanted <= -1:
            raise ValueError(
                f"relative_uplift_wanted must be above -1 and not 0, got {relative_uplift_wanted!r}"
            )
        power = _open_unit("power", power)
        needed_for = _signed_percent(wanted)
        if self.control_rate is None:
            return f"Cannot check the sample size needed to detect {needed_for}: {self.reason}."
        if self.control_rate in (0.0, 1.0):
            return (
                f"Cannot check the sample size needed to detect {needed_for}: the control rate "
                f"is {self.control_rate:.0%}, no baseline to measure an uplift from."
            )
        if self.control_rate * (1 + wanted) > 1:
            return (
                f"Cannot check the sample size needed to detect {needed_for}: it would take the "
                f"control rate of {self.control_rate:.2%} past 100%."
            )
        needed = sample_size_per_arm(
            baseline_rate=self.control_rate,
            relative_uplift=wanted,
            confidence=self.confidence,
            power=power,
        )
        have = self.equal_arm_trials
        if have >= needed:
            return None
        detectable = detectable_uplift(
            baseline_rate=self.control_rate,
            trials_per_arm=have,
            confidence=self.confidence,
            power=power,
        )
        smallest = (
            "no uplift is detectable at this size"
            if math.isinf(detectable)
            else f"the smallest uplift detectable at this size is {_signed_percent(detectable)}"
        )
        arms = (
            f"{have:,.0f} here"
            if self.control_trials == self.variant_trials
            else f"{have:,.0f} here (equal-arm equivalent of {self.control_trials:,} control and "
            f"{self.variant_trials:,} variant)"
        )
        return (
            f"Below the sample size needed to detect {needed_for}: {needed:,} per arm for "
            f"{power:.0%} power at {self.confidence:.0%} confidence from a control rate of "
            f"{self.control_rate:.2%}, {arms}; {smallest}."
        )


def uplift(
    *,
    control_successes: int,
    control_trials: int,
    variant_successes: int,
    variant_trials: int,
    confidence: float = 0.95,
) -> Uplift:
    """The variant's rate against the control's (CTR: unique clicks over delivered).

    Edges: an arm without trials gives rates and statistics None and a `reason`; no successes
    in either arm gives a difference of 0 with its interval but no relative uplift; an arm with
    no successes, or nothing but successes, gives a continuity-corrected relative uplift
    (module docstring)."""
    control_successes = _count("control_successes", control_successes)
    control_trials = _count("control_trials", control_trials)
    variant_successes = _count("variant_successes", variant_successes)
    variant_trials = _count("variant_trials", variant_trials)
    if control_successes > control_trials:
        raise ValueError(
            f"control_successes ({control_successes}) must not exceed control_trials "
            f"({control_trials})"
        )
    if variant_successes > variant_trials:
        raise ValueError(
            f"variant_successes ({variant_successes}) must not exceed variant_trials "
            f"({variant_trials})"
        )
    confidence = _open_unit("confidence", confidence)
    counts = {
        "control_successes": control_successes,
        "control_trials": control_trials,
        "variant_successes": variant_successes,
        "variant_trials": variant_trials,
        "confidence": confidence,
    }
    empty = [arm for arm in ("control", "variant") if counts[f"{arm}_trials"] == 0]
    if empty:
        return Uplift(**counts, reason=f"no trials in the {' and '.join(empty)} arm")

    z = _z(confidence)
    control_rate = control_successes / control_trials
    variant_rate = variant_successes / variant_trials
    difference_low, difference_high = _newcombe(
        control_successes, control_trials, variant_successes, variant_trials, z
    )
    p_value, test = _p_value(control_successes, control_trials, variant_successes, variant_trials)
    result = {
        "control_rate": control_rate,
        "variant_rate": variant_rate,
        "difference": variant_rate - control_rate,
        "difference_low": difference_low,
        "difference_high": difference_high,
        "p_value": p_value,
        "test": test,
    }
    if control_successes == 0 and variant_successes == 0:
        reason = "no successes in either arm: the relative uplift is undefined"
        return Uplift(**counts, **result, reason=reason)

    cells = (control_successes, control_trials - control_successes)
    cells += (variant_successes, variant_trials - variant_successes)
    corrected = min(cells) == 0
    half = 0.5 if corrected else 0.0
    x_c, n_c = control_successes + half, control_trials + 2 * half
    x_v, n_v = variant_successes + half, variant_trials + 2 * half
    log_ratio = math.log((x_v / n_v) / (x_c / n_c))
    se = math.sqrt(max(0.0, 1 / x_v - 1 / n_v + 1 / x_c - 1 / n_c))
    return Uplift(
        **counts,
        **result,
        relative_uplift=math.expm1(log_ratio),
        relative_low=math.expm1(log_ratio - z * se),
        relative_high=math.expm1(log_ratio + z * se),
        continuity_corrected=corrected,
    )


# ---------------------------------------------------------------------------------------------
# Simulation


@dataclass(frozen=True)
class ArmOutcome:
    """What one arm's deliveries gave. `clicks` counts unique human clicks: deliveries clicked
    at least once; `conversions` counts clicked deliveries that converted."""

    users: int
    delivered: int
    opens: int
    clicks: int
    conversions: int

    def successes(self, metric: Metric) -> int:
        return self.clicks if metric == "ctr" else self.conversions


@dataclass(frozen=True)
class SimulatedExperiment:
    """One simulated experiment and the expected rates it was drawn from."""

    control: ArmOutcome
    variant: ArmOutcome
    true_control_ctr: float
    true_variant_ctr: float
    conversion_rate: float

    def true_rates(self, metric: Metric = "ctr") -> tuple[float, float]:
        """The arms' expected rates (control, variant) of `metric` per delivered email."""
        factor = 1.0 if metric == "ctr" else self.conversion_rate
        return self.true_control_ctr * factor, self.true_variant_ctr * factor

    def true_relative_uplift(self, metric: Metric = "ctr") -> float:
        control, variant = self.true_rates(metric)
        return variant / control - 1

    def true_difference(self, metric: Metric = "ctr") -> float:
        control, variant = self.true_rates(metric)
        return variant - control

    def uplift(self, *, metric: Metric = "ctr", confidence: float = 0.95) -> Uplift:
        return uplift(
            control_successes=self.control.successes(metric),
            control_trials=self.control.delivered,
            variant_successes=self.variant.successes(metric),
            variant_trials=self.variant.delivered,
            confidence=confidence,
        )


def _hash_buckets(user_ids: np.ndarray, salt: int) -> np.ndarray:
    """A stable bucket in [0, HASH_BUCKETS) per user id (SplitMix64's finalizer over id + salt),
    as the sender's SHA-256 bucket: fixed per user, uniform and independent of behaviour."""
    with np.errstate(over="ignore"):
        h = user_ids.astype(np.uint64) + np.uint64(salt)
        h = (h ^ (h >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        h = (h ^ (h >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        h ^= h >> np.uint64(31)
    return (h % np.uint64(HASH_BUCKETS)).astype(np.int64)


def _propensities(
    rng: np.random.Generator, mean: float, concentration: float | None, size: int
) -> np.ndarray | float:
    """Per-user probabilities with mean `mean`: Beta(mean c, (1 - mean) c) with c the
    concentration, or the mean itself for every user when concentration is None."""
    if concentration is None:
        return mean
    return rng.beta(mean * concentration, (1 - mean) * concentration, size=size)


def _occurrences(
    rng: np.random.Generator, tries: np.ndarray | int, p: np.ndarray | float, size: int
) -> np.ndarray:
    """Per user, how many of `tries` happen, each with the user's probability `p`."""
    if isinstance(tries, int) and tries == 1:
        return (rng.random(size) < p).astype(np.int64)  # a Bernoulli draw, 10x faster
    return rng.binomial(tries, p, size=size)


def _arm_simulate(
    rng: np.random.Generator,
    *,
    users: int,
    sends_per_user: int,
    open_rate: float,
    click_rate: float,
    conversion_rate: float,
    concentration: float | None,
) -> ArmOutcome:
    """One arm: each user's propensities, then opens, clicks and conversions per delivery."""
    opens = _occurrences(
        rng, sends_per_user, _propensities(rng, open_rate, concentration, users), users
    )
    opens_of_openers = opens[opens > 0]  # click propensities matter only for users who open
    openers = opens_of_openers.size
    tries = 1 if sends_per_user == 1 else opens_of_openers
    clicks = _occurrences(
        rng, tries, _propensities(rng, click_rate, concentration, openers), openers
    )
    total_clicks = int(clicks.sum())
    return ArmOutcome(
        users=users,
        delivered=users * sends_per_user,
        opens=int(opens.sum()),
        clicks=total_clicks,
        conversions=int(rng.binomial(total_clicks, conversion_rate)),
    )


def simulate_experiment(
    *,
    rng: np.random.Generator,
    n_users: int,
    control_rate: float,
    true_relative_uplift: float,
    open_rate: float = 0.25,
    conversion_rate: float = 0.05,
    variant_share: float = 0.5,
    concentration: float | None = 5.0,
    sends_per_user: int = 1,
) -> SimulatedExperiment:
    """A population of `n_users` users split between control and variant by a stable hash of
    their id (`variant_share` of the 10,000 buckets to the variant), each delivered
    `sends_per_user` emails.

    Users differ: each has an open propensity drawn from Beta with mean `open_rate` and a
    click-given-open propensity drawn from Beta with mean `control_rate / open_rate` in the
    control and `control_rate * (1 + true_relative_uplift) / open_rate` in the variant, both
    with `concentration` (alpha + beta; smaller is more varied; None: all users alike). A
    delivered email is opened with the user's open propensity, an opened one clicked with the
    click propensity, a clicked one converts with `conversion_rate`.

    The true values are defined by the parameters: each arm's expected CTR (unique clicks per
    delivered email) is open_rate times its mean click-given-open propensity (the two
    propensities are independent), so the true relative uplift on CTR, the ratio of the arms'
    expected CTRs minus 1, is exactly `true_relative_uplift`, and the true difference
    `control_rate * true_relative_uplift`. Conversion rate per delivered email has the same
    relative uplift.

    With one send per user every delivery is an independent trial and the arms' counts are
    binomial whatever the spread of users. With several sends a user's deliveries are
    correlated and the binomial intervals are too narrow: that is what `sends_per_user` shows.
    """
    n_users = _count("n_users", n_users)
    if n_users == 0:
        raise ValueError("n_users must be > 0")
    open_rate = _open_unit("open_rate", open_rate)
    control_rate = _open_unit("control_rate", control_rate)
    true_relative_uplift = _real("true_relative_uplift", true_relative_uplift)
    conversion_rate = _real("conversion_rate", conversion_rate)
    if not 0 <= conversion_rate <= 1:
        raise ValueError(f"conversion_rate must be between 0 and 1, got {conversion_rate!r}")
    variant_share = _open_unit("variant_share", variant_share)
    if concentration is not None and not _real("concentration", concentration) > 0:
        raise ValueError(f"concentration must be > 0 or None, got {concentration!r}")
    sends_per_user = _count("sends_per_user", sends_per_user)
    if sends_per_user == 0:
        raise ValueError("sends_per_user must be > 0")
    control_click = control_rate / open_rate
    variant_click = control_click * (1 + true_relative_uplift)
    if not control_click < 1:
        raise ValueError(
            f"control_rate ({control_rate!r}) must be below open_rate ({open_rate!r}): "
            "clicks need opens"
        )
    if not 0 < variant_click < 1:
        raise ValueError(
            f"true_relative_uplift ({true_relative_uplift!r}) puts the variant's CTR at "
            f"{control_rate * (1 + true_relative_uplift)!r}, outside (0, open_rate={open_rate!r})"
        )

    salt = int(rng.integers(0, 2**63))
    buckets = _hash_buckets(np.arange(n_users), salt)
    variant_users = int(np.count_nonzero(buckets < round(variant_share * HASH_BUCKETS)))
    options = {
        "sends_per_user": sends_per_user,
        "open_rate": open_rate,
        "conversion_rate": conversion_rate,
        "concentration": concentration,
    }
    return SimulatedExperiment(
        control=_arm_simulate(
            rng, users=n_users - variant_users, click_rate=control_click, **options
        ),
        variant=_arm_simulate(rng, users=variant_users, click_rate=variant_click, **options),
        true_control_ctr=open_rate * control_click,
        true_variant_ctr=open_rate * variant_click,
        conversion_rate=conversion_rate,
    )


@dataclass(frozen=True)
class Coverage:
    """How often `uplift`'s intervals contained the true value over `n` simulated experiments.

    A simulation whose relative uplift is undefined (no successes in either arm) counts as not
    covering. `share_significant` is the share with p < 1 - confidence: the false-positive rate
    when the true uplift is 0, the power otherwise."""

    share_covering: float
    n: int
    true_value: float
    share_covering_difference: float
    true_difference: float
    share_significant: float
    share_fisher: float
    share_undefined: float
    share_entirely_below: float
    share_entirely_above: float
    median_relative_width: float
    confidence: float
    metric: Metric
    n_users: int
    control_rate: float

    @property
    def standard_error(self) -> float:
        """The Monte Carlo standard error of `share_covering`."""
        return math.sqrt(self.share_covering * (1 - self.share_covering) / self.n)


def interval_coverage(
    *,
    n_simulations: int,
    seed: int,
    n_users: int,
    control_rate: float,
    true_relative_uplift: float,
    confidence: float = 0.95,
    metric: Metric = "ctr",
    open_rate: float = 0.25,
    conversion_rate: float = 0.05,
    variant_share: float = 0.5,
    concentration: float | None = 5.0,
    sends_per_user: int = 1,
) -> Coverage:
    """Simulate `n_simulations` experiments (`simulate_experiment`, one generator seeded with
    `seed`) and count how often the report's interval for the relative uplift (and for the
    absolute difference) of `metric` contains the true value."""
    n_simulations = _count("n_simulations", n_simulations)
    if n_simulations == 0:
        raise ValueError("n_simulations must be > 0")
    if metric not in ("ctr", "conversion_rate"):
        raise ValueError(f"metric must be 'ctr' or 'conversion_rate', got {metric!r}")
    confidence = _open_unit("confidence", confidence)
    rng = np.random.default_rng(seed)
    covering = covering_difference = significant = fisher = undefined = below = above = 0
    widths = []
    true_value = true_difference = math.nan
    for _ in range(n_simulations):
        experiment = simulate_experiment(
            rng=rng,
            n_users=n_users,
            control_rate=control_rate,
            true_relative_uplift=true_relative_uplift,
            open_rate=open_rate,
            conversion_rate=conversion_rate,
            variant_share=variant_share,
            concentration=concentration,
            sends_per_user=sends_per_user,
        )
        true_value = experiment.true_relative_uplift(metric)
        true_difference = experiment.true_difference(metric)
        result = experiment.uplift(metric=metric, confidence=confidence)
        if result.difference_low is not None:
            covering_difference += (
                result.difference_low <= true_difference <= result.difference_high
            )
        significant += result.significant
        fisher += result.test == "fisher"
        if result.relative_low is None:
            undefined += 1
            continue
        covering += result.relative_low <= true_value <= result.relative_high
        below += result.relative_high < true_value
        above += result.relative_low > true_value
        widths.append(result.relative_high - result.relative_low)
    return Coverage(
        share_covering=covering / n_simulations,
        n=n_simulations,
        true_value=true_value,
        share_covering_difference=covering_difference / n_simulations,
        true_difference=true_difference,
        share_significant=significant / n_simulations,
        share_fisher=fisher / n_simulations,
        share_undefined=undefined / n_simulations,
        share_entirely_below=below / n_simulations,
        share_entirely_above=above / n_simulations,
        median_relative_width=float(np.median(widths)) if widths else math.nan,
        confidence=confidence,
        metric=metric,
        n_users=n_users,
        control_rate=control_rate,
    )
