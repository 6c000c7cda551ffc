from django.db import migrations


def create_default_placement(apps, schema_editor):
    Placement = apps.get_model("recommendations", "Placement")
    Placement.objects.get_or_create(
        slug="for-you", defaults={"name": "For you", "strategy": "personalized", "count": 10}
    )


class Migration(migrations.Migration):
    dependencies = [("recommendations", "0003_model_versions_and_recommendation_sets")]

    operations = [migrations.RunPython(create_default_placement, migrations.RunPython.noop)]
