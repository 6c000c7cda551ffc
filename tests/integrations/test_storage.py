"""Object storage against a real S3 API: moto's server over HTTP on loopback."""

import io

import pytest

from integrations.storage import StorageError, local_copy, put
from recommendations.models import EndUser, Interaction, Item
from recommendations.services.importing import ImportFailed, data_import
from tests.conftest import S3_BUCKET as BUCKET


def test_local_path_is_used_as_it_is(tmp_path):
    path = tmp_path / "users.csv"
    path.write_text("USER_ID\nu1\n")
    with local_copy(str(path)) as local:
        assert local == path


def test_missing_local_file_is_named(tmp_path):
    with pytest.raises(StorageError, match=r"nope\.csv: no such file"):
        with local_copy(str(tmp_path / "nope.csv")):
            pass


def test_put_bytes_then_read_back_from_s3(s3):
    uri = f"s3://{BUCKET}/exports/users.csv"
    put(uri, b"USER_ID\nu1\n")
    with local_copy(uri) as local:
        assert local.read_bytes() == b"USER_ID\nu1\n"
        assert local.suffix == ".csv"
    assert not local.exists(), "the download is a temporary file"


def test_put_a_file_and_a_stream_to_s3(s3, tmp_path):
    source = tmp_path / "model.bin"
    source.write_bytes(b"\x00\x01")
    put(f"s3://{BUCKET}/a/model.bin", source)
    put(f"s3://{BUCKET}/a/stream.bin", io.BytesIO(b"\x02"))
    assert s3.get_object(Bucket=BUCKET, Key="a/model.bin")["Body"].read() == b"\x00\x01"
    assert s3.get_object(Bucket=BUCKET, Key="a/stream.bin")["Body"].read() == b"\x02"


def test_put_to_a_local_path_creates_its_folder(tmp_path):
    target = tmp_path / "deep" / "folder" / "out.csv"
    put(str(target), b"x")
    put(str(tmp_path / "copy.csv"), target)
    assert (tmp_path / "copy.csv").read_bytes() == b"x"


def test_missing_object_is_named(s3):
    uri = f"s3://{BUCKET}/nothing-here.csv"
    with pytest.raises(StorageError, match=f"{uri}: no such object"):
        with local_copy(uri):
            pass


def test_missing_bucket_is_named(s3):
    uri = "s3://no-such-bucket/users.csv"
    with pytest.raises(StorageError, match=f"{uri}: no such object"):
        with local_copy(uri):
            pass


def test_missing_credentials_are_named(moto_endpoint, monkeypatch, settings, tmp_path):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", raising=False)
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", raising=False)
    settings.AWS_ENDPOINT_URL = moto_endpoint
    uri = f"s3://{BUCKET}/users.csv"
    with pytest.raises(StorageError, match=f"{uri}: no AWS credentials"):
        with local_copy(uri):
            pass


@pytest.mark.parametrize("uri", ["s3://", "s3://bucket-only", "s3://bucket/folder/"])
def test_uri_without_a_key_is_refused(uri):
    with pytest.raises(StorageError, match="not an object URI"):
        put(uri, b"x")


@pytest.mark.django_db
def test_import_reads_s3_uris(s3):
    put(f"s3://{BUCKET}/in/users.csv", b"USER_ID,AGE\nu1,31\nu2,45\n")
    put(f"s3://{BUCKET}/in/items.csv", b"ITEM_ID,TITLE\ni1,One\n")
    put(
        f"s3://{BUCKET}/in/interactions.csv",
        b"USER_ID,ITEM_ID,TIMESTAMP\nu1,i1,1700000000\nu2,i1,1700000001\n",
    )

    report = data_import(
        users=f"s3://{BUCKET}/in/users.csv",
        items=f"s3://{BUCKET}/in/items.csv",
        interactions=f"s3://{BUCKET}/in/interactions.csv",
    )

    assert [file_report.created for file_report in report.files] == [2, 1, 2]
    assert EndUser.objects.get(external_id="u1").attributes == {"age": 31}
    assert Item.objects.count() == 1
    assert Interaction.objects.count() == 2


@pytest.mark.django_db
def test_import_of_a_missing_s3_object_writes_nothing(s3):
    put(f"s3://{BUCKET}/in/users.csv", b"USER_ID\nu1\n")
    uri = f"s3://{BUCKET}/in/missing.csv"

    with pytest.raises(ImportFailed, match=f"{uri}: no such object"):
        data_import(users=f"s3://{BUCKET}/in/users.csv", interactions=uri)

    assert EndUser.objects.count() == 0
