import csv
import datetime
from decimal import Decimal
from pathlib import Path

import pytest
from celery.result import EagerResult
from django.core.management import CommandError, call_command

from recommendations.models import EndUser, EventType, Interaction, Item
from recommendations.services import importing
from recommendations.services.events import events_ingest
from recommendations.services.importing import ImportFailed, data_import
from recommendations.tasks import data_import_task
from tests.factories import EndUserFactory, InteractionFactory, ItemFactory

MOVIELENS = Path(__file__).resolve().parents[3] / "shared/data/movielens-100k"

pytestmark = pytest.mark.django_db


def csv_file(tmp_path: Path, name: str, text: str | bytes) -> str:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return str(path)


def stored_counts() -> tuple[int, int, int, int]:
    return (
        EndUser.objects.count(),
        Item.objects.count(),
        Interaction.objects.count(),
        EventType.objects.count(),
    )


@pytest.fixture
def catalogue():
    """Users u1, u2 and items i1, i2 already stored."""
    for external_id in ("u1", "u2"):
        EndUserFactory(external_id=external_id)
    for external_id in ("i1", "i2"):
        ItemFactory(external_id=external_id)


def assert_fails_writing_nothing(expected: str, **files) -> ImportFailed:
    before = stored_counts()
    with pytest.raises(ImportFailed) as failure:
        data_import(**files)
    assert expected in str(failure.value)
    assert stored_counts() == before
    return failure.value


# What lands where


def test_user_columns_map_to_fields_and_attributes(tmp_path):
    users = csv_file(
        tmp_path,
        "users.csv",
        "user_id,Email,EMAIL_OPT_IN,AGE,Gender,ZIP_CODE\n"
        "u1,a@example.com,yes,24,M,01002\n"
        "u2,,0,53,F,94043\n",
    )

    report = data_import(users=users)

    assert report.files[0].created == 2
    first = EndUser.objects.get(external_id="u1")
    assert (first.email, first.email_opt_in, first.is_anonymous) == ("a@example.com", True, False)
    assert first.attributes == {"age": 24, "gender": "M", "zip_code": "01002"}
    assert EndUser.objects.get(external_id="u2").attributes["zip_code"] == "94043"


def test_item_columns_map_to_fields_and_attributes(tmp_path):
    items = csv_file(
        tmp_path,
        "items.csv",
        "ITEM_ID,TITLE,YEAR,GENRES,TAGS,PRICE,AVAILABLE,CREATION_TIMESTAMP,URL\n"
        "1,Toy Story,1995,Animation|Children's|Comedy,pixar| cgi ,9.90,false,1700000000,"
        "https://example.com/1\n"
        '2,"Usual Suspects, The",1995,Crime,,,,,\n',
    )

    data_import(items=items)

    toy_story = Item.objects.get(external_id="1")
    assert toy_story.title == "Toy Story"
    assert toy_story.categories == ["Animation", "Children's", "Comedy"]
    assert toy_story.tags == ["pixar", "cgi"]
    assert toy_story.attributes == {"year": 1995}
    assert toy_story.price == Decimal("9.90")
    assert toy_story.available is False
    assert toy_story.published_at == datetime.datetime(
        2023, 11, 14, 22, 13, 20, tzinfo=datetime.UTC
    )
    assert toy_story.url == "https://example.com/1"
    suspects = Item.objects.get(external_id="2")
    assert (suspects.title, suspects.available, suspects.price) == (
        "Usual Suspects, The",
        True,
        None,
    )


def test_a_numeric_column_keeps_its_odd_text_value(tmp_path):
    rows = "".join(f"{n},{1900 + n}\n" for n in range(1, 120))
    items = csv_file(tmp_path, "items.csv", f"ITEM_ID,YEAR\n{rows}odd,V\n")

    data_import(items=items)

    assert Item.objects.get(external_id="5").attributes == {"year": 1905}
    assert Item.objects.get(external_id="odd").attributes == {"year": "V"}


