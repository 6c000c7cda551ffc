from django.db import migrations

from recommendations.defaults import event_types_ensure


def forwards(apps, schema_editor):
    event_types_ensure(apps.get_model("recommendations", "EventType"))


class Migration(migrations.Migration):
    dependencies = [
        ("recommendations", "0012_placement_variants_published_keys"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
