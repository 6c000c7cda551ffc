"""Identify: when an anonymous visitor logs in, their history becomes the known user's."""

from dataclasses import dataclass

from django.db import transaction

from recommendations.models import EndUser, Interaction
from recommendations.services.refreshing import recommendations_refresh_enqueue
from recommendations.signals import users_merging
from recsite.validation import InvalidValue, external_id_clean


class IdentifyError(ValueError):
    """The ids cannot be merged: `field` is at fault, for the reason in the message."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Identified:
    user_id: str
    merged_events: int


@transaction.atomic
def visitor_identify(*, anonymous_id: object, user_id: object) -> Identified:
    """Merge the anonymous visitor `anonymous_id` into the user `user_id`.

    Their events, clicks and conversions move to the user, whose lists are then refreshed.
    A user not known yet simply takes over the visitor's profile. Only an anonymous profile
    can be merged away, so a key that may write events cannot fold one real user into
    another. Idempotent: identifying again, or a visitor with no history, merges nothing.
    """
    ids = {}
    for name, value in (("anonymous_id", anonymous_id), ("user_id", user_id)):
        try:
            ids[name] = external_id_clean(value, name)
        except InvalidValue as error:
            raise IdentifyError(name, str(error)) from None
    anonymous_id, user_id = ids["anonymous_id"], ids["user_id"]
    if anonymous_id == user_id:
        raise IdentifyError("user_id", "user_id is the same as anonymous_id")
    visitor = EndUser.objects.select_for_update().filter(external_id=anonymous_id).first()
    if visitor is None:
        return Identified(user_id, 0)
    if not visitor.is_anonymous:
        raise IdentifyError(
            "anonymous_id", f"{anonymous_id!r} is a known user, not an anonymous visitor"
        )

    user = EndUser.objects.select_for_update().filter(external_id=user_id).first()
    moved = Interaction.objects.filter(user=visitor).count()
    if user is None:
        visitor.external_id = user_id
        visitor.is_anonymous = False
        visitor.save(update_fields=["external_id", "is_anonymous", "updated_at"])
        user = visitor
    else:
        Interaction.objects.filter(user=visitor).update(user=user)
        users_merging.send(sender=EndUser, anonymous_pk=visitor.pk, user_pk=user.pk)
        visitor.delete()
    if moved:
        user_pk = user.pk
        transaction.on_commit(lambda: recommendations_refresh_enqueue(user_pks={user_pk}))
    return Identified(user_id, moved)
