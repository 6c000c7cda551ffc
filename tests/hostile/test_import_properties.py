"""Hostile CSV files through the import (`data_import`, the `import_data` command).

Generated files mix valid rows with rows broken in one known way (an empty or overlong id, an
unknown user or item, a bad timestamp, NaN, infinity, a negative price, a bad URL or boolean,
an overlong event type...), with quoted newlines, commas and quotes in cells, huge fields,
blank lines, byte-order marks, CRLF line ends, duplicate ids and small chunk sizes. The
properties:

- the import raises nothing but `ImportFailed`, whose message names the file (and the line);
- without skip_invalid, a file with a bad row writes nothing and names every bad line;
- with skip_invalid, each distinct valid row is stored exactly once and every bad row is in
  the rejects file with its physical line and a reason naming the column;
- importing the same file again stores nothing new;
- a file-level problem (missing, duplicated or nameless column, not UTF-8, empty, a row with
  more fields than the header, an unterminated quote) writes nothing, even with skip_invalid.
"""

import csv
import datetime as dt
import io
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from hypothesis import given, note
from hypothesis import strategies as st

from recommendations.models import EndUser, EventType, Interaction, Item
from recommendations.services import importing
from recommendations.services.importing import ImportFailed, data_import
from tests.factories import EndUserFactory, ItemFactory
from tests.hostile.conftest import example_rolled_back, hostile, row_counts

pytestmark = pytest.mark.django_db

STORED_USERS = ("u-0", "u-1", "u-2")
STORED_ITEMS = ("i-0", "i-1", "i-2")
NOW = int(time.time())

# Dates that are well formed but do not exist, or fall off the calendar once converted to
# UTC: the import must reject the row, not crash (bug C3).
IMPOSSIBLE_DATES = [
    "2021-02-30T00:00:00",
    "2021-01-01T00:00:00+25:00",
    "9999-12-31T23:59:59-05:00",
    "0001-01-01T00:00:00+05:00",
]


# What a generated file is made of


@dataclass
class Row:
    cells: dict[str, str]
    bad_column: str | None = None  # the column broken on purpose, None for a valid row
    key: object = None  # what makes a valid row distinct: its id, or its event identity


@dataclass
class Table:
    kind: str
    columns: list[str]
    rows: list[Row]
    blank_after: list[bool] = field(default_factory=list)
    crlf: bool = False
    bom: bool = False

    def __repr__(self) -> str:  # huge cells shortened: Hypothesis prints failing tables
        rows = [
            (
                {
                    c: v if len(v) <= 40 else f"{v[:20]}...<{len(v)} chars>"
                    for c, v in r.cells.items()
                },
                r.bad_column,
            )
            for r in self.rows
        ]
        return (
            f"Table({self.kind!r}, columns={self.columns!r}, rows={rows!r}, "
            f"blank_after={self.blank_after!r}, crlf={self.crlf}, bom={self.bom})"
        )

    def line_texts(self) -> list[str]:
        """The header and each row as written, quoted like any CSV writer quotes."""
        ending = "\r\n" if self.crlf else "\n"
        texts = []
        for values in [self.columns, *([row.cells[c] for c in self.columns] for row in self.rows)]:
            buffer = io.StringIO()
            # "\r\n" as the writer's terminator makes it quote cells holding a bare \r too.
            csv.writer(buffer, lineterminator="\r\n").writerow(values)
            texts.append(buffer.getvalue()[:-2] + ending)
        return texts

    def text(self) -> str:
        header, *rows = self.line_texts()
        ending = "\r\n" if self.crlf else "\n"
        parts = [header]
        for index, row_text in enumerate(rows):
            parts.append(row_text)
            if self.blank_after and self.blank_after[index]:
                parts.append(ending)
        return ("\ufeff" if self.bom else "") + "".join(parts)

    def lines(self) -> list[int]:
        """The physical line each row starts on (line 1 is the header)."""
        header, *rows = self.line_texts()
        line, starts = 1 + header.count("\n"), []
        for index, row_text in enumerate(rows):
            starts.append(line)
            line += row_text.count("\n")
            if self.blank_after and self.blank_after[index]:
                line += 1
        return starts

    @property
    def good(self) -> list[Row]:
        return [row for row in self.rows if row.bad_column is None]

    @property
    def bad_lines(self) -> dict[int, str]:
        return {
            line: row.bad_column
            for line, row in zip(self.lines(), self.rows, strict=True)
            if row.bad_column is not None
        }


