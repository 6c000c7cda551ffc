from django.db import migrations

from recommendations.defaults import schedule_ensure


def create_schedule(apps, schema_editor):
    # Resumes runs whose worker died: their claimed deliveries are sent again after the lease.
    schedule_ensure(
        apps.get_model("django_celery_beat", "CrontabSchedule"),
        apps.get_model("django_celery_beat", "PeriodicTask"),
        name="Bulletin runs: resume stalled runs",
        task="bulletins.tasks.bulletin_runs_recover_task",
        hour="*",
        minute="*/5",
    )


class Migration(migrations.Migration):
    dependencies = [
        ("bulletins", "0001_runs_deliveries"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedule, migrations.RunPython.noop)]
