"""What bulletins keep of a visitor who turns out to be a known user."""

from bulletins.models import Click, Conversion


def visitor_behaviour_move(sender, *, anonymous_pk: int, user_pk: int, **kwargs) -> None:
    """`users_merging` receiver: the visitor's widget clicks and their conversions become the
    user's, so reports and later attribution see one person."""
    Click.objects.filter(user_id=anonymous_pk).update(user_id=user_pk)
    Conversion.objects.filter(user_id=anonymous_pk).update(user_id=user_pk)
