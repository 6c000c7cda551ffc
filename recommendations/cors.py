"""Which browser origins may call the widget endpoints: those of the active public keys.

django-cors-headers asks on every request to `CORS_URLS_REGEX` that carries an `Origin`,
preflights included, which carry no key; each real request then checks its own key's
origins (`HasSiteKey`)."""

from recommendations.models import ApiKey
from recsite.local_cache import LocalCache

# A newly allowed origin is accepted within this many seconds.
_origins = LocalCache(seconds=30, maxsize=1)


def public_key_origins() -> frozenset[str]:
    def load() -> frozenset[str]:
        keys = ApiKey.objects.filter(kind=ApiKey.Kind.PUBLIC, is_active=True)
        return frozenset(
            origin
            for origins in keys.values_list("allowed_origins", flat=True)
            for origin in origins
        )

    return _origins.get("origins", load)


def cors_origin_allowed(sender, request, **kwargs) -> bool:
    """`corsheaders.signals.check_request_enabled` receiver."""
    return request.headers.get("Origin") in public_key_origins()