def test_interactions_default_to_view_and_keep_extra_columns_as_context(tmp_path, catalogue):
    interactions = csv_file(
        tmp_path,
        "interactions.csv",
        "USER_ID,ITEM_ID,TIMESTAMP,EVENT_VALUE,DEVICE,PAGE\n"
        "u1,i1,1700000000,,mobile,3\n"
        "u2,i2,2023-11-14T22:13:20Z,0.5,desktop,4\n",
    )

    data_import(interactions=interactions)

    first, second = Interaction.objects.order_by("user__external_id")
    assert first.event_type.name == "view"
    assert (first.event_value, first.context) == (None, {"device": "mobile", "page": 3})
    assert first.source == Interaction.Source.IMPORT
    assert second.event_value == 0.5
    assert first.timestamp == second.timestamp


def test_unknown_event_types_are_created_with_weight_one(tmp_path, catalogue):
    interactions = csv_file(
        tmp_path,
        "interactions.csv",
        "USER_ID,ITEM_ID,TIMESTAMP,EVENT_TYPE\nu1,i1,1700000000,share\nu1,i2,1700000001,click\n",
    )

    report = data_import(interactions=interactions)

    assert report.event_types_created == ["share"]
    assert EventType.objects.get(name="share").weight == 1.0


def test_event_id_column_makes_the_row_idempotent(tmp_path, catalogue):
    interactions = csv_file(
        tmp_path,
        "interactions.csv",
        "USER_ID,ITEM_ID,TIMESTAMP,EVENT_ID\nu1,i1,1700000000,e-1\nu2,i2,1700000005,e-1\n",
    )

    report = data_import(interactions=interactions)

    assert (report.files[0].created, report.files[0].duplicates) == (1, 1)
    assert Interaction.objects.get().event_id == "e-1"


def test_interaction_factory_rows_count_as_stored(tmp_path):
    interaction = InteractionFactory(event_id="e-1")
    interactions = csv_file(
        tmp_path,
        "interactions.csv",
        f"USER_ID,ITEM_ID,TIMESTAMP,EVENT_ID\n"
        f"{interaction.user.external_id},{interaction.item.external_id},1700000000,e-1\n",
    )

    report = data_import(interactions=interactions)

    assert (report.files[0].created, report.files[0].duplicates) == (0, 1)


def test_derived_event_ids_match_the_events_api(tmp_path, catalogue):
    interactions = csv_file(
        tmp_path,
        "interactions.csv",
        "USER_ID,ITEM_ID,TIMESTAMP,EVENT_TYPE,EVENT_VALUE\nu1,i1,1700000000.25,rating,4\n",
    )
    data_import(interactions=interactions)

    result = events_ingest(
        events=[
            {
                "user_id": "u1",
                "item_id": "i1",
                "event_type": "rating",
                "event_value": 4,
                "timestamp": 1700000000.25,
            }
        ]
    )

    assert (result.accepted, result.duplicates) == (0, 1)


def test_an_anonymous_user_becomes_known(tmp_path):
    EndUserFactory(external_id="u1", is_anonymous=True)

    report = data_import(users=csv_file(tmp_path, "users.csv", "USER_ID\nu1\n"))

    assert report.files[0].updated == 1
    assert EndUser.objects.get().is_anonymous is False


# Re-import


def small_files(tmp_path: Path) -> dict[str, str]:
    return {
        "users": csv_file(tmp_path, "users.csv", "USER_ID,AGE\nu1,24\nu2,31\nu1,99\n"),
        "items": csv_file(tmp_path, "items.csv", "ITEM_ID,TITLE,GENRES\ni1,One,A|B\ni2,Two,\n"),
        "interactions": csv_file(
            tmp_path,
            "interactions.csv",
            "USER_ID,ITEM_ID,TIMESTAMP,EVENT_TYPE,EVENT_VALUE\n"
            "u1,i1,1700000000,rating,4\nu2,i2,1700000001,view,\nu2,i2,1700000001,view,\n",
        ),
    }


