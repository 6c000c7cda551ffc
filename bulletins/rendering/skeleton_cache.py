"""Compiled skeletons: one mjml compile per shape of email instead of one per email (see
`MjmlSkeletons`)."""

import html as html_lib
import re
import threading
from bisect import bisect_right
from collections import Counter, OrderedDict
from collections.abc import Iterator
from functools import lru_cache
from operator import itemgetter
from typing import Any

from django.template import Context, Template
from django.template.base import TextNode, Variable, VariableNode, render_value_in_context
from django.template.defaultfilters import default as default_filter
from django.template.defaulttags import CommentNode, ForNode, IfNode
from mjml import mjml2html

from bulletins.rendering.base import mjml_compile

# Compiled skeletons: one mjml compile per shape of email instead of one per email.

SKELETON_CACHE_SIZE = 512  # shapes kept per process, some 40 KB each
MARK_OPEN, MARK_CLOSE = "\ue000", "\ue001"  # private use: Django and mjml leave them alone
_MJML_MARK = re.compile("\ue000(\\d+)\ue001")
# mjml copies text as it is, and writes attributes as Rust's `{:?}` would: `\u{e000}`.
_HTML_MARKS = (_MJML_MARK, re.compile(r"\\u\{e000\}(\d+)\\u\{e001\}"))
# Not printable ASCII, or a backslash (NUL apart): characters whose handling by mjml is learnt.
# (" & ' < > are printable: Django escapes them to entities, which mjml copies as they are.)
_UNUSUAL = re.compile(r"[^\x00 -\[\]-~]")
_ATTRIBUTE_PLAIN = re.compile(r"[ !#-\[\]-~]*")  # printable ASCII but " and \: `{:?}` keeps it
# Where mjml copies a value without reading it: the text of these elements, the attributes of
# the raw HTML inside them, and these attributes of mj- elements.
_TEXT_ELEMENTS = frozenset({"mj-text", "mj-button", "mj-title", "mj-preview", "mj-raw", "mj-table"})
_PLAIN_ATTRIBUTES = frozenset({"href", "src", "alt", "title"})
_MJ_TAG = re.compile(r"<(/?)(mj-[a-z-]+)")
_TAG_NAME = re.compile(r"<([A-Za-z][\w:-]*)")
_ATTRIBUTE_TAIL = re.compile(r'\s([A-Za-z][\w:-]*)="[^"<>]*$')
_CHAR_PROBE = (
    '<mjml><mj-body><mj-section><mj-column><mj-image src="p" alt="{c}" />'
    "<mj-text>a{c}b</mj-text></mj-column></mj-section></mj-body></mjml>"
)
_PROBED_ALT = re.compile(r' alt="((?:[^"\\]|\\.)*)"')
_MARKED = {kind: ("m", kind) for kind in (str, int, float)}  # shape tokens of marked values


class _Uncacheable(Exception):
    """Values the skeletons do not model: the email is compiled."""


_chars_known: dict[str, bool] = {}
_attribute_chars: dict[int, str] = {}  # a str.translate table


def _char_known(c: str) -> bool:
    """Learn, by compiling it once, how mjml writes an unusual character (`_UNUSUAL`) in an
    attribute. False if mjml rejects it (XML allows few control characters) or does not copy
    it as it is in text."""
    if c not in _chars_known:
        try:
            html = mjml2html(_CHAR_PROBE.format(c=c))
        except Exception:
            html = ""
        match = _PROBED_ALT.search(html)
        _chars_known[c] = bool(match) and f">a{c}b</div>" in html
        if _chars_known[c]:
            _attribute_chars[ord(c)] = match.group(1)
    return _chars_known[c]


def _attribute(escaped: str) -> str:
    """An HTML-escaped value as mjml writes it in an attribute."""
    if _ATTRIBUTE_PLAIN.fullmatch(escaped):
        return escaped
    return escaped.translate(_attribute_chars)


def _flatten(value: Any, values: list, shape: list) -> None:
    """Every leaf of the template context in order: truthy strings and numbers go to `values`
    (each gets a marker); `shape` holds the rest, which decides the structure."""
    kind = type(value)
    if kind in _MARKED:  # exact types: a SafeString, say, is not escaped
        if value:
            values.append(value)
            shape.append(_MARKED[kind])
        else:
            shape.append(("c", kind, value))
    elif kind is dict:
        shape.append(("d", tuple(value)))
        for child in value.values():
            _flatten(child, values, shape)
    elif kind is list:
        shape.append(("l", len(value)))
        for child in value:
            _flatten(child, values, shape)
    elif value is None or kind is bool:
        shape.append(("c", kind, value))
    else:
        raise _Uncacheable(kind.__name__)


