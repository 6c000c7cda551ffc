"""Staff roles. `Marketers` edit placements, rules, segments and bulletins and read the data,
but never see API keys or staff accounts."""

from django.contrib.auth.models import Group, Permission
from django.db.models import Q

MARKETERS = "Marketers"

# (app label, model) -> the permission actions marketers get on it.
MARKETER_PERMISSIONS: dict[tuple[str, str], tuple[str, ...]] = {
    ("recommendations", "enduser"): ("view",),
    ("recommendations", "item"): ("view",),
    ("recommendations", "interaction"): ("view",),
    ("recommendations", "eventtype"): ("view",),
    ("recommendations", "placement"): ("view", "add", "change", "delete"),
    ("recommendations", "placementvariant"): ("view", "add", "change", "delete"),
    ("recommendations", "segment"): ("view", "add", "change", "delete"),
    ("recommendations", "segmentcondition"): ("view", "add", "change", "delete"),
    ("recommendations", "rule"): ("view", "add", "change", "delete"),
    ("recommendations", "rulecondition"): ("view", "add", "change", "delete"),
    ("recommendations", "modelversion"): ("view",),
    ("recommendations", "personalizerun"): ("view",),
    ("recommendations", "recommendationset"): ("view",),
    ("recommendations", "recommendationrun"): ("view",),
    ("django_celery_beat", "periodictask"): ("view",),
    # A bulletin's schedule is set on the bulletin; the system's crontabs are not theirs to edit.
    ("django_celery_beat", "crontabschedule"): ("view",),
    ("bulletins", "bulletin"): ("view", "add", "change", "delete"),
    ("bulletins", "bulletinblock"): ("view", "add", "change", "delete"),
    ("bulletins", "variant"): ("view", "add", "change", "delete"),
    ("bulletins", "platformconnection"): ("view",),
    ("bulletins", "bulletinrun"): ("view", "change"),
    ("bulletins", "delivery"): ("view",),
    ("bulletins", "unsubscribe"): ("view",),
    ("bulletins", "click"): ("view",),
    ("bulletins", "open"): ("view",),
}


def marketers_group_sync() -> Group:
    """Make the Marketers group hold exactly the permissions listed above (idempotent)."""
    group, _ = Group.objects.get_or_create(name=MARKETERS)
    wanted = Q(pk__in=[])
    for (app_label, model), actions in MARKETER_PERMISSIONS.items():
        wanted |= Q(
            content_type__app_label=app_label,
            content_type__model=model,
            codename__in=[f"{action}_{model}" for action in actions],
        )
    group.permissions.set(Permission.objects.filter(wanted))
    return group


def marketers_group_sync_on_migrate(sender, **kwargs) -> None:
    # Called after each app migrates; cheap, and by the last call every permission exists.
    marketers_group_sync()