def test_reimport_changes_and_duplicates_nothing(tmp_path):
    files = small_files(tmp_path)
    first = data_import(**files)
    stored = {user.external_id: user.updated_at for user in EndUser.objects.all()}

    second = data_import(**files)

    assert [(f.created, f.duplicates) for f in first.files] == [(2, 1), (2, 0), (2, 1)]
    assert [(f.created, f.updated, f.unchanged) for f in second.files[:2]] == [(0, 0, 2)] * 2
    assert (second.files[2].created, second.files[2].duplicates) == (0, 3)
    assert stored_counts()[:3] == (2, 2, 2)
    assert {user.external_id: user.updated_at for user in EndUser.objects.all()} == stored
    assert EndUser.objects.get(external_id="u1").attributes == {"age": 24}, "first row wins"


def test_reimport_updates_only_changed_rows_and_keeps_other_attributes(tmp_path):
    EndUserFactory(external_id="u1", attributes={"age": 20, "plan": "gold"})
    EndUserFactory(external_id="u2", attributes={"age": 31})

    report = data_import(users=csv_file(tmp_path, "users.csv", "USER_ID,AGE\nu1,21\nu2,31\n"))

    assert (report.files[0].updated, report.files[0].unchanged) == (1, 1)
    assert EndUser.objects.get(external_id="u1").attributes == {"age": 21, "plan": "gold"}


def test_an_empty_cell_clears_the_attribute(tmp_path):
    EndUserFactory(external_id="u1", attributes={"age": 20, "plan": "gold"})

    data_import(users=csv_file(tmp_path, "users.csv", "USER_ID,AGE\nu1,\n"))

    assert EndUser.objects.get().attributes == {"plan": "gold"}


# Bad input: the file names the line and the reason, and nothing of the file is written


def test_missing_id_is_reported(tmp_path):
    users = csv_file(tmp_path, "users.csv", "USER_ID,AGE\nu1,3\n ,4\n")

    assert_fails_writing_nothing("users.csv line 3: USER_ID is required", users=users)


def test_missing_interaction_ids_are_reported(tmp_path, catalogue):
    interactions = csv_file(
        tmp_path, "interactions.csv", "USER_ID,ITEM_ID,TIMESTAMP\n,i1,1700000000\nu1,,1700000000\n"
    )

    failure = assert_fails_writing_nothing(
        "interactions.csv line 2: USER_ID is required", interactions=interactions
    )
    assert "interactions.csv line 3: ITEM_ID is required" in str(failure)


def test_unparsable_timestamp_is_reported(tmp_path, catalogue):
    interactions = csv_file(
        tmp_path,
        "interactions.csv",
        "USER_ID,ITEM_ID,TIMESTAMP\nu1,i1,1700000000\nu1,i2,yesterday\n",
    )

    assert_fails_writing_nothing(
        "interactions.csv line 3: TIMESTAMP: unparsable timestamp 'yesterday'",
        interactions=interactions,
    )


def test_timestamp_in_the_future_is_reported(tmp_path, catalogue):
    interactions = csv_file(
        tmp_path, "interactions.csv", "USER_ID,ITEM_ID,TIMESTAMP\nu1,i1,4102444800\n"
    )

    assert_fails_writing_nothing(
        "interactions.csv line 2: TIMESTAMP: more than a day in the future",
        interactions=interactions,
    )


def test_unknown_user_and_item_are_reported(tmp_path, catalogue):
    interactions = csv_file(
        tmp_path,
        "interactions.csv",
        "USER_ID,ITEM_ID,TIMESTAMP\nu1,i1,1700000000\nu9,i1,1700000000\nu1,i9,1700000000\n",
    )

    failure = assert_fails_writing_nothing(
        "interactions.csv line 3: USER_ID 'u9' is not a known user", interactions=interactions
    )
    assert "interactions.csv line 4: ITEM_ID 'i9' is not a known item" in str(failure)


def test_interactions_may_name_users_and_items_of_the_same_run(tmp_path):
    report = data_import(
        users=csv_file(tmp_path, "users.csv", "USER_ID\nu1\n"),
        items=csv_file(tmp_path, "items.csv", "ITEM_ID\ni1\n"),
        interactions=csv_file(
            tmp_path, "interactions.csv", "USER_ID,ITEM_ID,TIMESTAMP\nu1,i1,1700000000\n"
        ),
    )

    assert report.files[2].created == 1


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("USER_ID,ITEM_ID", "line 1: wrong columns: missing TIMESTAMP (found USER_ID, ITEM_ID;"),
        ("USER_ID,ITEM_ID,TIMESTAMP,user_id", "line 1: wrong columns: duplicated USER_ID"),
        ("USER_ID,,ITEM_ID,TIMESTAMP", "line 1: wrong columns: column 2 has no name"),
    ],
)
def test_wrong_column_set_is_reported(tmp_path, catalogue, header, expected):
    interactions = csv_file(tmp_path, "interactions.csv", f"{header}\nu1,i1,1700000000,x\n")

    assert_fails_writing_nothing(f"interactions.csv {expected}", interactions=interactions)


