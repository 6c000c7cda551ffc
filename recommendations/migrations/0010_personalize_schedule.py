from django.db import migrations

from recommendations.defaults import schedule_ensure


def create_schedule(apps, schema_editor):
    # Off until an operator configures Personalize and enables it in admin: it costs money.
    schedule_ensure(
        apps.get_model("django_celery_beat", "CrontabSchedule"),
        apps.get_model("django_celery_beat", "PeriodicTask"),
        name="Amazon Personalize run (weekly)",
        task="recommendations.tasks.personalize_start_task",
        hour="1",
        day_of_week="0",
        enabled=False,
    )


class Migration(migrations.Migration):
    dependencies = [
        ("recommendations", "0009_personalize_runs"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedule, migrations.RunPython.noop)]
