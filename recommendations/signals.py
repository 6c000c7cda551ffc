"""Signals other apps listen to, so that recommendations need not know them."""

from django.dispatch import Signal

# Sent once conversion events are committed; `event_ids` lists their event ids. Bulletins
# attribute them to the clicks before them.
conversion_events_stored = Signal()

# Sent inside the transaction that merges an anonymous visitor into a known user, before the
# visitor's profile is deleted: receivers move what they keep of `anonymous_pk` to `user_pk`.
users_merging = Signal()

# Sent inside the transaction that erases an end user (`recommendations.services.erasure`),
# before their own rows go: receivers keep what they must as anonymous counts, delete what
# they hold of `user`, and return an `Erased` saying what they removed and kept.
user_forgetting = Signal()