def _marked(shape: Iterator[tuple], count: list[int]) -> Any:
    """The context `shape` describes, with a marker in place of each value."""
    token = next(shape)
    if token[0] == "d":
        return {key: _marked(shape, count) for key in token[1]}
    if token[0] == "l":
        return [_marked(shape, count) for _ in range(token[1])]
    if token[0] == "c":
        return token[2]
    count[0] += 1
    return f"{MARK_OPEN}{count[0] - 1}{MARK_CLOSE}"


def _chars_check(values: list) -> None:
    """Raise _Uncacheable for what mjml would not copy as the skeletons write it: a character
    mjml rejects, or a value of only spaces (mjml drops a text that is just a newline)."""
    texts = [v for v in values if type(v) is str]
    joined = "\x00".join(texts)  # NUL: between the values
    if joined.count("\x00") != len(texts) - 1:
        raise _Uncacheable("NUL in a value")
    if "\x00 " in joined or joined[:1] == " " or _UNUSUAL.search(joined):
        if any(not text.strip() for text in texts):
            raise _Uncacheable("a value of only spaces")
        for c in set(_UNUSUAL.findall(joined)):
            if not _char_known(c):
                raise _Uncacheable(f"character {c!r}")


def _escaped(values: list, slots: list[int], context: Context) -> list[str]:
    """The values of `slots` as Django writes them into the MJML (the others left empty): a
    str escaped (Django's `escape` is `html.escape`), a number localized and escaped."""
    escaped = [""] * len(values)
    escape = html_lib.escape
    for slot in slots:
        value = values[slot]
        escaped[slot] = (
            escape(value) if type(value) is str else render_value_in_context(value, context)
        )
    return escaped


def _cut(text: str, *patterns: re.Pattern) -> tuple[list[str], list[int]] | None:
    """`text` cut at its markers: the literal pieces and the marker numbers (-1 - n for a
    marker of the second pattern). None if a marker is left broken (a filter cut it, say)."""
    found = [
        (match.start(), match.end(), int(match.group(1)) if kind == 0 else -1 - int(match.group(1)))
        for kind, pattern in enumerate(patterns)
        for match in pattern.finditer(text)
    ]
    pieces, slots, start = [], [], 0
    for begin, end, slot in sorted(found):
        pieces.append(text[start:begin])
        slots.append(slot)
        start = end
    pieces.append(text[start:])
    for piece in pieces:
        if MARK_OPEN in piece or MARK_CLOSE in piece or "\\u{e00" in piece:
            return None
    return pieces, slots


def _markers_inert(mjml: str) -> bool:
    """True when every marker sits where mjml copies a value without reading it."""
    tags = [(m.start(), m.group(1), m.group(2)) for m in _MJ_TAG.finditer(mjml)]
    starts = [start for start, _, _ in tags]
    for match in _MJML_MARK.finditer(mjml):
        at = match.start()
        index = bisect_right(starts, at) - 1
        if index < 0:
            return False
        _, closing, element = tags[index]
        in_text_element = not closing and element in _TEXT_ELEMENTS
        tag_start = mjml.rfind("<", 0, at)
        if tag_start > mjml.rfind(">", 0, at):  # inside a tag: a quoted attribute only
            tag = _TAG_NAME.match(mjml, tag_start)
            attribute = _ATTRIBUTE_TAIL.search(mjml, tag_start, at)
            if not tag or not attribute:
                return False
            if tag.group(1).startswith("mj-"):
                if attribute.group(1) not in _PLAIN_ATTRIBUTES:
                    return False
            elif not in_text_element:
                return False
        elif not in_text_element:
            return False
    return True


def _fill(pieces: list[str], getter: itemgetter | None, values: list[str]) -> str:
    if getter is None:
        return pieces[0]
    parts = [""] * (2 * len(pieces) - 1)
    parts[0::2] = pieces
    parts[1::2] = getter(values) if len(pieces) > 2 else [getter(values)]
    return "".join(parts)


