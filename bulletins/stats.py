"""Experiment statistics for bulletin reports: the uplift of a variant over the control arm, with
intervals, p-values and sample sizes.

Pure Python and SciPy, no Django: usable as is in a notebook.

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

`bulletins.stats_simulation` checks the intervals' coverage on simulated populations with a
known true uplift.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Literal

from scipy import optimize, special, stats

MIN_EXPECTED_COUNT = 5  # below this expected cell count the p-value is Fisher's exact test


# ---------------------------------------------------------------------------------------------
# Validation (`bulletins.stats_simulation` checks its arguments with these too)


def checked_count(name: str, value: object) -> int:
    """A whole number >= 0 (a count of successes, trials, users), as an int."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return int(value)


def checked_real(name: str, value: object) -> float:
    """A finite real number, as a float."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def checked_probability(name: str, value: object) -> float:
    """A probability strictly between 0 and 1 (confidence, power, a baseline rate)."""
    number = checked_real(name, value)
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
    successes, trials = checked_count("successes", successes), checked_count("trials", trials)
    if successes > trials:
        raise ValueError(f"successes ({successes}) must not exceed trials ({trials})")
    if trials == 0:
        raise ValueError("trials must be > 0")
    confidence = checked_probability("confidence", confidence)
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
    baseline_rate = checked_probability("baseline_rate", baseline_rate)
    relative_uplift = checked_real("relative_uplift", relative_uplift)
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
    z_alpha = _z(checked_probability("confidence", confidence))
    z_power = float(special.ndtri(checked_probability("power", power)))
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
    trials = checked_real("trials_per_arm", trials_per_arm)
    if trials <= 0:
        raise ValueError(f"trials_per_arm must be > 0, got {trials_per_arm!r}")
    z_alpha = _z(checked_probability("confidence", confidence))
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
    baseline_rate = checked_probability("baseline_rate", baseline_rate)
    trials = checked_real("trials_per_arm", trials_per_arm)
    if trials <= 0:
        raise ValueError(f"trials_per_arm must be > 0, got {trials_per_arm!r}")
    z_alpha = _z(checked_probability("confidence", confidence))
    z_power = float(special.ndtri(checked_probability("power", power)))
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
        wanted = checked_real("relative_uplift_wanted", relative_uplift_wanted)
        if wanted == 0 or wanted <= -1:
            raise ValueError(
                f"relative_uplift_wanted must be above -1 and not 0, got {relative_uplift_wanted!r}"
            )
        power = checked_probability("power", power)
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
    control_successes = checked_count("control_successes", control_successes)
    control_trials = checked_count("control_trials", control_trials)
    variant_successes = checked_count("variant_successes", variant_successes)
    variant_trials = checked_count("variant_trials", variant_trials)
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
    confidence = checked_probability("confidence", confidence)
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
