from django.db import migrations

from recommendations.defaults import schedule_ensure


def create_schedule(apps, schema_editor):
    schedule_ensure(
        apps.get_model("django_celery_beat", "CrontabSchedule"),
        apps.get_model("django_celery_beat", "PeriodicTask"),
        name="Refresh segments",
        task="recommendations.tasks.segments_refresh_task",
        hour="4",
    )


class Migration(migrations.Migration):
    dependencies = [
        ("recommendations", "0007_placements_rules_segments"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedule, migrations.RunPython.noop)]
