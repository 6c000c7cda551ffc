from django.apps import AppConfig
from django.db.models.signals import post_migrate


class RecommendationsConfig(AppConfig):
    name = "recommendations"
    verbose_name = "Audience, catalogue and behaviour"

    def ready(self) -> None:
        from corsheaders.signals import check_request_enabled
        from django.db.models.signals import post_delete, post_save

        from recommendations.cors import cors_origin_allowed
        from recommendations.models import ApiKey, Rule, RuleCondition
        from recommendations.roles import marketers_group_sync_on_migrate
        from recommendations.services.api_keys import api_key_forget_cached
        from recsite.data_generation import data_generation_forget

        # No sender: it must run after every app's permissions exist, bulletins' included.
        post_migrate.connect(marketers_group_sync_on_migrate, dispatch_uid="marketers_group_sync")
        check_request_enabled.connect(cors_origin_allowed, dispatch_uid="cors_public_keys")
        for signal in (post_save, post_delete):
            signal.connect(
                lambda sender, instance, **kwargs: api_key_forget_cached(instance),
                sender=ApiKey,
                weak=False,
                dispatch_uid=f"api_key_forget_cached_{signal is post_save}",
            )
            # A rule saved here reaches this process's cached lists at once (others: a second).
            for model in (Rule, RuleCondition):
                signal.connect(
                    lambda sender, **kwargs: data_generation_forget(),
                    sender=model,
                    weak=False,
                    dispatch_uid=f"data_generation_{model.__name__}_{signal is post_save}",
                )
