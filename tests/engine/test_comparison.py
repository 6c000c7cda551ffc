import math

import numpy as np
import pandas as pd
import pytest

from recommendations.engine import EngineError
from recommendations.engine.comparison import ComparisonReport, compare_lists


def lists(mapping, score=False):
    """{user: [items best first]} -> user_id, item_id, rank (and a score column if asked)."""
    rows = [(u, item, r) for u, items in mapping.items() for r, item in enumerate(items, 1)]
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "rank"])
    if score:
        frame["score"] = 1.0 / frame["rank"]
    return frame


def rbo_ext_equal(a, b, p):
    """RBO_ext for two lists of equal depth, straight from the formula."""
    k = len(a)
    x = [len(set(a[:d]) & set(b[:d])) for d in range(1, k + 1)]
    head = sum(x[d - 1] / d * p**d for d in range(1, k + 1))
    return (1 - p) / p * head + x[k - 1] / k * p**k


def test_identical_lists_agree_fully():
    a = lists({1: ["a", "b", "c"], 2: ["d", "e", "f"]})
    report = compare_lists(a, a.copy(), k=3, catalogue_size=10)
    s = report.summary
    assert isinstance(report, ComparisonReport)
    assert s["overlap_at_k"] == pytest.approx(1.0)
    assert s["jaccard_at_k"] == pytest.approx(1.0)
    assert s["rbo"] == pytest.approx(1.0)
    assert s["mean_abs_rank_diff"] == 0
    assert s["rank_correlation"] == pytest.approx(1.0)
    assert s["only_b_items"] == 0 and s["only_a_items"] == 0
    assert s["coverage_a"] == s["coverage_b"] == pytest.approx(0.6)
    assert list(report.per_user.columns) == ["user_id", "overlap", "jaccard", "rbo"]
    assert report.per_user["rbo"].tolist() == pytest.approx([1.0, 1.0])


def test_disjoint_lists_share_nothing():
    a = lists({1: ["a", "b"], 2: ["c", "d"]})
    b = lists({1: ["x", "y"], 2: ["z", "w"]})
    s = compare_lists(a, b, k=2).summary
    assert s["overlap_at_k"] == 0 and s["jaccard_at_k"] == 0 and s["rbo"] == 0
    assert s["common_pairs"] == 0
    assert s["mean_abs_rank_diff"] is None and s["rank_correlation"] is None
    assert s["only_b_items"] == 4 and s["only_b_share"] == 1.0


def test_partial_overlap_hand_computed():
    # A = a b c, B = b a d; p = 0.9. X_1 = 0, X_2 = 2, X_3 = 2.
    # RBO = 0.1/0.9 * (0 + 2/2 * 0.81 + 2/3 * 0.729) + 2/3 * 0.729 = 0.144 + 0.486 = 0.63
    report = compare_lists(lists({1: ["a", "b", "c"]}), lists({1: ["b", "a", "d"]}), k=3)
    s = report.summary
    assert s["overlap_at_k"] == pytest.approx(2 / 3)
    assert s["jaccard_at_k"] == pytest.approx(2 / 4)
    assert s["rbo"] == pytest.approx(0.63)
    assert s["rbo"] == pytest.approx(rbo_ext_equal(list("abc"), list("bad"), 0.9))
    # a: 1 vs 2, b: 2 vs 1 -> mean |diff| = 1; common items reversed -> rho = -1
    assert s["mean_abs_rank_diff"] == pytest.approx(1.0)
    assert s["rank_correlation"] == pytest.approx(-1.0)
    assert s["rank_correlation_users"] == 1


def test_rbo_known_values_and_persistence():
    a, b = list("abcdefghij"), list("acbdxyefzj")
    for p in (0.5, 0.8, 0.9, 0.98):
        s = compare_lists(lists({1: a}), lists({1: b}), k=10, rbo_p=p).summary
        assert s["rbo"] == pytest.approx(rbo_ext_equal(a, b, p))
    # Agreement at the top weighs more: the same swap deeper down costs less.
    top = compare_lists(lists({1: list("abcd")}), lists({1: list("bacd")}), k=4).summary
    low = compare_lists(lists({1: list("abcd")}), lists({1: list("abdc")}), k=4).summary
    assert top["rbo"] < low["rbo"] < 1
    # p = 0.5, A = a b, B = a c: X = 1, 1 -> 1 * (0.5 + 0.125) + 0.5 * 0.25 = 0.75
    s = compare_lists(lists({1: ["a", "b"]}), lists({1: ["a", "c"]}), k=2, rbo_p=0.5).summary
    assert s["rbo"] == pytest.approx(0.75)


