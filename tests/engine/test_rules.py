import numpy as np
import pandas as pd
import pytest

from recommendations.engine.conditions import Condition, conditions_mask
from recommendations.engine.errors import EngineError
from recommendations.engine.rules import Rule, RulePipeline, rules_conflicts

NOW = "2026-06-01"
CATEGORIES = ["cooking", "travel", "music"]


@pytest.fixture(scope="module")
def items():
    """12 items a..l: category by index % 3, l unavailable, h-l published recently."""
    ids = list("abcdefghijkl")
    return pd.DataFrame(
        {
            "item_id": ids,
            "available": [True] * 11 + [False],
            "categories": [[CATEGORIES[i % 3], "all"] for i in range(12)],
            "tags": [["cheap"] if i % 2 else ["premium"] for i in range(12)],
            "price": [float(i) for i in range(12)],
            "published_at": pd.to_datetime(["2025-01-01"] * 7 + ["2026-05-20"] * 5, utc=True),
            "title": [f"Title {i}" for i in ids],
            "level": ["beginner", "advanced"] * 6,
        }
    )


def candidates(user="u", ids="abcdefghijkl", scores=None):
    scores = np.linspace(1.0, 0.1, len(ids)) if scores is None else scores
    return pd.DataFrame({"user_id": user, "item_id": list(ids), "score": scores})


def run(items, rules, cands=None, k=5, **kw):
    pipeline = RulePipeline.compile(rules, items, now=NOW)
    return pipeline.apply(candidates() if cands is None else cands, k, trace=True, **kw)


def ids(result, user="u"):
    return "".join(result.lists.loc[result.lists.user_id == user, "item_id"])


def equals(column, value):
    return (Condition(column, "equals", value),)


def test_without_rules_the_top_k_available_items_by_score(items):
    result = run(items, [], candidates(ids="lkabc", scores=[9, 8, 3, 2, 1]), k=3)
    assert ids(result) == "kab"
    assert result.lists["rank"].tolist() == [1, 2, 3]
    assert result.trace.to_dict("records") == [
        {"user_id": "u", "item_id": "l", "rule": None, "effect": "removed: unavailable"}
    ]


def test_unknown_items_are_removed(items):
    result = run(items, [], candidates(ids="azb", scores=[3, 2, 1]))
    assert ids(result) == "ab"
    assert "removed: not in the catalogue" in result.trace["effect"].tolist()


def test_exclude_removes_matching_items(items):
    result = run(items, [Rule(1, "no cooking", "exclude", equals("categories", "cooking"))])
    assert ids(result) == "bcefh"


def test_include_only_keeps_matching_items(items):
    rule = Rule(1, "cheap only", "include_only", equals("tags", "cheap"))
    assert ids(run(items, [rule])) == "bdfhj"


def test_boost_moves_matching_item_up(items):
    result = run(items, [Rule(1, "push e", "boost", equals("item_id", "e"), multiplier=3.0)])
    assert ids(result) == "eabcd"
    assert result.lists["rules"].iloc[0] == ("boosted ×3 by push e",)
    assert result.lists["rules"].iloc[1] == ()


def test_bury_moves_matching_item_down(items):
    result = run(items, [Rule(1, "sink a", "bury", equals("item_id", "a"), multiplier=0.1)])
    assert ids(result) == "bcdef"


def test_multipliers_raise_and_lower_negative_scores_the_same_way(items):
    cands = candidates(ids="abc", scores=[-1.0, -2.0, -3.0])
    boost = Rule(1, "push c", "boost", equals("item_id", "c"), multiplier=4.0)
    bury = Rule(2, "sink a", "bury", equals("item_id", "a"), multiplier=0.5)
    result = run(items, [boost, bury], cands)
    assert ids(result) == "cab"  # a ties with b and keeps its place
    assert result.lists["score"].tolist() == [-0.75, -2.0, -2.0]


def test_freshness_boost_lifts_only_recent_items(items):
    rule = Rule(1, "fresh", "freshness_boost", multiplier=10.0, days=30)
    result = run(items, [rule], k=6)
    assert ids(result) == "hijkab"
    fresh = result.trace[result.trace.rule == "fresh"]
    assert set(fresh["item_id"]) == set("hijk")