def test_two_columns_for_one_field_are_reported(tmp_path):
    items = csv_file(tmp_path, "items.csv", "ITEM_ID,GENRES,CATEGORIES\ni1,A,B\n")

    assert_fails_writing_nothing(
        "items.csv line 1: wrong columns: GENRES and CATEGORIES both fill categories", items=items
    )


def test_bad_columns_in_a_later_file_stop_the_run_before_anything_is_written(tmp_path):
    users = csv_file(tmp_path, "users.csv", "USER_ID\nu1\n")
    interactions = csv_file(tmp_path, "interactions.csv", "USER_ID,ITEM\nu1,i1\n")

    assert_fails_writing_nothing(
        "interactions.csv line 1: wrong columns: missing ITEM_ID, TIMESTAMP",
        users=users,
        interactions=interactions,
    )


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "users.csv: the file is empty (0 bytes)"),
        (b"USER_ID,AGE\n", "users.csv: the file has a header but no rows"),
        (b"\xef\xbb\xbfUSER_ID\n\n\n", "users.csv: the file has a header but no rows"),
    ],
)
def test_empty_file_is_reported(tmp_path, content, expected):
    assert_fails_writing_nothing(expected, users=csv_file(tmp_path, "users.csv", content))


def test_wrong_encoding_names_the_line_of_the_first_bad_byte(tmp_path):
    users = csv_file(
        tmp_path, "users.csv", "USER_ID,CITY\nu1,Paris\nu2,Montréal\n".encode("latin-1")
    )

    assert_fails_writing_nothing("users.csv line 3: not UTF-8 (byte 0xe9)", users=users)


def test_a_bad_byte_past_the_first_block_is_found(tmp_path):
    rows = b"".join(b"u%d,%s\n" % (n, b"x" * 60) for n in range(1, 20_000))
    assert len(rows) > 1 << 20
    users = csv_file(tmp_path, "users.csv", b"USER_ID,CITY\n" + rows + b"bad,Z\xfcrich\n")

    assert_fails_writing_nothing("users.csv line 20001: not UTF-8 (byte 0xfc)", users=users)


def test_a_character_split_across_read_blocks_is_fine(tmp_path):
    header = b"USER_ID,CITY\n"
    padding = (1 << 20) - len(header) - len(b"u1,") - 1  # "\xc3\xa9" straddles the block end
    content = header + b"u1," + b"x" * padding + "é\n".encode()
    users = csv_file(tmp_path, "users.csv", content)

    data_import(users=users)

    assert EndUser.objects.get().attributes["city"].endswith("xé")


def test_a_utf8_bom_is_accepted(tmp_path):
    users = csv_file(tmp_path, "users.csv", "\ufeffUSER_ID,CITY\nu1,Zürich\n".encode())

    data_import(users=users)

    assert EndUser.objects.get().attributes == {"city": "Zürich"}


def test_a_row_with_too_many_fields_is_reported(tmp_path):
    users = csv_file(tmp_path, "users.csv", "USER_ID,AGE\nu1,3\nu2,4,5\n")

    assert_fails_writing_nothing("users.csv line 3: 3 fields where the header has 2", users=users)


def test_a_missing_file_is_named(tmp_path):
    missing = str(tmp_path / "users.csv")

    assert_fails_writing_nothing(f"{missing}: no such file", users=missing)


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ("i1,-3,,", "PRICE: '-3' is not a price"),
        ("i1,1.005,,", "PRICE: '1.005' has more than 2 decimal places"),
        ("i1,,maybe,", "AVAILABLE: 'maybe' is not true/false"),
        ("i1,,,not a url", "URL: 'not a url' is not a valid URL"),
    ],
)
def test_invalid_item_values_are_reported(tmp_path, row, expected):
    items = csv_file(tmp_path, "items.csv", f"ITEM_ID,PRICE,AVAILABLE,URL\n{row}\n")

    assert_fails_writing_nothing(f"items.csv line 2: {expected}", items=items)


