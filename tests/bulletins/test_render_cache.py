"""The compiled-skeleton cache: every email is the same bytes as compiling its own MJML.

Each test renders several users of a shape, so that the skeleton is built and checked (first
user) and used (second on), and compares every email with what `skeletons.enabled = False`
gives: each user's MJML compiled, as `bulletin_render` always did.
"""

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from bulletins import rendering
from bulletins.rendering import (
    DEFAULT_LAYOUT_MJML,
    Block,
    EmailTooLarge,
    RenderError,
    bulletin_render,
    layout_is_plain,
)
from bulletins.rendering.base import compiled_template

SUBJECT = '{{ user.first_name|default:"there" }}, your picks'
HOSTILE = [
    "Tom & Jerry",
    "<script>alert(1)</script>",
    'The "best" one',
    "it's 'quoted'",
    "a > b < c",
    "Café — crème brûlée",
    "e\u0301 combining, \u00a0non-breaking, \u200bzero-width",
    "emoji 👍🏻 and 🇫🇷",
    "two\nlines\r\nand\ttab",
    "back\\slash {{ not a tag }} {% neither %}",
    "  spaced  out  ",
    "&amp; already escaped &lt;",
]


@pytest.fixture(autouse=True)
def _fresh_skeletons(settings):
    settings.PUBLIC_BASE_URL = "https://news.example.com"
    settings.UNSUBSCRIBE_MAILTO = ""
    skeletons_reset()
    yield
    skeletons_reset()


def skeletons_reset():
    rendering.skeletons.clear()
    rendering.skeletons.enabled = True
    rendering.skeletons.render_plain_layouts = False


def item(n, *, title=None, image=True, description=True):
    return {
        "item_id": f"sku-{n}",
        "title": title if title is not None else f"Item {n}",
        "url": f"https://shop.example/p/{n}?utm=x&ref=y",
        "image_url": f"https://img.example/{n}.jpg" if image else "",
        "description": f"About item {n}." if description else None,
        "position": n,
        "source": "hybrid",
    }


def blocks_of(*sizes, offset=0, **options):
    """Blocks of `sizes` items, positions from 1 (a position 0 would be another shape)."""
    return [
        Block(
            f"Block {b + offset}", [item(100 * b + i + offset, **options) for i in range(1, n + 1)]
        )
        for b, n in enumerate(sizes)
    ]


def outcome(**kwargs):
    try:
        email = bulletin_render(**kwargs)
    except RenderError as error:
        return type(error), str(error)
    return email.subject, email.html, email.text, email.headers, email.size_bytes


def assert_as_compiled(*, delivery_id, blocks, user=None, layout=None, subject=SUBJECT):
    """Render with the skeletons, then compiling the MJML, and compare everything."""
    kwargs = {
        "subject_template": subject,
        "layout_mjml": layout,
        "blocks": blocks,
        "user": {"first_name": "Ann", "email": "ann@example.com"} if user is None else user,
        "delivery_id": delivery_id,
    }
    fast = outcome(**kwargs)
    rendering.skeletons.enabled = False
    try:
        compiled = outcome(**kwargs)
    finally:
        rendering.skeletons.enabled = True
    assert fast == compiled
    return fast


def served_from_skeletons():
    stats = rendering.skeletons.stats
    return stats["from skeleton"] + stats["from skeleton, layout rendered"]


def plain(layout):
    return layout_is_plain(compiled_template(layout, html=True))


def test_default_layout_is_plain_substitution():
    assert plain(DEFAULT_LAYOUT_MJML)


SIMPLE = "<mjml><mj-body><mj-section><mj-column>{}</mj-column></mj-section></mj-body></mjml>"