def test_freshness_window_is_in_days(items):
    rule = Rule(1, "fresh", "freshness_boost", multiplier=10.0, days=5)
    assert ids(run(items, [rule])) == "abcde"


def test_pin_places_a_candidate_at_its_position(items):
    result = run(items, [Rule(1, "pin e", "pin", item_id="e", position=2)])
    assert ids(result) == "aebcd"
    assert result.lists["rules"].iloc[1] == ("pinned at 2 by pin e",)


def test_pin_shows_an_item_outside_the_candidates(items):
    result = run(items, [Rule(1, "pin k", "pin", item_id="k", position=1)], candidates(ids="abc"))
    assert ids(result) == "kabc"
    first = result.lists.iloc[0]
    assert first["source"] == "pinned"
    assert first["score"] == result.lists["score"].iloc[1]  # scores never increase down a list


def test_pinned_excluded_item_is_not_shown(items):
    rules = [
        Rule(1, "pin e", "pin", item_id="e", position=1),
        Rule(2, "no e", "exclude", equals("item_id", "e")),
    ]
    result = run(items, rules)
    assert "e" not in ids(result)
    effects = result.trace.loc[result.trace.rule == "pin e", "effect"].tolist()
    assert effects == ["pin not applied: the item is removed by no e"]


def test_pinned_unavailable_or_unknown_item_is_not_shown(items):
    rules = [
        Rule(1, "pin l", "pin", item_id="l", position=1),
        Rule(2, "pin z", "pin", item_id="z", position=2),
    ]
    result = run(items, rules)
    assert ids(result) == "abcde"
    assert set(result.trace.loc[result.trace.rule.notna(), "effect"]) == {
        "pin not applied: the item is removed: unavailable",
        "pin not applied: the item is not in the catalogue",
    }


def test_lower_priority_number_wins_a_pinned_position(items):
    rules = [
        Rule(1, "pin c late", "pin", item_id="c", position=1, priority=20),
        Rule(2, "pin d first", "pin", item_id="d", position=1, priority=10),
    ]
    result = run(items, rules)
    assert ids(result) == "dcabe"
    assert result.lists["rules"].iloc[1] == ("pinned at 2 by pin c late",)


def test_pin_without_a_free_position_up_to_k_is_not_applied(items):
    rules = [
        Rule(1, "pin c", "pin", item_id="c", position=3),
        Rule(2, "pin d", "pin", item_id="d", position=3, priority=200),
    ]
    result = run(items, rules, k=3)
    assert ids(result) == "abc"
    assert "pin not applied: no free position up to k" in result.trace["effect"].tolist()


def test_the_same_item_is_pinned_once(items):
    rules = [
        Rule(1, "pin c at 1", "pin", item_id="c", position=1),
        Rule(2, "pin c at 4", "pin", item_id="c", position=4, priority=200),
    ]
    assert ids(run(items, rules)) == "cabde"


def test_pin_closes_a_short_list(items):
    result = run(items, [Rule(1, "pin k", "pin", item_id="k", position=5)], candidates(ids="ab"))
    assert ids(result) == "abk"
    assert result.lists["rank"].tolist() == [1, 2, 3]


def test_pin_with_conditions_applies_only_to_matching_items(items):
    rule = Rule(1, "pin pricey k", "pin", (Condition("price", "gt", 50),), item_id="k", position=1)
    assert ids(run(items, [rule])) == "abcde"


def test_cap_per_category_keeps_each_categorys_best_items(items):
    result = run(items, [Rule(1, "two each", "cap_per_category", cap=2)], k=10)
    assert ids(result) == "abcdef"
    capped = result.trace.loc[result.trace.effect == "capped by two each", "item_id"]
    assert "".join(capped) == "ghijk"


def test_cap_conditions_narrow_what_is_capped(items):
    rule = Rule(1, "one cooking", "cap_per_category", equals("categories", "cooking"), cap=1)
    assert ids(run(items, [rule], k=6)) == "abcefh"


def test_pins_win_over_caps(items):
    rules = [
        Rule(1, "one each", "cap_per_category", cap=1),
        Rule(2, "pin d", "pin", item_id="d", position=1),
    ]
    assert ids(run(items, rules)) == "dabc"


