from django.apps import AppConfig
from django.db.models.signals import post_delete


class BulletinsConfig(AppConfig):
    name = "bulletins"
    verbose_name = "Bulletins"

    def ready(self) -> None:
        from bulletins.models import Bulletin
        from bulletins.services.erasure import user_bulletins_forget
        from bulletins.services.identity import visitor_behaviour_move
        from bulletins.services.schedules import periodic_task_delete_with_bulletin
        from bulletins.tasks import conversion_events_enqueue
        from recommendations.signals import (
            conversion_events_stored,
            user_forgetting,
            users_merging,
        )

        # However a bulletin goes (admin, shell, a cascade), its beat task goes with it.
        post_delete.connect(
            periodic_task_delete_with_bulletin, sender=Bulletin, dispatch_uid="bulletin-schedule"
        )
        conversion_events_stored.connect(conversion_events_enqueue, dispatch_uid="attribution")
        users_merging.connect(visitor_behaviour_move, dispatch_uid="visitor-behaviour-move")
        user_forgetting.connect(user_bulletins_forget, dispatch_uid="user-bulletins-forget")
