import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db.models import QuerySet
from django.utils import timezone

from recommendations.models import ApiKey
from recsite.cache_keys import api_key_cache_key
from recsite.errors import CACHE_ERRORS
from recsite.local_cache import LocalCache

KEY_PREFIXES = {ApiKey.Kind.SECRET: "rs_sk_", ApiKey.Kind.PUBLIC: "rs_pk_"}
LAST_USED_RESOLUTION = timedelta(minutes=1)
LOCAL_SECONDS = 5
_local_keys = LocalCache(seconds=LOCAL_SECONDS, maxsize=10_000)
_uses_recorded = LocalCache(seconds=LAST_USED_RESOLUTION.total_seconds(), maxsize=10_000)


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
    """The active key matching `raw_key`, or None. Records when it was last used.

    Every API request asks, so each process keeps the answer for `LOCAL_SECONDS`, over the
    shared cache (`API_KEY_CACHE_SECONDS`), over the database. Saving, deleting or revoking a
    key through the services drops it from the shared cache and this process's at once, so it
    stops working everywhere within `LOCAL_SECONDS`."""
    key_hash = api_key_hash(raw_key)
    api_key = _local_keys.get(key_hash, lambda: _api_key_shared(key_hash))
    if api_key is not None:
        # At most one write a minute per key and process.
        _uses_recorded.get(api_key.pk, lambda: _use_record(api_key.pk))
    return api_key


def _api_key_shared(key_hash: str) -> ApiKey | None:
    cache_key = api_key_cache_key(key_hash)
    try:
        api_key = cache.get(cache_key)
        if api_key is None:
            api_key = ApiKey.objects.filter(key_hash=key_hash, is_active=True).first() or False
            cache.set(cache_key, api_key, settings.API_KEY_CACHE_SECONDS)
    except CACHE_ERRORS:
        # Redis down: the database answers (see CACHE_ERRORS).
        api_key = ApiKey.objects.filter(key_hash=key_hash, is_active=True).first()
    return api_key or None


def _use_record(pk: int) -> bool:
    ApiKey.objects.filter(pk=pk).update(last_used_at=timezone.now())
    return True


def api_keys_revoke(*, keys: QuerySet[ApiKey]) -> int:
    hashes = list(keys.values_list("key_hash", flat=True))
    revoked = keys.update(is_active=False)
    for key_hash in hashes:
        _local_keys.discard(key_hash)
    cache.delete_many([api_key_cache_key(key_hash) for key_hash in hashes])
    return revoked


def api_key_forget_cached(api_key: ApiKey) -> None:
    """Drop a key's cached lookup (after it was saved or deleted)."""
    _local_keys.discard(api_key.key_hash)
    cache.delete(api_key_cache_key(api_key.key_hash))


def widget_snippet(*, api_key: str, placement: str = "for-you") -> str:
    """The HTML a site pastes to show a placement with the widget."""
    base = settings.PUBLIC_BASE_URL.rstrip("/")
    return (
        f'<script src="{base}/static/recsite/widget.js" data-key="{api_key}" async></script>\n'
        f'<div class="recsite-widget" data-placement="{placement}"></div>'
    )