def test_rbo_uneven_lists():
    # S = a (s = 1), L = a b (l = 2): S is a prefix of L, so RBO_ext extrapolates to 1.
    s = compare_lists(lists({1: ["a"]}), lists({1: ["a", "b"]}), k=2).summary
    assert s["rbo"] == pytest.approx(1.0)
    assert s["overlap_at_k"] == pytest.approx(0.5)  # |A ∩ B| / k
    assert s["jaccard_at_k"] == pytest.approx(0.5)
    # S = x, L = a x, p = 0.9: X_1 = 0, X_2 = 1 = X_l, X_s = 0
    # (1/9) * (1/2 * 0.81) + (1/2 + 0) * 0.81 = 0.045 + 0.405 = 0.45
    s = compare_lists(lists({1: ["x"]}), lists({1: ["a", "x"]}), k=2).summary
    assert s["rbo"] == pytest.approx(0.45)


def test_rank_differences_and_correlation():
    a = lists({1: list("abcde"), 2: list("vwxyz")})
    b = lists({1: list("eabcd"), 2: list("vqrst")})
    s = compare_lists(a, b, k=5).summary
    # user 1: a 1->2, b 2->3, c 3->4, d 4->5, e 5->1 => diffs 1,1,1,1,4; user 2: v 1->1 => 0
    assert s["common_pairs"] == 6
    assert s["mean_abs_rank_diff"] == pytest.approx(8 / 6)
    # user 1 re-ranked: A 1..5, B (a..e) 2,3,4,5,1 -> sum d^2 = 1+1+1+1+16 = 20
    # rho = 1 - 6*20 / (5*24) = 0; user 2 has one common item -> left out
    assert s["rank_correlation"] == pytest.approx(0.0)
    assert s["rank_correlation_users"] == 1


def test_ranks_are_ordered_deduplicated_and_cut_at_k():
    a = pd.DataFrame(
        {"user_id": [1, 1, 1, 1], "item_id": ["c", "a", "b", "a"], "rank": [7, 2, 5, 9]}
    )  # -> a, b, c (duplicate a keeps rank 2; gaps ignored)
    b = lists({1: ["a", "b", "z"]})
    s = compare_lists(a, b, k=2).summary
    assert s["overlap_at_k"] == 1.0 and s["rbo"] == pytest.approx(1.0)
    assert s["distinct_items_a"] == 2  # c is past k


def test_ids_compared_as_strings_and_score_ignored():
    a = lists({1: [10, 20]}, score=True)
    b = lists({"1": ["10", "20"]})
    s = compare_lists(a, b, k=2).summary
    assert s["users_both"] == 1 and s["rbo"] == pytest.approx(1.0)


def test_coverage_and_discovery():
    a = lists({1: ["a", "b"], 2: ["a", "c"], 3: ["a", "b"]})
    b = lists({1: ["a", "x"], 2: ["y", "x"], 3: ["x", "b"]})
    report = compare_lists(a, b, k=2, catalogue_size=20)
    s = report.summary
    assert s["distinct_items_a"] == 3 and s["distinct_items_b"] == 4
    assert s["coverage_a"] == pytest.approx(3 / 20)
    assert s["coverage_b"] == pytest.approx(4 / 20)
    assert s["only_b_items"] == 2 and s["only_b_share"] == pytest.approx(2 / 4)
    assert report.only_b.to_dict("records") == [
        {"item_id": "x", "users": 3},
        {"item_id": "y", "users": 1},
    ]
    assert s["only_b_top"] == ["x", "y"]
    assert report.only_a.to_dict("records") == [{"item_id": "c", "users": 1}]
    assert s["only_a_share"] == pytest.approx(1 / 3)
    assert compare_lists(a, b, k=2).summary["coverage_a"] is None