# Cell values

FREE_TEXT = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs",), exclude_characters="\x00"),
    max_size=24,
) | st.sampled_from(['"quoted"', "a,b", "line\nbreak", "crlf\r\nbreak", "bare\rcr", " pad "])
HUGE_TEXT = st.sampled_from([1_000, 70_000, 200_000]).map(lambda n: "x" * n)
ID_TEXT = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Zl", "Zp")),
    min_size=1,
    max_size=10,
).filter(lambda text: text.strip())
BOOLEAN = st.sampled_from(["", "true", "F", "yes", "n", "1", "0", " Y "])
BAD_BOOLEAN = st.sampled_from(["maybe", "2", "truthy", "-1"])
UNIX = st.integers(0, NOW)
BAD_MOMENT = st.sampled_from(
    ["yesterday", "NaN", "nan", "inf", "-inf", "-1", "1e20", "2021-13-01", "12:00", "0x10"]
) | st.sampled_from(IMPOSSIBLE_DATES)
BAD_NUMBER = st.sampled_from(["NaN", "inf", "-Infinity", "abc", "1,5", "1e400", "--1"])


def moment_text(seconds: int, style: int) -> str:
    """One instant written in one of the forms the import accepts."""
    moment = dt.datetime.fromtimestamp(seconds, tz=dt.UTC)
    return [
        str(seconds),
        f"{seconds}.0",
        moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        moment.strftime("%Y-%m-%d %H:%M:%S"),
        moment.astimezone(dt.timezone(dt.timedelta(hours=5, minutes=30))).isoformat(),
        f" {seconds} ",
    ][style]


ITEM_FIELDS = {
    "TITLE": (FREE_TEXT, st.just("t" * 501)),
    "DESCRIPTION": (FREE_TEXT | HUGE_TEXT, None),
    "URL": (
        st.sampled_from(["", "https://shop.example/a", "http://x.example/p?q=1&r=2"]),
        st.sampled_from(["javascript:alert(1)", "//evil.example/x", "not a url", "http://"]),
    ),
    "PRICE": (
        st.sampled_from(["", "0", "0.5", "12.34", " 7 ", "9999999999.99"]),
        st.sampled_from(["-1", "-0.01", "1.234", "NaN", "inf", "-inf", "abc", "1e400", "1e10"]),
    ),
    "AVAILABLE": (BOOLEAN, BAD_BOOLEAN),
    "PUBLISHED_AT": (
        st.builds(moment_text, UNIX, st.integers(0, 5)) | st.just(""),
        BAD_MOMENT,
    ),
    "CATEGORIES": (FREE_TEXT, None),
    "TAGS": (FREE_TEXT, None),
}
USER_FIELDS = {
    "EMAIL": (
        st.sampled_from(["", "a@example.com", "first.last+tag@sub.example.org"]),
        st.sampled_from(["not-an-email", "a@", "@example.com", "a b@example.com"]),
    ),
    "EMAIL_OPT_IN": (BOOLEAN, BAD_BOOLEAN),
    "PERSONALIZATION_OPT_OUT": (BOOLEAN, BAD_BOOLEAN),
}
KNOWN_COLUMNS = {
    "USER_ID",
    "ITEM_ID",
    "TIMESTAMP",
    "EVENT_TYPE",
    "EVENT_VALUE",
    "EVENT_ID",
    "GENRES",
    "CREATION_TIMESTAMP",
    "IMAGE_URL",
    *ITEM_FIELDS,
    *USER_FIELDS,
}
EXTRA_NAME = st.text("abcxyzABC_- éßı0", min_size=1, max_size=8).filter(
    lambda name: name.strip() and name.strip().upper() not in KNOWN_COLUMNS
)


