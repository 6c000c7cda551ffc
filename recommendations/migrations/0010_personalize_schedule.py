from django.db import migrations


def create_schedule(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    crontab, _ = CrontabSchedule.objects.get_or_create(
        minute="0",
        hour="1",
        day_of_week="0",
        day_of_month="*",
        month_of_year="*",
        timezone="UTC",
    )
    # Off until an operator configures Personalize and enables it in admin: it costs money.
    PeriodicTask.objects.get_or_create(
        name="Amazon Personalize run (weekly)",
        defaults={
            "task": "recommendations.tasks.personalize_start_task",
            "crontab": crontab,
            "enabled": False,
        },
    )


class Migration(migrations.Migration):
    dependencies = [
        ("recommendations", "0009_personalize_runs"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedule, migrations.RunPython.noop)]