@pytest.mark.parametrize(
    "body",
    [
        "{% for b in blocks %}{% for i in b.items %}<mj-text>{{ i.title }}</mj-text>"
        '{% if i.image_url and not forloop.last %}<mj-image src="{{ i.image_url }}" />'
        "{% endif %}{% empty %}<mj-text>none</mj-text>{% endfor %}{% endfor %}",
        '<mj-text>{{ user.first_name|default:"there" }} {{ user.plan }} {{ "literal" }}</mj-text>',
        "{% for b in blocks %}<mj-text>{{ forloop.counter }} {{ b.title }}</mj-text>{% endfor %}",
        "<mj-text>{{ _('Hello') }}</mj-text>",  # translated once, when parsed
    ],
)
def test_layouts_of_values_loops_and_truthiness_are_plain(body):
    assert plain(SIMPLE.format(body))


@pytest.mark.parametrize(
    "body",
    [
        "<mj-text>{{ subject|upper }}</mj-text>",
        "<mj-text>{{ subject|default:user.first_name }}</mj-text>",
        '{% if subject == "Hi" %}<mj-text>x</mj-text>{% endif %}',
        "{% if subject|length > 3 %}<mj-text>x</mj-text>{% endif %}",
        "<mj-text>{{ subject.upper }}</mj-text>",
        "<mj-text>{{ user.items }}</mj-text>",
        "<mj-text>{{ user.get }}</mj-text>",
        "<mj-text>{{ user }}</mj-text>",
        "<mj-text>{{ blocks }}</mj-text>",
        "<mj-text>{{ blocks.0.title }}</mj-text>",
        "<mj-text>{{ unknown }}</mj-text>",
        "{% for b in blocks %}{% for i in b.items %}<mj-text>{{ i.url }}</mj-text>"
        "{% endfor %}{% endfor %}",
        "{% for b in blocks|slice:1 %}<mj-text>{{ b.title }}</mj-text>{% endfor %}",
        "{% for k, v in user.items %}<mj-text>{{ k }}</mj-text>{% endfor %}",
        "{% autoescape off %}<mj-text>{{ subject }}</mj-text>{% endautoescape %}",
        "{% with s=subject %}<mj-text>{{ s }}</mj-text>{% endwith %}",
        '<mj-text>{% now "Y" %}</mj-text>',
        "{% cycle 'a' 'b' as c %}<mj-text>{{ c }}</mj-text>",
    ],
)
def test_layouts_with_filters_comparisons_or_other_tags_are_not_plain(body):
    assert not plain(SIMPLE.format(body))


@pytest.mark.parametrize(
    "body",
    [
        "<mj-text>{{ user.first_name.upper }} {{ user.items }}</mj-text>",
        '<mj-text>{% now "Y" %} {{ subject|slice:"3" }}</mj-text>',
        "<mj-text>{{ user }}</mj-text>",
    ],
)
def test_layouts_that_are_not_plain_are_rendered_for_each_user_and_the_same_bytes(body):
    layout = SIMPLE.format(body)
    for n, name in enumerate(["ann", "Bob", "it's", "ann", "Bob"]):
        user = {"first_name": name, "email": f"u{n}@example.com"}
        assert_as_compiled(delivery_id=n + 1, blocks=[], user=user, layout=layout)


def test_default_layout_is_the_same_bytes_and_comes_from_the_skeleton():
    for n in range(6):
        user = {"first_name": ["Ann", "Bob", "Chloé"][n % 3], "email": f"u{n}@example.com"}
        assert_as_compiled(delivery_id=1000 + n, blocks=blocks_of(6, 6, offset=n), user=user)
    assert rendering.skeletons.stats["skeletons built"] >= 1
    assert served_from_skeletons() >= 3


def test_default_layout_rendered_for_each_user_is_the_same_bytes():
    rendering.skeletons.render_plain_layouts = True
    for n in range(6):
        user = {"first_name": ["Ann", "", "Chloé"][n % 3], "email": f"u{n}@example.com"}
        assert_as_compiled(delivery_id=1000 + n, blocks=blocks_of(6, 6, offset=n), user=user)
    stats = rendering.skeletons.stats
    assert stats["from skeleton, layout rendered"] >= 3 and stats["from skeleton"] == 0