def extra_columns(draw) -> list[str]:
    names = draw(st.lists(EXTRA_NAME, max_size=3))
    unique, seen = [], set()
    for name in names:
        if name.strip().upper() not in seen:
            seen.add(name.strip().upper())
            unique.append(name)
    return unique


def with_huge_or_free(draw) -> str:
    return draw(FREE_TEXT | HUGE_TEXT) if draw(st.integers(0, 9)) == 0 else draw(FREE_TEXT)


@st.composite
def entity_tables(draw, kind: str) -> Table:
    id_column, fields = ("ITEM_ID", ITEM_FIELDS) if kind == "items" else ("USER_ID", USER_FIELDS)
    stored = STORED_ITEMS if kind == "items" else STORED_USERS
    chosen = draw(st.lists(st.sampled_from(sorted(fields)), unique=True, max_size=4))
    extras = extra_columns(draw)
    columns = [id_column, *chosen, *extras]
    if draw(st.booleans()):
        columns = [*columns[1:], id_column]
    ids = draw(st.lists(ID_TEXT, min_size=1, max_size=4)) + list(stored[:1])
    rows = []
    for _ in range(draw(st.integers(1, 10))):
        external_id = draw(st.sampled_from(ids))
        spaced = draw(st.sampled_from(["", " "]))
        cells = {id_column: f"{spaced}{external_id}{spaced}"}
        for column in chosen:
            cells[column] = draw(fields[column][0])
        for column in extras:
            cells[column] = with_huge_or_free(draw)
        breakable = [id_column, *(c for c in chosen if fields[c][1] is not None)]
        bad_column = draw(st.none() | st.sampled_from(breakable))
        if bad_column == id_column:
            cells[id_column] = draw(st.sampled_from(["", "   ", "x" * 256]))
        elif bad_column is not None:
            cells[bad_column] = draw(fields[bad_column][1])
        if not any(cell.strip() for cell in cells.values()):
            cells[id_column] = "x" * 256  # a row of nothing but spaces is a blank line
        rows.append(Row(cells, bad_column, external_id.strip()))
    return draw(table_layout(Table(kind, columns, rows)))


@st.composite
def table_layout(draw, table: Table) -> Table:
    table.blank_after = draw(
        st.lists(st.booleans(), min_size=len(table.rows), max_size=len(table.rows))
    )
    table.crlf = draw(st.booleans())
    table.bom = draw(st.booleans())
    return table


EVENT_TYPES = st.sampled_from(["", "view", "click", "purchase", "Zap-1", "new_type"])
BAD_EVENT_TYPES = st.sampled_from(["a b", "x" * 51, "é", "view!", "<script>"])


