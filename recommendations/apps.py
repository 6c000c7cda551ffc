from django.apps import AppConfig
from django.db.models.signals import post_migrate


class RecommendationsConfig(AppConfig):
    name = "recommendations"
    verbose_name = "Audience, catalogue and behaviour"

    def ready(self) -> None:
        from recommendations.roles import marketers_group_sync_on_migrate

        # No sender: it must run after every app's permissions exist, bulletins' included.
        post_migrate.connect(marketers_group_sync_on_migrate, dispatch_uid="marketers_group_sync")