def test_exclude_consumed_and_recently_sent(items):
    rules = [Rule(1, "seen", "exclude_consumed"), Rule(2, "sent", "exclude_recently_sent", days=3)]
    cands = pd.concat([candidates("u"), candidates("v")])
    result = run(items, rules, cands, consumed={"u": {"a", "b"}}, recently_sent={"v": ["c"]})
    assert ids(result, "u") == "cdefg"
    assert ids(result, "v") == "abdef"


def test_exclude_consumed_conditions_narrow_what_is_removed(items):
    rule = Rule(1, "seen courses", "exclude_consumed", equals("tags", "premium"))
    assert ids(run(items, [rule], consumed={"u": {"a", "b"}})) == "bcdef"


def test_segment_rule_applies_only_to_its_members(items):
    rule = Rule(1, "vip", "exclude", equals("item_id", "a"), segment="vip")
    cands = pd.concat([candidates("u"), candidates("v")])
    result = run(items, [rule], cands, segments={"vip": {"v"}})
    assert ids(result, "u") == "abcde"
    assert ids(result, "v") == "bcdef"


def test_rules_outside_their_window_are_skipped(items):
    rule = Rule(1, "later", "exclude", starts_at="2026-07-01", ends_at="2026-08-01")
    pipeline = RulePipeline.compile([rule], items, now=NOW)
    assert pipeline.rules == [] and pipeline.inactive == (rule,)


def test_user_with_every_candidate_removed_gets_an_empty_list(items):
    rules = [Rule(1, "nothing", "exclude"), Rule(2, "pin a", "pin", item_id="a", position=1)]
    cands = pd.concat([candidates("u"), candidates("v", ids="l")])
    result = run(items, rules[1:], cands)
    assert ids(result, "v") == ""
    assert run(items, rules).lists.empty


def test_trace_lists_what_each_rule_did(items):
    rules = [
        Rule(1, "no b", "exclude", equals("item_id", "b"), priority=1),
        Rule(2, "push d", "boost", equals("item_id", "d"), multiplier=2.0, priority=2),
        Rule(3, "pin k", "pin", item_id="k", position=1, priority=3),
    ]
    result = run(items, rules, candidates(ids="abcdl", scores=[5, 4, 3, 2, 1]), k=3)
    assert result.trace.to_dict("records") == [
        {"user_id": "u", "item_id": "l", "rule": None, "effect": "removed: unavailable"},
        {"user_id": "u", "item_id": "b", "rule": "no b", "effect": "removed by no b"},
        {"user_id": "u", "item_id": "d", "rule": "push d", "effect": "boosted ×2 by push d"},
        {"user_id": "u", "item_id": "k", "rule": "pin k", "effect": "pinned at 1 by pin k"},
    ]
    assert ids(result) == "kad"


def test_source_and_because_are_carried_through(items):
    cands = candidates(ids="ab").assign(source=["content", "collaborative"], because_item_id="x")
    result = run(items, [Rule(1, "pin b", "pin", item_id="b", position=1)], cands)
    assert result.lists[["item_id", "source", "because_item_id"]].values.tolist() == [
        ["b", "collaborative", "x"],
        ["a", "content", "x"],
    ]


def random_rules(rng, items):
    rules, ids = [], items["item_id"].tolist()
    for index in range(int(rng.integers(3, 12))):
        kind = rng.choice(
            ["exclude", "include_only", "boost", "bury", "pin", "cap_per_category"]
            + ["freshness_boost", "exclude_consumed", "exclude_recently_sent"]
        )
        column, value = ("item_id", rng.choice(ids)) if rng.random() < 0.5 else ("tags", "cheap")
        conditions = equals(column, str(value)) if rng.random() < 0.8 else ()
        extra = {
            "boost": {"multiplier": 2.0},
            "bury": {"multiplier": 0.5},
            "freshness_boost": {"multiplier": 1.5, "days": 30},
            "pin": {"item_id": str(rng.choice(ids)), "position": int(rng.integers(1, 6))},
            "cap_per_category": {"cap": int(rng.integers(1, 3))},
        }.get(kind, {})
        segment = "s" if rng.random() < 0.3 else None
        priority = int(rng.integers(0, 5))
        rule = Rule(
            index, f"r{index}", kind, conditions, segment=segment, priority=priority, **extra
        )
        rules.append(rule)
    return rules