class _Skeleton:
    """A shape's marker MJML and compiled HTML, cut at the markers. `ready` once a user's
    full compile matched it; `broken` when the shape cannot use it."""

    def __init__(self, mjml: str | None, html: str | None, n_values: int) -> None:
        self.ready = False
        self.broken = True
        if mjml is None or html is None or not _markers_inert(mjml):
            return
        mjml_cut, html_cut = _cut(mjml, _MJML_MARK), _cut(html, *_HTML_MARKS)
        if mjml_cut is None or html_cut is None:
            return
        self.mjml_pieces, mjml_slots = mjml_cut
        self.html_pieces, html_slots = html_cut
        self.slots = sorted(set(mjml_slots))
        plain = {slot for slot in html_slots if slot >= 0}
        self.attribute_slots = sorted({-1 - slot for slot in html_slots if slot < 0})
        if not plain | set(self.attribute_slots) <= set(mjml_slots) <= set(range(n_values)):
            return  # a marker that is not a value's: a layout that writes one, say
        # the HTML's values: the escaped values, then the attribute forms of some
        where = {slot: n_values + k for k, slot in enumerate(self.attribute_slots)}
        html_slots = [slot if slot >= 0 else where[-1 - slot] for slot in html_slots]
        self.mjml_values = itemgetter(*mjml_slots) if mjml_slots else None
        self.html_values = itemgetter(*html_slots) if html_slots else None
        self.broken = False

    def mjml_matches(self, escaped: list[str], mjml: str) -> bool:
        return _fill(self.mjml_pieces, self.mjml_values, escaped) == mjml

    def html(self, escaped: list[str]) -> str:
        escaped = escaped + [_attribute(escaped[slot]) for slot in self.attribute_slots]
        return _fill(self.html_pieces, self.html_values, escaped)


# A layout is plain when Django's rendering of it is, provably, substitution: nothing but text,
# `{{ path }}` of a single value (`|default:"literal"` allowed), `{% for x in list %}` and
# `{% if path %}` (with and, or, not). Its output is then the marker MJML with each value,
# escaped as Django escapes it, in place of its marker, for every user of the shape, and the
# skeleton need not see the user's MJML. The context's paths, as `bulletin_render` builds it:
_LEAF = "value"
_USER = "user"  # a dict of plain values under any keys
_FORLOOP = "forloop"
_ITEM = dict.fromkeys(
    ("item_id", "title", "position", "source", "image_url", "description", "click_url"), _LEAF
)
_CONTEXT = {
    "subject": _LEAF,
    "user": _USER,
    "blocks": [{"title": _LEAF, "items": [_ITEM]}],
    "unsubscribe_url": _LEAF,
    "open_url": _LEAF,
}
_FORLOOP_VALUES = frozenset({"counter", "counter0", "revcounter", "revcounter0", "first", "last"})


def _path(variable: Any, scope: dict[str, Any]) -> Any:
    """What `variable` resolves to, from `scope`: a schema, or None when that is not certain
    (an unknown name, a lookup into a value, a key of `user` that a dict's method shadows)."""
    if not isinstance(variable, Variable) or variable.lookups is None or variable.translate:
        return None
    kind = scope.get(variable.lookups[0])
    for bit in variable.lookups[1:]:
        if kind == _USER:
            plain_key = bit.isidentifier() and not bit.startswith("_") and not hasattr(dict, bit)
            kind = _LEAF if plain_key else None
        elif kind == _FORLOOP:
            kind = _FORLOOP if bit == "parentloop" else _LEAF if bit in _FORLOOP_VALUES else None
        elif isinstance(kind, dict):
            kind = kind.get(bit)
        else:
            return None
    return kind


def _printed_plainly(expression: Any, scope: dict[str, Any]) -> bool:
    if not expression.is_var:
        return not expression.filters  # a literal
    for function, arguments in expression.filters:
        if function is not default_filter or [lookup for lookup, _ in arguments] != [False]:
            return False
    return _path(expression.var, scope) == _LEAF


def _condition_plain(condition: Any, scope: dict[str, Any]) -> bool:
    if condition.id in ("and", "or"):
        return _condition_plain(condition.first, scope) and _condition_plain(
            condition.second, scope
        )
    if condition.id == "not":
        return _condition_plain(condition.first, scope)
    if condition.id != "literal" or condition.value.filters:
        return False
    return not condition.value.is_var or _path(condition.value.var, scope) is not None


def _nodes_plain(nodes: Any, scope: dict[str, Any]) -> bool:
    for node in nodes:
        kind = type(node)
        if kind is VariableNode:
            if not _printed_plainly(node.filter_expression, scope):
                return False
        elif kind is ForNode:
            sequence = _path(node.sequence.var, scope) if node.sequence.is_var else None
            if node.sequence.filters or not isinstance(sequence, list) or len(node.loopvars) != 1:
                return False
            inner = {**scope, node.loopvars[0]: sequence[0], "forloop": _FORLOOP}
            if not _nodes_plain(node.nodelist_loop, inner):
                return False
            if not _nodes_plain(node.nodelist_empty, scope):
                return False
        elif kind is IfNode:
            for condition, nodelist in node.conditions_nodelists:
                if condition is not None and not _condition_plain(condition, scope):
                    return False
                if not _nodes_plain(nodelist, scope):
                    return False
        elif kind is not TextNode and kind is not CommentNode:
            return False
    return True


