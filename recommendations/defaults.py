"""The rows a fresh installation starts with: event types with their weights, and the
`for-you` placement. Migrations create them; `defaults_ensure` puts back any that are missing
(after a flush, say) without touching those that exist."""

DEFAULT_EVENT_TYPES = [
    # name, weight, value mode, is conversion, description
    ("view", 1.0, "fixed", False, "Viewed an item page"),
    ("click", 2.0, "fixed", False, "Clicked a recommendation"),
    ("like", 3.0, "fixed", False, "Liked or bookmarked"),
    ("purchase", 5.0, "fixed", True, "Bought or subscribed"),
    ("signup", 5.0, "fixed", True, "Signed up for the item"),
    ("rating", 1.0, "value", False, "Rated; the value is the rating"),
    ("watch", 4.0, "fraction", False, "Watched or listened; the value is the fraction completed"),
    ("complete", 5.0, "fixed", True, "Completed a course, video or podcast"),
    # Weight 0: the widget reports what it showed, for the engagement report; being shown an
    # item says nothing about taste, so training leaves these out and they refresh nothing.
    ("impression", 0.0, "fixed", False, "A widget showed the item"),
]
DEFAULT_PLACEMENTS = [
    {"slug": "for-you", "name": "For you", "strategy": "personalized", "count": 10},
]


def defaults_ensure() -> None:
    """Create the missing defaults with the current models."""
    from recommendations.models import EventType, Placement

    event_types_ensure(EventType)
    placements_ensure(Placement)


def event_types_ensure(model) -> None:
    """`model` is EventType, or its historical version in a migration."""
    for name, weight, value_mode, is_conversion, description in DEFAULT_EVENT_TYPES:
        model.objects.get_or_create(
            name=name,
            defaults={
                "weight": weight,
                "value_mode": value_mode,
                "is_conversion": is_conversion,
                "description": description,
            },
        )


def placements_ensure(model) -> None:
    """`model` is Placement, or its historical version in a migration."""
    for placement in DEFAULT_PLACEMENTS:
        model.objects.get_or_create(slug=placement["slug"], defaults=placement)


def schedule_ensure(
    crontab_model,
    task_model,
    *,
    name: str,
    task: str,
    hour: str,
    minute: str = "0",
    day_of_week: str = "*",
    enabled: bool = True,
) -> None:
    """A django-celery-beat schedule at `hour`:`minute` UTC; migrations pass their historical
    models. An existing schedule of that name is left as an operator may have changed it."""
    crontab, _ = crontab_model.objects.get_or_create(
        minute=minute,
        hour=hour,
        day_of_week=day_of_week,
        day_of_month="*",
        month_of_year="*",
        timezone="UTC",
    )
    task_model.objects.get_or_create(
        name=name, defaults={"task": task, "crontab": crontab, "enabled": enabled}
    )
