import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db.models import QuerySet
from django.utils import timezone

from recommendations.models import ApiKey
from recommendations.services.recommending import CACHE_ERRORS

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
    """The active key matching `raw_key`, or None. Records when it was last used.

    Every API request asks, so the answer is cached for `API_KEY_CACHE_SECONDS`; saving,
    deleting or revoking a key through the services drops its entry at once."""
    key_hash = api_key_hash(raw_key)
    try:
        return _api_key_cached(key_hash)
    except CACHE_ERRORS:
        # Redis down: each request looks its key up in the database, and last use is not
        # recorded until Redis is back (see CACHE_ERRORS).
        return ApiKey.objects.filter(key_hash=key_hash, is_active=True).first()


def _api_key_cached(key_hash: str) -> ApiKey | None:
    cache_key = _cache_key(key_hash)
    api_key = cache.get(cache_key)
    if api_key is None:
        api_key = ApiKey.objects.filter(key_hash=key_hash, is_active=True).first() or False
        cache.set(cache_key, api_key, settings.API_KEY_CACHE_SECONDS)
    if not api_key:
        return None
    if cache.add(f"apikey-used:{api_key.pk}", 1, LAST_USED_RESOLUTION.total_seconds()):
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=timezone.now())
    return api_key


def api_keys_revoke(*, keys: QuerySet[ApiKey]) -> int:
    hashes = list(keys.values_list("key_hash", flat=True))
    revoked = keys.update(is_active=False)
    cache.delete_many([_cache_key(key_hash) for key_hash in hashes])
    return revoked


def api_key_forget_cached(api_key: ApiKey) -> None:
    """Drop a key's cached lookup (after it was saved or deleted)."""
    cache.delete(_cache_key(api_key.key_hash))


def _cache_key(key_hash: str) -> str:
    return f"apikey:v1:{key_hash}"


def widget_snippet(*, api_key: str, placement: str = "for-you") -> str:
    """The HTML a site pastes to show a placement with the widget."""
    base = settings.PUBLIC_BASE_URL.rstrip("/")
    return (
        f'<script src="{base}/static/recsite/widget.js" data-key="{api_key}" async></script>\n'
        f'<div class="recsite-widget" data-placement="{placement}"></div>'
    )
