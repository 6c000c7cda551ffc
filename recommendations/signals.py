"""Signals other apps listen to, so that recommendations need not know them."""

from django.dispatch import Signal

# Sent once conversion events are committed; `event_ids` lists their event ids. Bulletins
# attribute them to the clicks before them.
conversion_events_stored = Signal()