def test_popularity_of_each_side():
    a = lists({1: ["a", "b"], 2: ["a", "c"]})
    b = lists({1: ["c", "d"], 2: ["c", "b"]})
    popularity = pd.Series({"a": 100, "b": 10, "c": 1})  # d unknown -> 0
    s = compare_lists(a, b, k=2, item_popularity=popularity).summary
    assert s["mean_popularity_a"] == pytest.approx((100 + 10 + 100 + 1) / 4)
    assert s["mean_popularity_b"] == pytest.approx((1 + 0 + 1 + 10) / 4)
    assert compare_lists(a, b, k=2).summary["mean_popularity_a"] is None


def test_users_on_one_side_only_are_counted_and_left_out():
    a = lists({1: ["a"], 2: ["b"], 3: ["c"]})
    b = lists({1: ["a"], 4: ["z"]})
    report = compare_lists(a, b, k=1)
    s = report.summary
    assert (s["users_a"], s["users_b"], s["users_both"]) == (3, 2, 1)
    assert (s["users_only_a"], s["users_only_b"]) == (2, 1)
    assert report.per_user["user_id"].tolist() == ["1"]
    assert s["rbo"] == 1.0 and s["only_b_items"] == 0  # z belongs to a user only B has


def test_to_rows_for_csv():
    a = lists({1: ["a", "b"]})
    b = lists({1: ["a", "x"]})
    report = compare_lists(a, b, k=2)
    rows = report.to_rows()
    assert {"section": "summary", "name": "users_both", "value": 1} in rows
    assert {"section": "only_b", "name": "x", "value": 1} in rows
    assert {"section": "only_a", "name": "b", "value": 1} in rows
    assert all(set(row) == {"section", "name", "value"} for row in rows)
    per_user = [r for r in report.to_rows(per_user=True) if r["section"] == "per_user_rbo"]
    assert per_user == [{"section": "per_user_rbo", "name": "1", "value": report.summary["rbo"]}]
    pd.DataFrame(rows).to_csv(index=False)  # flat enough for CSV export


@pytest.mark.parametrize(
    "a, b, kwargs, message",
    [
        (pd.DataFrame(columns=["user_id", "item_id", "rank"]), None, {}, "no recommendations"),
        (None, pd.DataFrame(columns=["user_id", "item_id", "rank"]), {}, "no recommendations"),
        (pd.DataFrame({"user_id": [1], "item_id": ["a"]}), None, {}, "lacks columns"),
        ([(1, "a", 1)], None, {}, "must be a DataFrame"),
        (None, None, {"k": 0}, "k must be"),
        (None, None, {"rbo_p": 1.0}, "rbo_p"),
        (None, None, {"catalogue_size": 0}, "catalogue_size"),
    ],
)
def test_bad_input_raises_engine_error(a, b, kwargs, message):
    good = lists({1: ["a"]})
    with pytest.raises(EngineError, match=message):
        compare_lists(good if a is None else a, good if b is None else b, **kwargs)


def test_no_common_users_raises():
    with pytest.raises(EngineError, match="both sides"):
        compare_lists(lists({1: ["a"]}), lists({2: ["a"]}))


def test_vectorized_matches_a_per_user_loop():
    rng = np.random.default_rng(7)
    items = [f"i{n}" for n in range(30)]
    a = {u: list(rng.choice(items, size=rng.integers(1, 9), replace=False)) for u in range(60)}
    b = {u: list(rng.choice(items, size=8, replace=False)) for u in range(60)}
    per_user = compare_lists(lists(a), lists(b), k=8, rbo_p=0.8).per_user.set_index("user_id")
    for u in range(60):
        x, y = a[u], b[u]
        s, lng = sorted((x, y), key=len)
        common = len(set(x) & set(y))
        X = [len(set(x[:d]) & set(y[:d])) for d in range(1, len(lng) + 1)]
        ss, ll, p = len(s), len(lng), 0.8
        head = sum(X[d - 1] / d * p**d for d in range(1, ll + 1))
        tail = sum(X[ss - 1] * (d - ss) / (ss * d) * p**d for d in range(ss + 1, ll + 1))
        last = ((X[ll - 1] - X[ss - 1]) / ll + X[ss - 1] / ss) * p**ll
        row = per_user.loc[str(u)]
        assert row["rbo"] == pytest.approx((1 - p) / p * (head + tail) + last)
        assert row["overlap"] == pytest.approx(common / 8)
        assert row["jaccard"] == pytest.approx(common / len(set(x) | set(y)))
        assert 0 <= row["rbo"] <= 1 + 1e-12 and not math.isnan(row["rbo"])