@pytest.mark.parametrize("title", HOSTILE)
def test_hostile_titles_are_the_same_bytes(title):
    for n in range(4):
        blocks = [
            Block(f"{title} {n}", [item(1, title=f"{title} #{n}"), item(2, title=f"{n} {title}")])
        ]
        user = {"first_name": f"{title[:5]}{n}"}
        assert_as_compiled(delivery_id=50 + n, blocks=blocks, user=user)
    assert served_from_skeletons() >= 2


def test_hostile_subject_in_title_and_aria_label_is_the_same_bytes():
    for n, name in enumerate(HOSTILE * 2):
        assert_as_compiled(delivery_id=n + 1, blocks=blocks_of(2), user={"first_name": name})
    assert served_from_skeletons() >= len(HOSTILE) // 2


def test_values_of_one_shape_with_different_characters_are_the_same_bytes():
    """One shape key, while which value holds which character changes from user to user."""
    for n in range(len(HOSTILE)):
        titles = HOSTILE[n:] + HOSTILE[:n]
        blocks = [Block("Mixed", [item(i, title=t) for i, t in enumerate(titles, start=1)])]
        assert_as_compiled(delivery_id=n + 1, blocks=blocks)
    assert served_from_skeletons() >= len(HOSTILE) - 2


def test_layout_with_filters_on_titles_is_the_same_bytes():
    layout = (
        DEFAULT_LAYOUT_MJML.replace(
            ">{{ item.title }}</a>", ">{{ item.title|truncatechars:14|upper }}</a>"
        )
        .replace("{{ block.title }}</mj-text>", "{{ block.title|upper }}</mj-text>")
        .replace('alt="{{ item.title }}"', 'alt="{{ item.title|lower }}"')
    )
    # digits pass the filters unchanged, the others not
    titles = ["2024", "short", "42 & 7", "a much longer title", "7", "1234567890123456789"]
    for n, title in enumerate(titles * 2):
        blocks = [Block(f"BLOCK {n}", [item(1, title=title), item(2, title=f"{n}")])]
        assert_as_compiled(delivery_id=n + 1, blocks=blocks, layout=layout)
    stats = rendering.skeletons.stats
    assert stats["compiled: MJML not the skeleton's"] >= 3  # what the filters changed
    assert served_from_skeletons() >= 2  # what they left alone


def test_condition_on_a_value_is_the_same_bytes():
    layout = (
        "<mjml><mj-body><mj-section><mj-column>"
        "{% for b in blocks %}{% for i in b.items %}"
        '{% if i.title == "Special" %}<mj-text color="#ff0000">{{ i.title }}</mj-text>'
        '{% else %}<mj-button href="{{ i.click_url }}">{{ i.title }}</mj-button>{% endif %}'
        "{% if i.title|length > 8 %}<mj-text>long</mj-text>{% endif %}"
        "{% endfor %}{% endfor %}</mj-column></mj-section></mj-body></mjml>"
    )
    for n, title in enumerate(["Special", "Plain", "Longer title", "Special", "Plain"] * 2):
        assert_as_compiled(delivery_id=n + 1, blocks=[Block("B", [item(1, title=title)])])
        assert_as_compiled(
            delivery_id=n + 1, blocks=[Block("B", [item(1, title=title)])], layout=layout
        )


def test_items_with_and_without_images_and_descriptions_are_the_same_bytes():
    patterns = [(True, True), (False, True), (True, False), (False, False)]
    for n in range(12):
        items = [
            item(10 * n + i, image=image, description=description)
            for i, (image, description) in enumerate(patterns[n % 4 :] + patterns[: n % 4])
        ]
        assert_as_compiled(delivery_id=n + 1, blocks=[Block("Mixed", items)])
    assert served_from_skeletons() >= 4


def test_varying_block_and_item_counts_are_the_same_bytes():
    shapes = [(1,), (6,), (3, 2), (6, 6), (1, 1, 1), (2, 0)]
    for n in range(3 * len(shapes)):
        blocks = blocks_of(*shapes[n % len(shapes)], offset=n)
        assert_as_compiled(delivery_id=n + 1, blocks=blocks)
    assert served_from_skeletons() >= len(shapes)


