import hashlib
import secrets
from datetime import timedelta

from django.utils import timezone

from recommendations.models import ApiKey

KEY_PREFIXES = {ApiKey.Kind.SECRET: "rs_sk_", ApiKey.Kind.PUBLIC: "rs_pk_"}
LAST_USED_RESOLUTION = timedelta(minutes=1)


def api_key_hash(raw_key: str) -> str:
    # Keys are 256 random bits, so a plain SHA-256 is enough; a slow password hash would only
    # slow every API request down.
    return hashlib.sha256(raw_key.encode()).hexdigest()


def api_key_issue(api_key: ApiKey) -> str:
    """Give an unsaved key its secret; return the raw key, which is never stored."""
    prefix = KEY_PREFIXES[ApiKey.Kind(api_key.kind)]
    raw_key = prefix + secrets.token_urlsafe(32)
    api_key.prefix = raw_key[: len(prefix) + 8]
    api_key.key_hash = api_key_hash(raw_key)
    api_key.published_key = raw_key if api_key.kind == ApiKey.Kind.PUBLIC else ""
    return raw_key


def api_key_create(
    *, name: str, kind: str, allowed_origins: list[str] | None = None
) -> tuple[ApiKey, str]:
    """Create a key and return it with the raw key, which cannot be shown again."""
    api_key = ApiKey(name=name, kind=kind, allowed_origins=allowed_origins or [])
    raw_key = api_key_issue(api_key)
    api_key.full_clean()
    api_key.save()
    return api_key, raw_key


def api_key_authenticate(*, raw_key: str) -> ApiKey | None:
    """The active key matching `raw_key`, or None. Records when it was last used."""
    api_key = ApiKey.objects.filter(key_hash=api_key_hash(raw_key), is_active=True).first()
    if api_key is None:
        return None
    now = timezone.now()
    if api_key.last_used_at is None or now - api_key.last_used_at > LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
    return api_key
