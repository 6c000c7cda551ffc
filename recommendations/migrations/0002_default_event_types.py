from django.db import migrations

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
]


def create_default_event_types(apps, schema_editor):
    EventType = apps.get_model("recommendations", "EventType")
    for name, weight, value_mode, is_conversion, description in DEFAULT_EVENT_TYPES:
        EventType.objects.get_or_create(
            name=name,
            defaults={
                "weight": weight,
                "value_mode": value_mode,
                "is_conversion": is_conversion,
                "description": description,
            },
        )


class Migration(migrations.Migration):
    dependencies = [("recommendations", "0001_initial")]

    operations = [migrations.RunPython(create_default_event_types, migrations.RunPython.noop)]
