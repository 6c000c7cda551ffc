from django.db import migrations, models

from recommendations.defaults import schedule_ensure


def create_schedule(apps, schema_editor):
    # Resumes recommendation runs whose workers died, as bulletin runs are resumed.
    schedule_ensure(
        apps.get_model("django_celery_beat", "CrontabSchedule"),
        apps.get_model("django_celery_beat", "PeriodicTask"),
        name="Recommendation runs: resume stalled runs",
        task="recommendations.tasks.recommendation_runs_recover_task",
        hour="*",
        minute="*/5",
    )


class Migration(migrations.Migration):
    dependencies = [
        ("recommendations", "0013_impression_event_type"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [
        migrations.AddField(
            model_name="recommendationrun",
            name="error",
            field=models.TextField(blank=True, help_text="Why the run failed."),
        ),
        migrations.AddField(
            model_name="recommendationrun",
            name="heartbeat_at",
            field=models.DateTimeField(
                blank=True,
                help_text="When a shard last reported; beat resumes a silent run.",
                null=True,
            ),
        ),
        migrations.AddField(
            model_name="recommendationrun",
            name="shard_bounds",
            field=models.JSONField(
                blank=True,
                default=list,
                editable=False,
                help_text="[first, last] user pk of each shard.",
            ),
        ),
        migrations.AddField(
            model_name="modelversion",
            name="last_interaction_pk",
            field=models.PositiveBigIntegerField(
                blank=True,
                editable=False,
                help_text=(
                    "The newest interaction when training read them; later ones are not in "
                    "the model."
                ),
                null=True,
            ),
        ),
        migrations.RunPython(create_schedule, migrations.RunPython.noop),
    ]
