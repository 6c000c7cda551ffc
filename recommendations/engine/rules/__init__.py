"""Marketer rules over recommendation candidates, vectorized, for every user at once.

`RulePipeline.compile(rules, items, now)` turns each active `Rule` into a boolean mask over the
item table, once; applying them is then array indexing over candidate rows, with no loop over
users: `apply(candidates, k)` for DataFrames of many users (the batch path, the preview with
`trace=True`), `apply_user(user_id, item_ids, scores, k)` for one user's arrays (the online
path, a fraction of a millisecond). Both run the same code and give the same lists. The order:

1. filter: items unknown to the table or unavailable (built in), then exclude, include_only,
   exclude_consumed and exclude_recently_sent rules;
2. score: boost, bury and freshness_boost multiply the score of the items they match;
3. rerank by score (ties keep the candidates' order; NaN scores sink);
4. diversify: each cap_per_category rule keeps a user's best `cap` items per first category;
5. pins put their item at their position, then every list is cut to k and ranked from 1.

Decisions at the edges:
- A multiplier lowers a negative score by dividing it (score / m) and raises it by multiplying,
  so a boost always moves an item up and a bury down; a zero score stays zero.
- A removed candidate is reported once, for the first filter that removes it (built-ins first,
  then rules by priority).
- Rule conditions narrow what a rule touches: for exclude_consumed / exclude_recently_sent only
  the consumed / sent items matching them are removed; for cap_per_category only matching items
  are counted and capped; a pin is applied only when its item matches them. Items without a
  category are never capped.
- A pin applies to users that have at least one candidate left after filtering (a user with none
  gets an empty list, and the caller falls back). Its item is shown even if it was not a
  candidate, as long as the table knows it, it is available and no filter removes it for this
  user; it is not repeated elsewhere, and pins win over caps. Pins are placed by priority: a pin
  whose position is taken goes to the next free one; one that finds no free position up to k, or
  whose item an earlier pin already placed, is reported as not applied. When the list is shorter
  than the position, the pinned item closes the list.
- A pinned item takes the score of the item above it (the top score at position 1), so scores
  never increase down a list; `rank` is the order to trust.
- `exclude_recently_sent` uses the `recently_sent` map as given: its `days` (how many bulletins
  back) is for the caller that builds the map.
- A rule with a `segment` applies only to the users `segments[segment]` lists.
"""

from .conflicts import SCALAR_ITEM_FIELDS, rules_conflicts
from .model import FIELD_KINDS, FILTERS, KINDS, MULTIPLIERS, Moment, Rule, RuleResult
from .output import LIST_COLUMNS, TRACE_COLUMNS
from .pipeline import RulePipeline, UserList

__all__ = [
    "FIELD_KINDS",
    "FILTERS",
    "KINDS",
    "LIST_COLUMNS",
    "MULTIPLIERS",
    "SCALAR_ITEM_FIELDS",
    "TRACE_COLUMNS",
    "Moment",
    "Rule",
    "RulePipeline",
    "RuleResult",
    "UserList",
    "rules_conflicts",
]
