"""Object storage: local paths and s3:// URIs behind two calls, `local_copy` and `put`.

S3 means AWS or any S3-compatible endpoint (`settings.AWS_ENDPOINT_URL`). The rest of the
code reaches S3 only through this module.
"""

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import BinaryIO

import boto3
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
from django.conf import settings

S3_SCHEME = "s3://"
MISSING_CODES = {"404", "NoSuchKey", "NoSuchBucket", "NotFound"}


class StorageError(Exception):
    """A file or object that cannot be read or written; the message names the URI."""


def is_s3_uri(uri: str) -> bool:
    return uri.startswith(S3_SCHEME)


def s3_uri_split(uri: str) -> tuple[str, str]:
    """The bucket and key of an s3://bucket/key URI."""
    bucket, _, key = uri.removeprefix(S3_SCHEME).partition("/")
    if not bucket or not key or key.endswith("/"):
        raise StorageError(f"{uri}: not an object URI (expected s3://bucket/key)")
    return bucket, key


def _s3_client():
    # A new session each time: boto3's default session keeps the first credentials it finds.
    return boto3.session.Session().client(
        "s3", endpoint_url=settings.AWS_ENDPOINT_URL, region_name=settings.AWS_REGION
    )


def _s3_error(uri: str, error: Exception) -> StorageError:
    if isinstance(error, NoCredentialsError):
        return StorageError(f"{uri}: no AWS credentials (set AWS_ACCESS_KEY_ID/AWS_PROFILE)")
    if isinstance(error, ClientError):
        code = str(error.response.get("Error", {}).get("Code", ""))
        if code in MISSING_CODES:
            return StorageError(f"{uri}: no such object")
        if code in {"403", "AccessDenied"}:
            return StorageError(f"{uri}: access denied")
        return StorageError(f"{uri}: S3 error {code or error}")
    return StorageError(f"{uri}: {error}")


@contextmanager
def local_copy(uri: str) -> Iterator[Path]:
    """A local path holding the file: the path itself, or a temporary download of the object."""
    if not is_s3_uri(uri):
        path = Path(uri)
        if not path.is_file():
            raise StorageError(f"{uri}: no such file")
        yield path
        return
    bucket, key = s3_uri_split(uri)
    suffix = PurePosixPath(key).suffix
    with tempfile.TemporaryDirectory(prefix="recsite-s3-") as folder:
        path = Path(folder) / f"object{suffix}"
        try:
            _s3_client().download_file(bucket, key, str(path))
        except (BotoCoreError, ClientError) as error:
            raise _s3_error(uri, error) from error
        yield path


def put(uri: str, data: bytes | Path | BinaryIO) -> str:
    """Write bytes, a local file or a binary stream to a local path or an s3:// URI."""
    if is_s3_uri(uri):
        _s3_put(uri, data)
    else:
        _local_put(Path(uri), data)
    return uri


def _s3_put(uri: str, data: bytes | Path | BinaryIO) -> None:
    bucket, key = s3_uri_split(uri)
    client = _s3_client()
    try:
        if isinstance(data, bytes):
            client.put_object(Bucket=bucket, Key=key, Body=data)
        elif isinstance(data, Path):
            client.upload_file(str(data), bucket, key)
        else:
            client.upload_fileobj(data, bucket, key)
    except (BotoCoreError, ClientError) as error:
        raise _s3_error(uri, error) from error


def _local_put(path: Path, data: bytes | Path | BinaryIO) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, bytes):
            path.write_bytes(data)
        elif isinstance(data, Path):
            shutil.copyfile(data, path)
        else:
            with path.open("wb") as target:
                shutil.copyfileobj(data, target)
    except OSError as error:
        raise StorageError(f"{path}: {error.strerror or error}") from error
