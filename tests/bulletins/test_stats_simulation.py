"""bulletins.stats_simulation: simulated populations carry the true uplift asked for, and the
report's intervals (`bulletins.stats.uplift`) cover it, with the false-positive rate and the
power the formulas say. No database."""

import math

import numpy as np
import pytest

from bulletins.stats import sample_size_per_arm
from bulletins.stats_simulation import interval_coverage, simulate_experiment

SIMULATION = {"rng": np.random.default_rng(0), "n_users": 100, "control_rate": 0.05}
SIMULATION |= {"true_relative_uplift": 0.1}


@pytest.mark.parametrize(
    ("function", "arguments", "named"),
    [
        (simulate_experiment, SIMULATION | {"n_users": 0}, "n_users"),
        (simulate_experiment, SIMULATION | {"control_rate": 0.3}, "control_rate"),
        (simulate_experiment, SIMULATION | {"true_relative_uplift": -1}, "true_relative_uplift"),
        (simulate_experiment, SIMULATION | {"variant_share": 1}, "variant_share"),
        (simulate_experiment, SIMULATION | {"concentration": 0}, "concentration"),
        (simulate_experiment, SIMULATION | {"sends_per_user": 0}, "sends_per_user"),
        (
            interval_coverage,
            {"n_simulations": 0, "seed": 1, "n_users": 100, "control_rate": 0.05}
            | {"true_relative_uplift": 0.1},
            "n_simulations",
        ),
        (
            interval_coverage,
            {"n_simulations": 1, "seed": 1, "n_users": 100, "control_rate": 0.05}
            | {"true_relative_uplift": 0.1, "metric": "opens"},
            "metric",
        ),
    ],
)
def test_bad_simulation_arguments_raise_a_value_error_naming_them(function, arguments, named):
    with pytest.raises(ValueError, match=named):
        function(**arguments)


# --- Simulated populations ----------------------------------------------------------------------


def test_a_simulated_population_carries_the_true_uplift_asked_for():
    experiment = simulate_experiment(
        rng=np.random.default_rng(7),
        n_users=400_000,
        control_rate=0.04,
        true_relative_uplift=0.25,
        open_rate=0.2,
        conversion_rate=0.1,
    )
    control, variant = experiment.control, experiment.variant

    assert experiment.true_relative_uplift() == pytest.approx(0.25)
    assert experiment.true_relative_uplift("conversion_rate") == pytest.approx(0.25)
    assert experiment.true_difference() == pytest.approx(0.01)
    assert control.users + variant.users == 400_000
    assert abs(variant.users - 200_000) < 5 * math.sqrt(400_000 / 4)
    for arm, rate in ((control, 0.04), (variant, 0.05)):
        assert arm.delivered == arm.users
        assert arm.conversions <= arm.clicks <= arm.opens <= arm.delivered
        assert abs(arm.opens / arm.delivered - 0.2) < 5 * math.sqrt(0.2 * 0.8 / arm.delivered)
        assert abs(arm.clicks / arm.delivered - rate) < 5 * math.sqrt(rate / arm.delivered)


def test_a_simulation_is_reproducible_from_its_seed():
    def run(seed):
        return simulate_experiment(
            rng=np.random.default_rng(seed),
            n_users=5000,
            control_rate=0.05,
            true_relative_uplift=0.1,
            sends_per_user=3,
        )

    assert run(3) == run(3)
    assert run(3) != run(4)
    assert run(3).control.delivered == 3 * run(3).control.users


@pytest.mark.parametrize(
    ("true_uplift", "control_rate", "n_users", "metric", "seed"),
    [
        (0.0, 0.02, 5_000, "ctr", 11),
        (0.10, 0.05, 20_000, "ctr", 12),
        (0.30, 0.10, 50_000, "ctr", 13),
        (0.30, 0.05, 20_000, "conversion_rate", 14),  # 5% of clicks: some 25 per arm
    ],
)
def test_the_reported_95_percent_intervals_cover_the_true_uplift(
    true_uplift, control_rate, n_users, metric, seed
):
    coverage = interval_coverage(
        n_simulations=400,
        seed=seed,
        n_users=n_users,
        control_rate=control_rate,
        true_relative_uplift=true_uplift,
        metric=metric,
    )

    assert coverage.n == 400
    assert coverage.true_value == pytest.approx(true_uplift)
    assert 0.90 <= coverage.share_covering <= 0.99
    assert 0.90 <= coverage.share_covering_difference <= 0.99
    assert coverage.share_undefined == 0


def test_the_false_positive_rate_and_the_power_are_what_the_formulas_say():
    no_uplift = interval_coverage(
        n_simulations=400, seed=21, n_users=10_000, control_rate=0.05, true_relative_uplift=0
    )
    sized = interval_coverage(
        n_simulations=400,
        seed=22,
        n_users=2 * sample_size_per_arm(baseline_rate=0.1, relative_uplift=0.2),
        control_rate=0.1,
        true_relative_uplift=0.2,
    )

    assert no_uplift.share_significant <= 0.08  # 5% expected
    assert 0.74 <= sized.share_significant <= 0.86  # 80% expected


def test_repeated_sends_to_the_same_users_make_the_intervals_too_narrow():
    # the binomial intervals take every delivery as independent; a user's deliveries are not
    coverage = interval_coverage(
        n_simulations=400,
        seed=31,
        n_users=10_000,
        control_rate=0.05,
        true_relative_uplift=0.1,
        sends_per_user=12,
    )

    assert coverage.share_covering < 0.92
