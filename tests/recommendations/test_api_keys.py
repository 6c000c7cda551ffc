import pytest
from django.core.management import CommandError, call_command

from recommendations.models import ApiKey
from recommendations.services.api_keys import api_key_authenticate, api_key_create, api_key_hash

pytestmark = pytest.mark.django_db


def test_key_is_stored_hashed_and_authenticates():
    api_key, raw_key = api_key_create(name="backend", kind="secret")
    assert raw_key.startswith("rs_sk_")
    assert raw_key not in (api_key.key_hash, api_key.prefix)
    assert api_key.key_hash == api_key_hash(raw_key)
    assert api_key_authenticate(raw_key=raw_key) == api_key
    assert api_key_authenticate(raw_key=raw_key + "x") is None


def test_authentication_records_last_use():
    api_key, raw_key = api_key_create(name="backend", kind="secret")
    api_key_authenticate(raw_key=raw_key)
    api_key.refresh_from_db()
    assert api_key.last_used_at is not None


def test_command_prints_the_key_once(capsys):
    call_command(
        "create_api_key", "--name", "site", "--kind", "public", "--origin", "https://example.com"
    )
    raw_key = capsys.readouterr().out.strip()
    api_key = ApiKey.objects.get()
    assert raw_key.startswith("rs_pk_")
    assert api_key.allowed_origins == ["https://example.com"]
    assert api_key_authenticate(raw_key=raw_key) == api_key


def test_command_rejects_an_unknown_kind():
    with pytest.raises(CommandError, match="invalid choice"):
        call_command("create_api_key", "--name", "x", "--kind", "root")
    assert not ApiKey.objects.exists()


def test_a_public_key_is_kept_for_its_embed_snippet_a_secret_key_is_not():
    public, public_raw = api_key_create(name="site", kind="public")
    secret, secret_raw = api_key_create(name="backend", kind="secret")

    assert public.published_key == public_raw
    assert secret.published_key == "" and secret_raw not in str(secret.__dict__)


@pytest.mark.parametrize(
    "origin",
    ["https://shop.example/", "shop.example", "https://shop.example/path", "ftp://shop.example", 7],
)
def test_allowed_origins_must_be_written_as_browsers_send_them(origin):
    with pytest.raises(CommandError, match="allowed_origins|not an origin"):
        call_command("create_api_key", "--name", "x", "--kind", "public", "--origin", origin)
    assert not ApiKey.objects.exists()