@lru_cache(maxsize=64)
def layout_is_plain(template: Template) -> bool:
    """True when rendering `template` is substitution (see above), so that an email of a
    checked skeleton is filled in without rendering the layout for each user."""
    engine = template.engine
    if not engine.autoescape or engine.string_if_invalid:
        return False
    return _nodes_plain(template.nodelist, dict(_CONTEXT))


class MjmlSkeletons:
    """Compiled skeletons for `bulletin_render`, an LRU of `max_size` shapes.

    Users' MJML differ in their values only; a shape is what decides the rest: the layout,
    the number of blocks and items, which values are empty (or False, None, 0) and the user's
    keys. For a new shape the layout is rendered once more, with a marker in place of every
    value, and that MJML compiled: the skeleton. Then, for each user of the shape:

    1. Their MJML, rendered by Django as always, must be the marker MJML with their values,
       escaped as Django escapes them, in place of the markers. Otherwise (a filter such as
       `upper` or `truncatechars`, a condition on a value) it is compiled.
    2. Their HTML is the skeleton with their values in place of the markers: as they are where
       mjml copies text, and as mjml writes attributes (Rust's `{:?}`) where it wrote the marker
       that way. How it writes each character that is not plain ASCII is learnt by compiling
       it once, so which value holds which character does not matter.
    3. The first user whose MJML matches is compiled as well, and the skeleton is used only if
       the two are the same bytes; otherwise that shape is always compiled.

    A plain layout (`layout_is_plain`: values, loops and truthiness only, as the default one)
    renders to the marker MJML with the values in place for every user, by construction, so
    once its skeleton is checked (3.) step 1 is skipped: the layout is not rendered per user.

    Markers must sit where mjml copies a value without reading it (the text of mj-text,
    mj-button and the like, raw HTML inside them, and href, src, alt and title): a layout with
    a value in, say, `padding` or mj-style is always compiled. So are values of other types
    than str, int, float, bool and None (a SafeString among them), values of only spaces, and
    characters mjml rejects, so that errors read as before.
    """

    def __init__(self, max_size: int = SKELETON_CACHE_SIZE) -> None:
        self.max_size = max_size
        self.enabled = True
        self.render_plain_layouts = False  # True: render every layout for each user
        self.stats: Counter[str] = Counter()
        self._entries: OrderedDict[tuple, _Skeleton] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
        self.stats.clear()

    def _get(self, key: tuple) -> _Skeleton | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
            return entry

    def _put(self, key: tuple, entry: _Skeleton) -> None:
        with self._lock:
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_size:
                self._entries.popitem(last=False)

    def _compile(self, mjml: str, why: str) -> str:
        self.stats[f"compiled: {why}"] += 1
        return mjml_compile(mjml)

    @staticmethod
    def _build(template: Template, shape: list, n_values: int) -> _Skeleton:
        try:
            mjml = template.render(Context(_marked(iter(shape), [0])))
            html = mjml2html(mjml)
        except Exception:  # a filter or mjml choking on a marker: this shape is compiled
            mjml = html = None
        return _Skeleton(mjml, html, n_values)

    def html(self, *, layout: str, template: Template, context: Context, flat: tuple | None) -> str:
        """The HTML of the MJML `template` renders from `context` (`flat` is what
        `flat_context` made of its values before): from a skeleton, or compiled."""
        if not self.enabled:
            return self._compile(template.render(context), "skeletons disabled")
        if flat is None:
            return self._compile(template.render(context), "values not modelled")
        values, shape = flat
        key = (layout, tuple(shape))
        skeleton = self._get(key)
        if skeleton is None:
            skeleton = self._build(template, shape, len(values))
            self._put(key, skeleton)
            self.stats["skeletons built"] += 1
        if skeleton.broken:
            return self._compile(template.render(context), "shape without skeleton")
        escaped = _escaped(values, skeleton.slots, context)
        if skeleton.ready and not self.render_plain_layouts and layout_is_plain(template):
            self.stats["from skeleton"] += 1
            return skeleton.html(escaped)
        mjml = template.render(context)
        if not skeleton.mjml_matches(escaped, mjml):
            return self._compile(mjml, "MJML not the skeleton's")
        html = skeleton.html(escaped)
        if not skeleton.ready:
            compiled = self._compile(mjml, "checking a skeleton")
            skeleton.ready = compiled == html
            skeleton.broken = not skeleton.ready
            return compiled
        self.stats["from skeleton, layout rendered"] += 1
        return html


skeletons = MjmlSkeletons()


def flat_context(values: dict[str, Any]) -> tuple | None:
    """A template context's values and shape (see `MjmlSkeletons`), or None when they hold
    something the skeletons do not model."""
    flat: list = []
    shape: list = []
    try:
        _flatten(values, flat, shape)
        _chars_check(flat)
    except _Uncacheable:
        return None
    return flat, shape
