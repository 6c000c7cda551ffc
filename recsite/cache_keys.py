"""Every cache key the recommendations path writes or drops, in one place, so a writer and the
readers (the API, erasure, a refresh) can never disagree on a key's shape."""

# The lists the API serves from other sources (blend, Personalize, a holdout, a fallback, a
# placement computed on demand) are cached under their own keys for a short while; writing a
# user's in-house lists drops these, so a refresh shows at once whatever the source.
SERVED_SOURCES = ("inhouse", "personalize", "blend", "trending")


def recommendations_cache_key(*, placement_slug: str, user_external_id: str) -> str:
    """Where a user's in-house list for a placement is cached, as the batch or a refresh
    computed it."""
    return f"recs:v1:{placement_slug}:{user_external_id}"


def served_cache_key(
    *, placement_slug: str, source: str, user_external_id: str, item_id: str = ""
) -> str:
    """Where the API keeps a list it served from `source` for a short while."""
    return f"served:v1:{placement_slug}:{source}:{user_external_id}:{item_id}"


def refresh_pending_key(user_pk: int) -> str:
    """Set while a refresh of the user's lists is queued, so a burst of events queues one."""
    return f"refresh-pending:{user_pk}"


def api_key_cache_key(key_hash: str) -> str:
    """Where an API key found by its hash is cached for the authentication path."""
    return f"apikey:v1:{key_hash}"