def random_case(seed, items):
    rng = np.random.default_rng(seed)
    users = [f"u{i}" for i in range(6)]
    frames = []
    for user in users:
        chosen = rng.choice(list("abcdefghijklz"), size=int(rng.integers(1, 13)), replace=False)
        scores = np.round(rng.normal(size=len(chosen)), 1)  # ties and negatives on purpose
        frames.append(candidates(user, chosen, scores))
    maps = {
        "consumed": {u: set(rng.choice(list("abcdef"), 2)) for u in users},
        "recently_sent": {u: set(rng.choice(list("ghijk"), 2)) for u in users[::2]},
        "segments": {"s": set(users[::3])},
    }
    return random_rules(rng, items), pd.concat(frames, ignore_index=True), maps


@pytest.mark.parametrize("seed", range(12))
def test_excluded_unavailable_and_filtered_items_never_appear(items, seed):
    rules, cands, maps = random_case(seed, items)
    lists = RulePipeline.compile(rules, items, now=NOW).apply(cands, 5, **maps).lists
    assert "l" not in set(lists["item_id"]) and "z" not in set(lists["item_id"])
    for rule in rules:
        shown = lists[lists["user_id"].isin(maps["segments"]["s"])] if rule.segment else lists
        matching = _matches(items, rule, shown["item_id"])
        pairs = zip(shown["user_id"], shown["item_id"], strict=True)
        if rule.kind == "exclude":
            assert not matching.any(), rule
        if rule.kind == "include_only":
            assert matching.all(), rule
        if rule.kind == "exclude_consumed":
            assert not any(
                i in maps["consumed"][u] for u, i in pairs if _matches_one(items, rule, i)
            )
        if rule.kind == "exclude_recently_sent":
            sent = maps["recently_sent"]
            assert not any(i in sent.get(u, ()) for u, i in pairs if _matches_one(items, rule, i))
    for _, group in lists.groupby("user_id"):
        assert group["rank"].tolist() == list(range(1, len(group) + 1))
        assert group["item_id"].is_unique and len(group) <= 5
        assert group["score"].is_monotonic_decreasing


def _matches(items, rule, item_ids):
    matched = set(items["item_id"][conditions_mask(items, rule.conditions)])
    return item_ids.isin(matched).to_numpy()


def _matches_one(items, rule, item_id):
    return bool(_matches(items, rule, pd.Series([item_id]))[0])


@pytest.mark.parametrize("seed", range(12))
def test_batch_and_single_user_paths_agree(items, seed):
    rules, cands, maps = random_case(seed, items)
    cands["source"] = "collaborative"
    pipeline = RulePipeline.compile(rules, items, now=NOW)
    batch = pipeline.apply(cands, 4, trace=True, **maps)
    singles = []
    for user, group in cands.groupby("user_id", sort=False):
        one = pipeline.apply_user(
            user,
            group["item_id"].to_numpy(),
            group["score"].to_numpy(),
            4,
            sources=group["source"].tolist(),
            consumed=maps["consumed"].get(user, ()),
            recently_sent=maps["recently_sent"].get(user, ()),
            segments=[name for name, users in maps["segments"].items() if user in users],
            trace=True,
        )
        singles.append(one.frames())
    lists = pd.concat([s.lists for s in singles], ignore_index=True)
    trace = pd.concat([s.trace for s in singles], ignore_index=True)
    pd.testing.assert_frame_equal(batch.lists, lists, check_dtype=False)
    pd.testing.assert_frame_equal(batch.trace, trace, check_dtype=False)


def test_empty_candidates_give_empty_frames(items):
    result = run(items, [Rule(1, "pin a", "pin", item_id="a", position=1)], candidates(ids=""))
    assert result.lists.empty and result.trace.empty
    assert list(result.lists.columns) == [
        "user_id", "item_id", "score", "rank", "source", "because_item_id", "rules"
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "shout"}, "rule 'r': kind must be one of"),
        ({"kind": "boost", "multiplier": 0.5}, "rule 'r': multiplier must be above 1"),
        ({"kind": "boost"}, "rule 'r': multiplier must be above 1"),
        ({"kind": "bury", "multiplier": 1.5}, "rule 'r': multiplier must be between 0 and 1"),
        ({"kind": "freshness_boost", "multiplier": 2.0}, "rule 'r': days must be 1 or more"),
        ({"kind": "pin", "position": 1}, "rule 'r': item_id is required"),
        ({"kind": "pin", "item_id": "a", "position": 0}, "rule 'r': position must be 1 or more"),
        ({"kind": "cap_per_category", "cap": 0}, "rule 'r': cap must be 1 or more"),
        ({"kind": "exclude", "multiplier": 2.0}, "rule 'r': multiplier is only used by"),
        ({"kind": "exclude", "priority": 1.5}, "rule 'r': priority must be a whole number"),
        (
            {"kind": "exclude", "starts_at": "2026-02-01", "ends_at": "2026-01-01"},
            "rule 'r': ends_at must come after starts_at",
        ),
    ],
)
def test_invalid_rules_name_the_rule_and_field(kwargs, message):
    with pytest.raises(EngineError, match=message):
        Rule(1, "r", **kwargs)


