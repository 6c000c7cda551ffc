from django.db import migrations

from recommendations.defaults import placements_ensure


def create_default_placement(apps, schema_editor):
    placements_ensure(apps.get_model("recommendations", "Placement"))


class Migration(migrations.Migration):
    dependencies = [("recommendations", "0003_model_versions_and_recommendation_sets")]

    operations = [migrations.RunPython(create_default_placement, migrations.RunPython.noop)]