def test_invalid_event_value_and_type_are_reported_together(tmp_path, catalogue):
    interactions = csv_file(
        tmp_path,
        "interactions.csv",
        "USER_ID,ITEM_ID,TIMESTAMP,EVENT_TYPE,EVENT_VALUE\nu1,i1,1700000000,add to cart,lots\n",
    )

    assert_fails_writing_nothing(
        "interactions.csv line 2: EVENT_VALUE: 'lots' is not a finite number; "
        "EVENT_TYPE: 'add to cart' is not a type name",
        interactions=interactions,
    )


def test_an_error_in_a_later_chunk_rolls_back_the_earlier_chunks(tmp_path, catalogue, monkeypatch):
    monkeypatch.setattr(importing, "CHUNK_ROWS", 2)
    rows = "".join(f"u1,i1,{1700000000 + n}\n" for n in range(5))
    interactions = csv_file(
        tmp_path, "interactions.csv", f"USER_ID,ITEM_ID,TIMESTAMP\n{rows}u1,i1,soon\n"
    )

    assert_fails_writing_nothing(
        "interactions.csv line 7: TIMESTAMP: unparsable", interactions=interactions
    )


def test_errors_are_collected_up_to_twenty(tmp_path, catalogue):
    rows = "".join(f"u9,i1,{1700000000 + n}\n" for n in range(30))
    interactions = csv_file(tmp_path, "interactions.csv", f"USER_ID,ITEM_ID,TIMESTAMP\n{rows}")

    failure = assert_fails_writing_nothing(
        "at least 30 invalid rows, the first 20 below", interactions=interactions
    )

    lines = str(failure).splitlines()
    assert len(lines) == 21
    assert lines[1].endswith("interactions.csv line 2: USER_ID 'u9' is not a known user")
    assert lines[-1].endswith("interactions.csv line 21: USER_ID 'u9' is not a known user")


def test_line_numbers_count_quoted_newlines_and_blank_lines(tmp_path):
    items = csv_file(
        tmp_path,
        "items.csv",
        'ITEM_ID,DESCRIPTION,PRICE\ni1,"two\nlines",1\n\ni2,"three\r\nphysical\nlines",2\ni3,,x\n',
    )

    assert_fails_writing_nothing("items.csv line 8: PRICE: 'x' is not a number", items=items)


def test_a_failed_file_keeps_the_files_before_it(tmp_path):
    users = csv_file(tmp_path, "users.csv", "USER_ID\nu1\n")
    interactions = csv_file(
        tmp_path, "interactions.csv", "USER_ID,ITEM_ID,TIMESTAMP\nu1,i9,1700000000\n"
    )

    with pytest.raises(ImportFailed) as failure:
        data_import(users=users, interactions=interactions)

    assert EndUser.objects.count() == 1
    assert Interaction.objects.count() == 0
    assert failure.value.report.files[0].created == 1


# --skip-invalid


def test_skip_invalid_writes_the_valid_rows_and_a_rejects_file(tmp_path, catalogue):
    interactions = csv_file(
        tmp_path,
        "interactions.csv",
        "user_id,ITEM_ID,TIMESTAMP\n"
        "u1,i1,1700000000\nu9,i1,1700000000\nu2,i2,never\nu2,i2,1700000000\n",
    )

    report = data_import(
        interactions=interactions, skip_invalid=True, rejects_dir=tmp_path / "rejects"
    )

    file_report = report.files[0]
    assert (file_report.read, file_report.created, file_report.rejected) == (4, 2, 2)
    assert Interaction.objects.count() == 2
    rejects = Path(file_report.rejects_path)
    assert rejects.parent == tmp_path / "rejects"
    assert rejects.name.startswith("interactions-rejects-")
    with rejects.open(newline="") as stream:
        rows = list(csv.reader(stream))
    assert rows[0] == ["user_id", "ITEM_ID", "TIMESTAMP", "LINE", "REASON"]
    assert rows[1] == ["u9", "i1", "1700000000", "3", "USER_ID 'u9' is not a known user"]
    assert rows[2][:4] == ["u2", "i2", "never", "4"]
    assert rows[2][4].startswith("TIMESTAMP: unparsable timestamp 'never'")


