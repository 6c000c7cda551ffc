from django.db import migrations

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
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    for name, task, hour in SCHEDULES:
        crontab, _ = CrontabSchedule.objects.get_or_create(
            minute="0",
            hour=hour,
            day_of_week="*",
            day_of_month="*",
            month_of_year="*",
            timezone="UTC",
        )
        PeriodicTask.objects.get_or_create(name=name, defaults={"task": task, "crontab": crontab})


class Migration(migrations.Migration):
    dependencies = [
        ("recommendations", "0004_default_placement"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedules, migrations.RunPython.noop)]