def test_empty_and_missing_first_names_are_the_same_bytes():
    users = [{"first_name": ""}, {}, {"first_name": "Ann"}, {"first_name": "", "id": 7}]
    for n in range(12):
        assert_as_compiled(delivery_id=n + 1, blocks=blocks_of(2, offset=n), user=users[n % 4])
    assert served_from_skeletons() >= 4


def test_user_values_of_other_types_are_the_same_bytes():
    layout = DEFAULT_LAYOUT_MJML.replace(
        "Hi {{ user.first_name",
        "{{ user.id }} {{ user.score }} {{ user.vip }} Hi {{ user.first_name",
    )
    for n in range(8):
        user = {"first_name": "Ann", "id": 1000 + n, "score": n / 3, "vip": n % 2 == 0}
        assert_as_compiled(delivery_id=n + 1, blocks=blocks_of(2), user=user, layout=layout)
    assert served_from_skeletons() >= 4


def test_value_where_mjml_reads_it_is_always_compiled():
    layout = (
        "<mjml><mj-body><mj-section><mj-column>"
        '<mj-text align="{{ user.align }}" padding="{{ user.pad }}">{{ subject }}</mj-text>'
        "</mj-column></mj-section></mj-body></mjml>"
    )
    for n, (align, pad) in enumerate([("left", "4px"), ("center", "8px"), ("RIGHT", "2px")] * 2):
        user = {"first_name": "Ann", "align": align, "pad": pad}
        assert_as_compiled(delivery_id=n + 1, blocks=[], user=user, layout=layout)
    assert served_from_skeletons() == 0


def test_safe_strings_and_control_characters_are_compiled_and_fail_as_before():
    from django.utils.safestring import mark_safe

    for n in range(3):  # the shape's skeleton is ready before the odd values come
        assert_as_compiled(delivery_id=n + 1, blocks=[Block("B", [item(1), item(2)])])
    safe = assert_as_compiled(
        delivery_id=9, blocks=[Block("B", [item(1, title=mark_safe("<b>bold</b>")), item(2)])]
    )
    assert "<b>bold</b>" in safe[1]
    failed = assert_as_compiled(
        delivery_id=10, blocks=[Block("B", [item(1, title="bell \x07"), item(2)])]
    )
    assert failed[0] is RenderError


def test_email_too_large_is_raised_from_the_skeleton_too():
    for n in range(3):
        with pytest.raises(EmailTooLarge):
            bulletin_render(
                subject_template=SUBJECT,
                layout_mjml=None,
                blocks=blocks_of(12, 12, 12, 12, 12, 12, offset=n),
                user={"first_name": "Ann"},
                delivery_id=n + 1,
            )
    assert served_from_skeletons() == 2


def test_cache_keeps_at_most_max_size_shapes_least_recently_used_first(monkeypatch):
    monkeypatch.setattr(rendering.skeletons, "max_size", 3)
    for n in range(1, 10):
        assert_as_compiled(delivery_id=n, blocks=blocks_of(n))
        assert len(rendering.skeletons) <= 3
    assert_as_compiled(delivery_id=20, blocks=blocks_of(7))  # in use: kept
    assert_as_compiled(delivery_id=21, blocks=blocks_of(1))  # evicted: a new shape again
    assert len(rendering.skeletons) == 3
    assert rendering.skeletons.stats["skeletons built"] == 10


@hypothesis_settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    titles=st.lists(st.text(st.characters(exclude_categories=["Cs"]), max_size=12), min_size=3),
    name=st.text(max_size=8),
    delivery_id=st.integers(1, 10**9),
)
def test_any_values_are_the_same_bytes(titles, name, delivery_id):
    blocks = [Block(titles[0], [item(i, title=t) for i, t in enumerate(titles[1:4], start=1)])]
    assert_as_compiled(delivery_id=delivery_id, blocks=blocks, user={"first_name": name})