def test_unknown_condition_column_names_the_rule(items):
    rule = Rule(1, "bad", "exclude", equals("colour", "red"))
    with pytest.raises(EngineError, match="rule 'bad': conditions: unknown field 'colour'"):
        RulePipeline.compile([rule], items, now=NOW)


def test_bad_k_and_missing_columns_are_refused(items):
    pipeline = RulePipeline.compile([], items, now=NOW)
    with pytest.raises(EngineError, match="k must be"):
        pipeline.apply(candidates(), 0)
    with pytest.raises(EngineError, match="candidates lack the columns score"):
        pipeline.apply(candidates().drop(columns="score"), 5)


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        (
            [
                Rule(1, "only cooking", "include_only", equals("categories", "Cooking")),
                Rule(2, "no cooking", "exclude", equals("categories", "cooking")),
            ],
            ["'only cooking' includes only the items 'no cooking' excludes"],
        ),
        (
            [
                Rule(1, "pin a", "pin", item_id="a", position=1),
                Rule(2, "pin b", "pin", item_id="b", position=1),
            ],
            ["'pin a' and 'pin b' pin position 1 with the same priority 100"],
        ),
        (
            [
                Rule(1, "beginners", "include_only", equals("level", "beginner")),
                Rule(2, "advanced", "include_only", (Condition("level", "in", ["advanced"]),)),
            ],
            ["'beginners' and 'advanced' include only items no item can be at once"],
        ),
        (
            [
                Rule(1, "pin a", "pin", item_id="a", position=1),
                Rule(2, "no premium", "exclude", equals("tags", "premium")),
            ],
            ["'pin a' pins item 'a', which 'no premium' removes"],
        ),
        ([Rule(1, "all", "exclude")], ["'all' excludes every item"]),
    ],
)
def test_rules_conflicts_reports_certain_contradictions(items, rules, expected):
    found = rules_conflicts(rules, items)
    assert len(found) == len(expected)
    for problem, start in zip(found, expected, strict=True):
        assert problem.startswith(start)


@pytest.mark.parametrize(
    "rules",
    [
        [  # a list field: an item can be in both categories
            Rule(1, "cooking", "include_only", equals("categories", "cooking")),
            Rule(2, "travel", "include_only", equals("categories", "travel")),
        ],
        [  # different segments never meet
            Rule(1, "pin a", "pin", item_id="a", position=1, segment="x"),
            Rule(2, "pin b", "pin", item_id="b", position=1, segment="y"),
        ],
        [  # priorities decide
            Rule(1, "pin a", "pin", item_id="a", position=1, priority=1),
            Rule(2, "pin b", "pin", item_id="b", position=1, priority=2),
        ],
        [  # windows that do not overlap
            Rule(1, "in", "include_only", equals("price", 1), ends_at="2026-02-01"),
            Rule(2, "out", "exclude", equals("price", 1), starts_at="2026-02-01"),
        ],
    ],
)
def test_rules_conflicts_stays_quiet_when_unsure(items, rules):
    assert rules_conflicts(rules, items) == []


def test_rules_conflicts_without_items_checks_item_ids_only():
    rules = [
        Rule(1, "pin a", "pin", item_id="a", position=1),
        Rule(2, "no a", "exclude", (Condition("item_id", "in", ["a", "b"]),)),
        Rule(3, "no premium", "exclude", equals("tags", "premium")),
    ]
    assert rules_conflicts(rules) == ["'pin a' pins item 'a', which 'no a' removes"]