def test_skip_invalid_writes_no_rejects_file_for_a_clean_file(tmp_path):
    users = csv_file(tmp_path, "users.csv", "USER_ID\nu1\n")

    report = data_import(users=users, skip_invalid=True, rejects_dir=tmp_path / "rejects")

    assert report.files[0].rejects_path is None
    assert not (tmp_path / "rejects").exists()


def test_skip_invalid_still_fails_on_a_wrong_file(tmp_path):
    users = csv_file(tmp_path, "users.csv", b"")

    with pytest.raises(ImportFailed, match="the file is empty"):
        data_import(users=users, skip_invalid=True, rejects_dir=tmp_path / "rejects")


# The command


def test_command_imports_and_prints_a_summary(tmp_path, capsys):
    files = small_files(tmp_path)

    call_command(
        "import_data",
        "--users",
        files["users"],
        "--items",
        files["items"],
        "--interactions",
        files["interactions"],
        verbosity=0,
    )

    output = capsys.readouterr().out
    assert "created" in output and "duplicates" in output
    assert files["interactions"] in output
    assert "Imported in" in output
    assert stored_counts()[:3] == (2, 2, 2)


def test_command_fails_with_file_line_and_reason(tmp_path):
    users = csv_file(tmp_path, "users.csv", "USER_ID,AGE\n\n\nu1,1\n,2\n")

    with pytest.raises(CommandError, match=r"users\.csv line 5: USER_ID is required"):
        call_command("import_data", "--users", users, verbosity=0)

    assert EndUser.objects.count() == 0


def test_command_with_skip_invalid_reports_the_rejects(tmp_path, capsys, catalogue):
    interactions = csv_file(
        tmp_path, "interactions.csv", "USER_ID,ITEM_ID,TIMESTAMP\nu1,i1,1700000000\nu9,i1,1\n"
    )

    call_command(
        "import_data",
        "--interactions",
        interactions,
        "--skip-invalid",
        "--rejects-dir",
        str(tmp_path / "rejects"),
        verbosity=0,
    )

    output = capsys.readouterr().out
    assert "1 invalid rows were skipped" in output
    assert str(tmp_path / "rejects" / "interactions-rejects-") in output


def test_command_needs_a_file():
    with pytest.raises(CommandError, match="give at least one of"):
        call_command("import_data", verbosity=0)


# MovieLens-100k and the real worker


@pytest.mark.skipif(not MOVIELENS.is_dir(), reason="needs the shared MovieLens-100k data")
@pytest.mark.slow
def test_movielens_imports_exactly_twice_in_a_row():
    files = {kind: str(MOVIELENS / f"{kind}.csv") for kind in ("users", "items", "interactions")}

    first = data_import(**files)
    second = data_import(**files)

    assert stored_counts()[:3] == (943, 1682, 100_000)
    assert [f.created for f in first.files] == [943, 1682, 100_000]
    assert [f.created + f.updated for f in second.files] == [0, 0, 0]
    assert second.files[2].duplicates == 100_000
    toy_story = Item.objects.get(external_id="1")
    assert (toy_story.categories, toy_story.attributes) == (
        ["Animation", "Children's", "Comedy"],
        {"year": 1995},
    )
    assert EndUser.objects.get(external_id="1").attributes == {
        "age": 24,
        "gender": "M",
        "occupation": "technician",
        "zip_code": "85711",
    }


@pytest.mark.services
def test_import_task_runs_on_a_real_worker(celery_worker_on_redis, tmp_path):
    files = small_files(tmp_path)

    result = data_import_task.delay(**files)
    report = result.get(timeout=60)

    assert not isinstance(result, EagerResult)

    assert [f["created"] for f in report["files"]] == [2, 2, 2]
    assert stored_counts()[:3] == (2, 2, 2)