@st.composite
def interaction_tables(draw) -> Table:
    optional = draw(
        st.lists(st.sampled_from(["EVENT_TYPE", "EVENT_VALUE", "EVENT_ID"]), unique=True)
    )
    extras = extra_columns(draw)
    columns = draw(st.permutations(["USER_ID", "ITEM_ID", "TIMESTAMP", *optional, *extras]))
    event_ids = draw(st.lists(ID_TEXT, min_size=1, max_size=3))
    rows: list[Row] = []
    for _ in range(draw(st.integers(1, 10))):
        if rows and draw(st.integers(0, 4)) == 0:  # the same event again, maybe written otherwise
            earlier = draw(st.sampled_from(rows))
            cells = dict(earlier.cells)
            rows.append(Row(cells, earlier.bad_column, earlier.key))
            continue
        user, item = draw(st.sampled_from(STORED_USERS)), draw(st.sampled_from(STORED_ITEMS))
        seconds = draw(UNIX)
        event_type = draw(EVENT_TYPES) if "EVENT_TYPE" in columns else ""
        value = draw(st.none() | st.integers(-5, 5) | st.floats(-1e6, 1e6, allow_nan=False))
        event_id = draw(st.sampled_from(["", *event_ids])) if "EVENT_ID" in columns else ""
        cells = {
            "USER_ID": user,
            "ITEM_ID": f" {item}" if draw(st.booleans()) else item,
            "TIMESTAMP": moment_text(seconds, draw(st.integers(0, 5))),
            "EVENT_TYPE": event_type,
            "EVENT_VALUE": "" if value is None else repr(value),
            "EVENT_ID": event_id,
        }
        for column in extras:
            cells[column] = with_huge_or_free(draw)
        value_key = None if value is None or "EVENT_VALUE" not in columns else repr(float(value))
        key = event_id.strip() or (user, item, event_type or "view", seconds, value_key)
        bad_column = draw(
            st.none()
            | st.sampled_from(
                ["USER_ID", "ITEM_ID", "TIMESTAMP"]
                + [c for c in ("EVENT_TYPE", "EVENT_VALUE", "EVENT_ID") if c in columns]
            )
        )
        if bad_column == "USER_ID":
            cells["USER_ID"] = draw(st.sampled_from(["", "nobody", "x" * 256]))
        elif bad_column == "ITEM_ID":
            cells["ITEM_ID"] = draw(st.sampled_from(["", "ghost-item", "i-" + "9" * 300]))
        elif bad_column == "TIMESTAMP":
            cells["TIMESTAMP"] = draw(
                BAD_MOMENT | st.just("") | st.just(str(NOW + 3 * 86400))  # past the day of skew
            )
        elif bad_column == "EVENT_TYPE":
            cells["EVENT_TYPE"] = draw(BAD_EVENT_TYPES)
        elif bad_column == "EVENT_VALUE":
            cells["EVENT_VALUE"] = draw(BAD_NUMBER)
        elif bad_column == "EVENT_ID":
            cells["EVENT_ID"] = "e" * 256
        rows.append(Row(cells, bad_column, key))
    return draw(table_layout(Table("interactions", list(columns), rows)))


def any_table() -> st.SearchStrategy[Table]:
    return st.one_of(entity_tables("items"), entity_tables("users"), interaction_tables())


# Running an import


@pytest.fixture
def catalogue(db):
    for external_id in STORED_USERS:
        EndUserFactory(external_id=external_id)
    for external_id in STORED_ITEMS:
        ItemFactory(external_id=external_id)


def write(folder: Path, kind: str, data: bytes) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{kind}.csv"
    path.write_bytes(data)
    return str(path)


def import_one(path: str, kind: str, rejects_dir: Path, *, skip_invalid: bool):
    """The report, or the `ImportFailed`; any other exception fails the test."""
    try:
        return data_import(**{kind: path}, skip_invalid=skip_invalid, rejects_dir=rejects_dir)
    except ImportFailed as failure:
        assert str(failure).startswith(path), f"the message does not name the file: {failure}"
        return failure


