"""A simulation harness for `bulletins.stats`: it pushes a simulated population with a known true
uplift through deliveries, opens, clicks and conversions (`simulate_experiment`, see it for the
model) and counts how often `uplift`'s intervals contain the true value (`interval_coverage`).

Pure Python and NumPy, no Django, like `bulletins.stats`. Not to be confused with
`bulletins.services.simulation`, which sends simulated readers through the real tracking path.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from bulletins.stats import Uplift, checked_count, checked_probability, checked_real, uplift

Metric = Literal["ctr", "conversion_rate"]

HASH_BUCKETS = 10_000  # as recommendations.services.experiments: arms share 10,000 buckets


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
    n_users = checked_count("n_users", n_users)
    if n_users == 0:
        raise ValueError("n_users must be > 0")
    open_rate = checked_probability("open_rate", open_rate)
    control_rate = checked_probability("control_rate", control_rate)
    true_relative_uplift = checked_real("true_relative_uplift", true_relative_uplift)
    conversion_rate = checked_real("conversion_rate", conversion_rate)
    if not 0 <= conversion_rate <= 1:
        raise ValueError(f"conversion_rate must be between 0 and 1, got {conversion_rate!r}")
    variant_share = checked_probability("variant_share", variant_share)
    if concentration is not None and not checked_real("concentration", concentration) > 0:
        raise ValueError(f"concentration must be > 0 or None, got {concentration!r}")
    sends_per_user = checked_count("sends_per_user", sends_per_user)
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
    n_simulations = checked_count("n_simulations", n_simulations)
    if n_simulations == 0:
        raise ValueError("n_simulations must be > 0")
    if metric not in ("ctr", "conversion_rate"):
        raise ValueError(f"metric must be 'ctr' or 'conversion_rate', got {metric!r}")
    confidence = checked_probability("confidence", confidence)
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
