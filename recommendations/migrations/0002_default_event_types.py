from django.db import migrations

from recommendations.defaults import event_types_ensure


def create_default_event_types(apps, schema_editor):
    event_types_ensure(apps.get_model("recommendations", "EventType"))


class Migration(migrations.Migration):
    dependencies = [("recommendations", "0001_initial")]

    operations = [migrations.RunPython(create_default_event_types, migrations.RunPython.noop)]