def rejects_of(report) -> list[dict[str, str]]:
    path = report.files[0].rejects_path
    if path is None:
        return []
    csv.field_size_limit(sys.maxsize)  # huge fields come back in the rejects file
    with open(path, newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


def stored_keys(table: Table) -> set:
    if table.kind == "items":
        return set(Item.objects.values_list("external_id", flat=True))
    if table.kind == "users":
        return set(EndUser.objects.values_list("external_id", flat=True))
    return set(Interaction.objects.values_list("event_id", flat=True))


def check_entities_stored(table: Table, before: set) -> None:
    first: dict[str, Row] = {}
    for row in table.good:
        first.setdefault(row.key, row)
    model = Item if table.kind == "items" else EndUser
    id_column = "ITEM_ID" if table.kind == "items" else "USER_ID"
    assert stored_keys(table) == before | set(first)
    for external_id, row in first.items():
        entity = model.objects.get(external_id=external_id)
        assert entity.external_id == row.cells[id_column].strip()
        if "TITLE" in table.columns:
            assert entity.title == row.cells["TITLE"].strip()
        if "EMAIL" in table.columns:
            assert entity.email == row.cells["EMAIL"].strip()
        extras = [c for c in table.columns if c.strip().upper() not in KNOWN_COLUMNS]
        given = {c.strip().lower() for c in extras if row.cells[c].strip()}
        assert given <= set(entity.attributes)


# The properties


@hostile(45)
@given(table=any_table(), chunk_rows=st.sampled_from([1, 3, 50_000]))
def test_valid_rows_are_stored_once_and_bad_rows_rejected_with_line_and_reason(
    table, chunk_rows, catalogue, tmp_path_factory, monkeypatch
):
    monkeypatch.setattr(importing, "CHUNK_ROWS", chunk_rows)
    note(repr(table))
    folder = tmp_path_factory.mktemp("csv")
    path = write(folder, table.kind, table.text().encode("utf-8"))
    rejects_dir = folder / "rejects"
    with example_rolled_back():
        counts = row_counts()
        before = stored_keys(table)
        bad_lines = table.bad_lines

        strict = import_one(path, table.kind, rejects_dir, skip_invalid=False)
        if bad_lines:
            assert isinstance(strict, ImportFailed)
            assert row_counts() == counts, "a file with invalid rows wrote something"
            for line in sorted(bad_lines)[: importing.MAX_ERRORS]:
                assert f"{path} line {line}: " in str(strict)
            assert not rejects_dir.exists()
            report = import_one(path, table.kind, rejects_dir, skip_invalid=True)
        else:
            report = strict
        assert not isinstance(report, ImportFailed), str(report)

        file_report = report.files[0]
        assert file_report.read == len(table.rows)
        assert file_report.rejected == len(bad_lines)
        rejected = rejects_of(report)
        assert sorted(int(entry["LINE"]) for entry in rejected) == sorted(bad_lines)
        for entry in rejected:
            assert bad_lines[int(entry["LINE"])] in entry["REASON"], entry
        distinct = {row.key for row in table.good}
        if table.kind == "interactions":
            assert Interaction.objects.count() == counts["recommendations.Interaction"] + len(
                distinct
            )
            assert file_report.created == len(distinct)
            assert file_report.duplicates == len(table.good) - len(distinct)
        else:
            check_entities_stored(table, before)
            assert file_report.created == len(distinct - before)
            assert file_report.updated + file_report.unchanged == len(distinct & before)
            assert file_report.duplicates == len(table.good) - len(distinct)

        counts_after = row_counts()
        again = import_one(path, table.kind, rejects_dir, skip_invalid=True)
        assert not isinstance(again, ImportFailed), str(again)
        assert (again.files[0].created, again.files[0].updated) == (0, 0)
        assert row_counts() == counts_after, "a re-import stored something new"


# File-level problems: nothing of the file is written, whatever skip_invalid says.

FATAL = [
    "drop_required",
    "duplicate_column",
    "nameless_column",
    "alias_clash",
    "latin1",
    "bad_byte",
    "utf16",
    "empty",
    "header_only",
    "extra_field",
    "nul_byte",
    "unterminated_quote",
]


def fatal_bytes(table: Table, mutation: str, draw) -> tuple[bytes, str | None]:
    """The file broken by `mutation`, and what the message must say (None: anything)."""
    columns = list(table.columns)
    text = table.text()
    header, *_ = table.line_texts()
    if mutation == "drop_required":
        dropped = draw(st.sampled_from(importing.columns.REQUIRED_COLUMNS[table.kind]))
        table.columns = [c for c in columns if c != dropped]
        left = any(row.cells[c].strip() for row in table.rows for c in table.columns)
        return table.text().encode(), f" line 1: wrong columns: missing {dropped}" if left else None
    if mutation == "duplicate_column":
        twin = draw(st.sampled_from(columns))
        table.columns = [*columns, twin.lower() if twin.isupper() else twin.upper()]
        for row in table.rows:
            row.cells[table.columns[-1]] = "1"
        return table.text().encode(), " line 1: wrong columns: duplicated "
    if mutation == "nameless_column":
        table.columns = [*columns, draw(st.sampled_from(["", "  "]))]
        for row in table.rows:
            row.cells[table.columns[-1]] = "1"
        return table.text().encode(), " has no name"
    if mutation == "alias_clash":
        if table.kind != "items":
            return b"", " is empty"  # users and interactions have no aliases
        pair = ["CATEGORIES", "GENRES"]
        table.columns = [c for c in columns if c not in pair] + pair
        for row in table.rows:
            row.cells.update({"CATEGORIES": "a", "GENRES": "b"})
        return table.text().encode(), "CATEGORIES and GENRES both fill categories"
    if mutation == "latin1":
        line = draw(st.integers(1, len(table.rows) + 1))
        lines = text.split("\n")
        lines[line - 1] = lines[line - 1] + "é"  # on the header, the name changes: still fatal
        data = "\n".join(lines).encode("latin-1", errors="replace")
        return data, f" line {_line_of(data, _first_bad_byte(data))}: not UTF-8"
    if mutation == "bad_byte":
        data = text.encode()
        position = draw(st.integers(0, len(data)))
        bad = draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80"]))
        data = data[:position] + bad + data[position:]
        return data, f" line {_line_of(data, _first_bad_byte(data))}: not UTF-8"
    if mutation == "utf16":
        return text.encode(draw(st.sampled_from(["utf-16", "utf-16-le", "utf-16-be"]))), None
    if mutation == "empty":
        return draw(st.sampled_from([b"", b"\xef\xbb\xbf"])), " is empty"
    if mutation == "header_only":
        tail = draw(st.sampled_from(["", "\n", "\n\n", ",,\n"]))
        return (header + tail).encode(), "has a header but no rows"
    if mutation == "extra_field":
        index = draw(st.integers(0, len(table.rows) - 1))
        row_texts = table.line_texts()[1:]
        row_texts[index] = row_texts[index].rstrip("\r\n") + ",surplus\n"
        line = 1 + header.count("\n") + sum(t.count("\n") for t in row_texts[:index])
        return (header + "".join(row_texts)).encode(), f" line {line}: "
    if mutation == "nul_byte":
        data = text.encode()
        position = draw(st.integers(len(header.encode()), len(data)))
        data = data[:position] + b"\x00" + data[position:]
        return data, f" line {_line_of(data, position)}: "
    if mutation == "unterminated_quote":
        return (text + '"never closed,' + "x" * draw(st.integers(0, 3)) + "\n").encode(), None
    raise AssertionError(mutation)


def _line_of(data: bytes, position: int) -> int:
    return data[:position].count(b"\n") + 1


def _first_bad_byte(data: bytes) -> int:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as error:
        return error.start
    raise AssertionError("the data is UTF-8")


@hostile(45)
@given(table=any_table(), data=st.data())
def test_a_file_level_problem_writes_nothing_and_names_the_file(
    table, data, catalogue, tmp_path_factory
):
    mutation = data.draw(st.sampled_from(FATAL), label="mutation")
    note(repr(table))
    broken, expected = fatal_bytes(table, mutation, data.draw)
    folder = tmp_path_factory.mktemp("csv")
    path = write(folder, table.kind, broken)
    rejects_dir = folder / "rejects"
    with example_rolled_back():
        counts = row_counts()
        for skip_invalid in (True, False):
            outcome = import_one(path, table.kind, rejects_dir, skip_invalid=skip_invalid)
            assert isinstance(outcome, ImportFailed), f"{mutation}: imported {outcome}"
            if expected is not None:
                assert expected in str(outcome), (mutation, str(outcome))
            assert row_counts() == counts, f"{mutation}: a rejected file wrote rows"
            assert not list(rejects_dir.glob("*")), "a failed import left a rejects file"
        with pytest.raises(CommandError) as failure:
            call_command("import_data", f"--{table.kind}", path, "--skip-invalid", verbosity=0)
        assert str(failure.value).startswith(path)
        assert row_counts() == counts


@hostile(40)
@given(
    prefix=st.sampled_from(["", "USER_ID\n", "ITEM_ID,TITLE\n", "USER_ID,ITEM_ID,TIMESTAMP\n"]),
    noise=st.binary(max_size=300),
    kind=st.sampled_from(["users", "items", "interactions"]),
)
def test_random_bytes_never_crash_the_import(prefix, noise, kind, catalogue, tmp_path_factory):
    folder = tmp_path_factory.mktemp("csv")
    path = write(folder, kind, prefix.encode() + noise)
    with example_rolled_back():
        counts = row_counts()
        outcome = import_one(path, kind, folder / "rejects", skip_invalid=True)
        if isinstance(outcome, ImportFailed):
            assert row_counts() == counts
        else:
            report = outcome.files[0]
            assert report.read == (
                report.created + report.updated + report.unchanged + report.duplicates
                + report.rejected
            )  # fmt: skip


@hostile(20)
@given(
    users=entity_tables("users"),
    items=entity_tables("items"),
    mutation=st.sampled_from(["drop_required", "bad_byte", "nameless_column", "empty"]),
    data=st.data(),
)
def test_a_bad_last_file_stops_the_run_before_anything_is_written(
    users, items, mutation, data, catalogue, tmp_path_factory
):
    """Every file is checked before any is written: a typo in the interactions header leaves
    the users and items files unimported too."""
    interactions = Table(
        "interactions",
        ["USER_ID", "ITEM_ID", "TIMESTAMP"],
        [Row({"USER_ID": "u-0", "ITEM_ID": "i-0", "TIMESTAMP": "1"})],
    )
    broken, _ = fatal_bytes(interactions, mutation, data.draw)
    folder = tmp_path_factory.mktemp("csv")
    paths = {
        "users": write(folder, "users", users.text().encode()),
        "items": write(folder, "items", items.text().encode()),
        "interactions": write(folder, "interactions", broken),
    }
    with example_rolled_back():
        counts = row_counts()
        with pytest.raises(ImportFailed) as failure:
            data_import(**paths, skip_invalid=True, rejects_dir=folder / "rejects")
        assert str(failure.value).startswith(paths["interactions"])
        assert row_counts() == counts
        assert not list((folder / "rejects").glob("*"))


# Regression tests for what the properties found


def _import_text(tmp_path: Path, kind: str, text: str | bytes, **options):
    data = text.encode() if isinstance(text, str) else text
    path = write(tmp_path, kind, data)
    return path, import_one(path, kind, tmp_path / "rejects", **options)


def test_a_first_row_with_one_field_too_many_is_an_error_not_a_shifted_import(tmp_path):
    """pandas reads a first row with one field more than the header as an index column and
    shifts every value one column left: `1,a,x` became ITEM_ID 'a', TITLE 'x'."""
    path, outcome = _import_text(
        tmp_path, "items", "ITEM_ID,TITLE\n1,a,x\n2,b,y\n", skip_invalid=True
    )
    assert isinstance(outcome, ImportFailed)
    assert f"{path} line 2: " in str(outcome)
    assert not Item.objects.exists()


def test_a_nul_byte_is_rejected_with_its_line_not_stored(tmp_path):
    """PostgreSQL text cannot hold NUL: the import crashed there with a DataError (and stored
    it on SQLite). A NUL byte means the file is not UTF-8 text (UTF-16 most likely)."""
    path, outcome = _import_text(
        tmp_path, "items", "ITEM_ID,TITLE\n1,ok\n2,a\x00b\n", skip_invalid=True
    )
    assert isinstance(outcome, ImportFailed)
    assert f"{path} line 3: " in str(outcome)
    assert not Item.objects.exists()


@pytest.mark.parametrize("moment", IMPOSSIBLE_DATES)
@pytest.mark.parametrize("kind", ["items", "interactions"])
def test_an_impossible_date_is_a_rejected_row(tmp_path, catalogue, kind, moment):
    """Well-formed but impossible ISO dates raised ValueError/OverflowError out of the import."""
    text = (
        f"ITEM_ID,PUBLISHED_AT\nnew,{moment}\n"
        if kind == "items"
        else f"USER_ID,ITEM_ID,TIMESTAMP\nu-0,i-0,{moment}\n"
    )
    path, outcome = _import_text(tmp_path, kind, text, skip_invalid=True)
    assert not isinstance(outcome, ImportFailed), str(outcome)
    assert outcome.files[0].rejected == 1
    column = "PUBLISHED_AT" if kind == "items" else "TIMESTAMP"
    assert column in rejects_of(outcome)[0]["REASON"]


@pytest.mark.parametrize("digits", ["7" * 5000, "7" * 400 + ".5"], ids=["int-5000", "float-1e400"])
@pytest.mark.parametrize("kind", ["items", "interactions"])
def test_a_number_no_json_can_hold_is_kept_as_text(tmp_path, catalogue, kind, digits):
    """In a column of numbers, int() refuses more than 4,300 digits (ValueError out of the
    import) and float() turns 400 digits into infinity (not JSON: PostgreSQL refuses it)."""
    text = (
        f"ITEM_ID,SIZE\nnew,{digits}\n"
        if kind == "items"
        else f"USER_ID,ITEM_ID,TIMESTAMP,SIZE\nu-0,i-0,5,{digits}\n"
    )
    _, outcome = _import_text(tmp_path, kind, text, skip_invalid=True)
    assert not isinstance(outcome, ImportFailed), str(outcome)
    assert outcome.files[0].created == 1
    stored = (
        Item.objects.get(external_id="new").attributes
        if kind == "items"
        else Interaction.objects.get().context
    )
    assert stored == {"size": digits}


def test_a_row_with_too_many_fields_is_named_by_its_physical_line(tmp_path):
    """pandas counts records, not lines: after a cell holding a newline, the message named
    line 4 for the row on line 5."""
    text = 'ITEM_ID,TITLE\n1,"two\nlines"\n2,b\n3,c,surplus\n'
    path, outcome = _import_text(tmp_path, "items", text, skip_invalid=True)
    assert isinstance(outcome, ImportFailed)
    assert f"{path} line 5: 3 fields where the header has 2" in str(outcome)


def test_an_unterminated_quote_on_an_early_row_is_an_import_error(tmp_path):
    """pandas tokenizes the first rows when the reader is created, outside the code that
    turned its ParserError into ImportFailed."""
    path, outcome = _import_text(tmp_path, "users", 'USER_ID\n"u9\n', skip_invalid=True)
    assert isinstance(outcome, ImportFailed)
    assert str(outcome).startswith(path)
    assert not EndUser.objects.exists()


def test_event_types_from_rejected_rows_are_not_created(tmp_path, catalogue):
    """A row rejected for its user leaves no event type behind."""
    _, outcome = _import_text(
        tmp_path,
        "interactions",
        "USER_ID,ITEM_ID,TIMESTAMP,EVENT_TYPE\nnobody,i-0,5,brand-new\n",
        skip_invalid=True,
    )
    assert outcome.files[0].rejected == 1
    assert not EventType.objects.filter(name="brand-new").exists()
