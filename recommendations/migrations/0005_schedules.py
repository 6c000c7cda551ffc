from django.db import migrations

from recommendations.defaults import schedule_ensure

SCHEDULES = [
    # name, task, hour (UTC)
    ("Train the in-house model (nightly)", "recommendations.tasks.model_train_task", "3"),
    (
        "Recompute every user's recommendations",
        "recommendations.tasks.recommendations_compute_all_task",
        "5",
    ),
]


def create_schedules(apps, schema_editor):
    for name, task, hour in SCHEDULES:
        schedule_ensure(
            apps.get_model("django_celery_beat", "CrontabSchedule"),
            apps.get_model("django_celery_beat", "PeriodicTask"),
            name=name,
            task=task,
            hour=hour,
        )


class Migration(migrations.Migration):
    dependencies = [
        ("recommendations", "0004_default_placement"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedules, migrations.RunPython.noop)]
