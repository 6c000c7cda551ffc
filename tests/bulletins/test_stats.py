"""bulletins.stats: the uplift report's intervals, p-values and sample sizes, checked against
published and hand-computed values and at the edges (on simulated populations:
test_stats_simulation). No database."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as scipy_stats

from bulletins.stats import (
    achieved_power,
    detectable_uplift,
    sample_size_per_arm,
    uplift,
    wilson_interval,
)

Z95 = 1.959963984540054


def arms(control: tuple[int, int], variant: tuple[int, int], **options):
    return uplift(
        control_successes=control[0],
        control_trials=control[1],
        variant_successes=variant[0],
        variant_trials=variant[1],
        **options,
    )


# --- Known values -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variant", "control", "expected"),
    [
        # Newcombe (1998), Statistics in Medicine 17:873-890, table II, method 10. In (a) the
        # difference is 56/70 - 48/80 = 0.2000 and the interval 0.0524 to 0.3339.
        ((56, 70), (48, 80), (0.0524, 0.3339)),
        ((9, 10), (3, 10), (0.1705, 0.8090)),
        ((5, 56), (0, 29), (-0.0381, 0.1926)),
        ((0, 10), (0, 20), (-0.1611, 0.2775)),
        ((0, 10), (0, 10), (-0.2775, 0.2775)),
        ((10, 10), (0, 20), (0.6791, 1.0000)),
        ((10, 10), (0, 10), (0.6075, 1.0000)),
    ],
)
def test_difference_interval_matches_newcombe_1998_method_10(variant, control, expected):
    result = arms(control, variant)

    assert result.difference == pytest.approx(variant[0] / variant[1] - control[0] / control[1])
    assert result.difference_low == pytest.approx(expected[0], abs=5e-5)
    assert result.difference_high == pytest.approx(expected[1], abs=5e-5)


@pytest.mark.parametrize(("successes", "trials"), [(0, 10), (3, 10), (10, 10), (48, 80), (7, 9000)])
def test_wilson_interval_matches_scipy(successes, trials):
    expected = scipy_stats.binomtest(successes, trials).proportion_ci(0.95, method="wilson")

    low, high = wilson_interval(successes=successes, trials=trials)

    assert (low, high) == pytest.approx((expected.low, expected.high), abs=1e-12)


def test_relative_uplift_is_the_katz_log_ratio_interval():
    # 56/70 against 48/80: ratio 0.8 / 0.6 = 4/3; var(log ratio) = 1/56 - 1/70 + 1/48 - 1/80
    se = math.sqrt(1 / 56 - 1 / 70 + 1 / 48 - 1 / 80)  # 0.10911

    result = arms((48, 80), (56, 70))

    assert result.relative_uplift == pytest.approx(1 / 3)
    assert result.relative_low == pytest.approx(4 / 3 * math.exp(-Z95 * se) - 1)  # +7.66%
    assert result.relative_high == pytest.approx(4 / 3 * math.exp(Z95 * se) - 1)  # +65.12%
    assert (round(result.relative_low, 4), round(result.relative_high, 4)) == (0.0766, 0.6512)
    assert not result.continuity_corrected


def test_z_test_p_value_is_the_pooled_two_proportion_test():
    control, variant = (480, 10_000), (540, 10_000)
    pooled = (480 + 540) / 20_000
    z = (0.054 - 0.048) / math.sqrt(pooled * (1 - pooled) * (2 / 10_000))
    table = [[540, 10_000 - 540], [480, 10_000 - 480]]

    result = arms(control, variant)

    assert result.test == "z"
    assert result.p_value == pytest.approx(2 * scipy_stats.norm.sf(z), rel=1e-12)
    # the pooled z-test is Pearson's chi-square test without Yates' correction (chi2 = z^2)
    chi2 = scipy_stats.chi2_contingency(table, correction=False)
    assert result.p_value == pytest.approx(chi2.pvalue, rel=1e-9)


def test_p_value_falls_back_to_fisher_below_five_expected_counts():
    # 9 successes over 100 trials: a cell expects 50 * 9 / 100 = 4.5
    result = arms((2, 50), (7, 50))

    assert result.test == "fisher"
    expected = scipy_stats.fisher_exact([[7, 43], [2, 48]]).pvalue
    assert result.p_value == pytest.approx(expected)


def test_numpy_counts_are_accepted():
    counts = {name: np.int64(value) for name, value in COUNTS.items()}

    assert uplift(**counts) == uplift(**COUNTS)


def test_five_expected_counts_are_enough_for_the_z_test():
    assert arms((3, 50), (7, 50)).test == "z"  # 50 * 10 / 100 = 5


# --- Sample size and power ----------------------------------------------------------------------


def test_sample_size_per_arm_matches_the_textbook_value():
    # 10% -> 12%, two-sided 95%, 80% power, pooled variance under the null (Fleiss, no
    # continuity correction): (1.959964 sqrt(2 .11 .89) + 0.841621 sqrt(.1 .9 + .12 .88))^2
    # / .02^2 = 3,840.8, so 3,841 per arm. (The unpooled shortcut (z_a + z_b)^2 (p1 q1 + p2 q2)
    # / d^2 gives 3,838.1, 3,839; Fleiss' continuity correction would give about 4,040.)
    z_power = scipy_stats.norm.ppf(0.8)
    by_hand = (Z95 * math.sqrt(2 * 0.11 * 0.89) + z_power * math.sqrt(0.09 + 0.1056)) ** 2 / 0.0004

    needed = sample_size_per_arm(baseline_rate=0.10, relative_uplift=0.20)

    assert by_hand == pytest.approx(3840.8, abs=0.05)
    assert needed == 3841


def test_sample_size_grows_for_smaller_uplifts_and_baselines():
    assert sample_size_per_arm(baseline_rate=0.05, relative_uplift=0.1) > sample_size_per_arm(
        baseline_rate=0.05, relative_uplift=0.2
    )
    assert sample_size_per_arm(baseline_rate=0.02, relative_uplift=0.1) > sample_size_per_arm(
        baseline_rate=0.05, relative_uplift=0.1
    )


@pytest.mark.parametrize("baseline", [0.005, 0.02, 0.1, 0.4])
@pytest.mark.parametrize("wanted", [-0.2, 0.05, 0.2, 1.0])
def test_detectable_uplift_and_power_invert_the_sample_size(baseline, wanted):
    needed = sample_size_per_arm(baseline_rate=baseline, relative_uplift=wanted)

    def power(trials):
        return achieved_power(baseline_rate=baseline, relative_uplift=wanted, trials_per_arm=trials)

    assert power(needed - 1) < 0.8 <= power(needed)
    if wanted > 0:  # detectable_uplift solves for an increase
        detectable = detectable_uplift(baseline_rate=baseline, trials_per_arm=needed)
        fewer = detectable_uplift(baseline_rate=baseline, trials_per_arm=needed - 1)
        assert detectable <= wanted < fewer
        assert detectable == pytest.approx(wanted, rel=0.01 if needed > 1000 else 0.1)


def test_detectable_uplift_is_infinite_when_even_100_percent_is_out_of_reach():
    assert detectable_uplift(baseline_rate=0.5, trials_per_arm=5) == math.inf


# --- Edges --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("control", "variant", "reason"),
    [
        ((0, 0), (5, 100), "no trials in the control arm"),
        ((5, 100), (0, 0), "no trials in the variant arm"),
        ((0, 0), (0, 0), "no trials in the control and variant arm"),
    ],
)
def test_an_arm_without_trials_gives_a_reason_and_no_statistics(control, variant, reason):
    result = arms(control, variant)

    assert result.reason == reason
    assert result.control_rate is None or result.variant_rate is None
    assert result.difference is None and result.difference_low is None
    assert result.relative_uplift is None and result.p_value is None
    assert not result.significant
    warning = result.underpowered(relative_uplift_wanted=0.1)
    assert warning.startswith("Cannot check the sample size needed to detect +10.0%: no trials")


def test_no_successes_in_either_arm_leave_the_relative_uplift_undefined():
    result = arms((0, 1000), (0, 1000))

    assert result.difference == 0
    assert result.difference_low == pytest.approx(-result.difference_high)
    assert result.difference_high > 0
    assert result.relative_uplift is None and result.relative_low is None
    assert result.reason == "no successes in either arm: the relative uplift is undefined"
    assert (result.p_value, result.test) == (1.0, "fisher")
    assert "control rate is 0%" in result.underpowered(relative_uplift_wanted=0.1)


def test_no_successes_in_one_arm_add_a_half_to_every_cell():
    # (5 + .5) / 101 over (0 + .5) / 101: ratio 11; var = 1/5.5 - 1/101 + 1/0.5 - 1/101
    se = math.sqrt(1 / 5.5 - 1 / 101 + 1 / 0.5 - 1 / 101)

    result = arms((0, 100), (5, 100))

    assert result.continuity_corrected
    assert result.relative_uplift == pytest.approx(10.0)
    assert result.relative_low == pytest.approx(11 * math.exp(-Z95 * se) - 1)
    assert result.relative_high == pytest.approx(11 * math.exp(Z95 * se) - 1)
    assert result.difference == pytest.approx(0.05)
    assert result.reason is None


def test_both_arms_at_100_percent_keep_an_interval():
    result = arms((20, 20), (20, 20))

    assert (result.control_rate, result.variant_rate, result.difference) == (1.0, 1.0, 0.0)
    assert result.relative_uplift == pytest.approx(0.0)
    assert result.continuity_corrected
    assert result.relative_low < -0.05 and result.relative_high > 0.05
    assert result.difference_low < 0 < result.difference_high
    assert result.p_value == 1.0


def test_swapping_the_arms_mirrors_the_result():
    forward, backward = arms((48, 800), (71, 760)), arms((71, 760), (48, 800))

    assert backward.difference == pytest.approx(-forward.difference)
    assert backward.difference_low == pytest.approx(-forward.difference_high)
    assert backward.difference_high == pytest.approx(-forward.difference_low)
    assert 1 + backward.relative_uplift == pytest.approx(1 / (1 + forward.relative_uplift))
    assert 1 + backward.relative_low == pytest.approx(1 / (1 + forward.relative_high))
    assert backward.p_value == pytest.approx(forward.p_value)


def test_more_variant_successes_raise_the_estimates_and_their_bounds():
    results = [arms((30, 1000), (successes, 1000)) for successes in range(1, 80)]

    for fewer, more in zip(results, results[1:], strict=False):
        assert more.difference > fewer.difference
        assert more.difference_low > fewer.difference_low
        assert more.difference_high > fewer.difference_high
        assert more.relative_uplift > fewer.relative_uplift
        assert more.relative_low > fewer.relative_low
    p_values = [result.p_value for result in results[29:]]  # from 30/1000 upwards
    assert p_values == sorted(p_values, reverse=True)


def test_a_higher_confidence_widens_the_intervals():
    narrow, wide = arms((48, 800), (71, 760), confidence=0.9), arms((48, 800), (71, 760))

    assert wide.difference_low < narrow.difference_low < narrow.difference_high
    assert narrow.difference_high < wide.difference_high
    assert wide.relative_low < narrow.relative_low < narrow.relative_high < wide.relative_high


@st.composite
def two_arms(draw):
    control_trials = draw(st.integers(1, 200_000))
    variant_trials = draw(st.integers(1, 200_000))
    return (
        (draw(st.integers(0, control_trials)), control_trials),
        (draw(st.integers(0, variant_trials)), variant_trials),
    )


@settings(max_examples=300, deadline=None)
@given(two_arms(), st.sampled_from([0.8, 0.9, 0.95, 0.99]))
def test_intervals_always_contain_the_point_estimates(counts, confidence):
    result = arms(*counts, confidence=confidence)

    assert -1 <= result.difference_low <= result.difference <= result.difference_high <= 1
    assert 0 <= result.p_value <= 1
    if result.relative_uplift is not None:
        assert -1 < result.relative_low <= result.relative_uplift <= result.relative_high


# --- The warning below the sample size ----------------------------------------------------------


def test_underpowered_warns_below_the_size_needed_for_the_uplift_asked_for():
    warning = arms((100, 1000), (120, 1000)).underpowered(relative_uplift_wanted=0.2)

    assert warning.startswith("Below the sample size needed to detect +20.0%: 3,841 per arm")
    assert "1,000 here" in warning
    detectable = detectable_uplift(baseline_rate=0.1, trials_per_arm=1000)
    assert f"smallest uplift detectable at this size is {detectable:+.1%}" in warning


def test_underpowered_is_silent_at_the_size_needed():
    assert arms((385, 3850), (450, 3850)).underpowered(relative_uplift_wanted=0.2) is None


def test_underpowered_counts_unequal_arms_as_their_equal_arm_equivalent():
    # a 10% holdout: 1,000 and 9,000 deliveries weigh as 2 * 1000 * 9000 / 10000 = 1,800 per arm
    result = arms((100, 1000), (990, 9000))

    warning = result.underpowered(relative_uplift_wanted=0.2)

    assert result.equal_arm_trials == 1800
    assert "1,800 here (equal-arm equivalent of 1,000 control and 9,000 variant)" in warning


def test_underpowered_cannot_check_an_uplift_past_100_percent():
    warning = arms((60, 100), (65, 100)).underpowered(relative_uplift_wanted=1.0)

    assert warning.endswith("it would take the control rate of 60.00% past 100%.")


# --- Bad arguments ------------------------------------------------------------------------------

COUNTS = {"control_successes": 5, "control_trials": 100, "variant_successes": 6}
COUNTS |= {"variant_trials": 100}


@pytest.mark.parametrize(
    ("function", "arguments", "named"),
    [
        (uplift, COUNTS | {"control_successes": -1}, "control_successes"),
        (uplift, COUNTS | {"control_trials": 100.0}, "control_trials"),
        (uplift, COUNTS | {"variant_trials": True}, "variant_trials"),
        (uplift, COUNTS | {"variant_successes": 101}, "variant_successes"),
        (uplift, COUNTS | {"confidence": 1.0}, "confidence"),
        (uplift, COUNTS | {"confidence": 95}, "confidence"),
        (wilson_interval, {"successes": 1, "trials": 0}, "trials"),
        (sample_size_per_arm, {"baseline_rate": 0, "relative_uplift": 0.1}, "baseline_rate"),
        (sample_size_per_arm, {"baseline_rate": 0.1, "relative_uplift": 0}, "relative_uplift"),
        (sample_size_per_arm, {"baseline_rate": 0.6, "relative_uplift": 1}, "relative_uplift"),
        (
            sample_size_per_arm,
            {"baseline_rate": 0.1, "relative_uplift": 0.1, "power": 1.2},
            "power",
        ),
        (
            detectable_uplift,
            {"baseline_rate": 0.1, "trials_per_arm": 0},
            "trials_per_arm",
        ),
        (
            achieved_power,
            {"baseline_rate": 0.1, "relative_uplift": 0.1, "trials_per_arm": float("nan")},
            "trials_per_arm",
        ),
    ],
)
def test_bad_arguments_raise_a_value_error_naming_them(function, arguments, named):
    with pytest.raises(ValueError, match=named):
        function(**arguments)


def test_underpowered_rejects_a_zero_uplift_wanted():
    with pytest.raises(ValueError, match="relative_uplift_wanted"):
        arms((5, 100), (6, 100)).underpowered(relative_uplift_wanted=0)
