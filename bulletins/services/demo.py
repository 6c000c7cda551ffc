"""The demo's bulletin: a weekly email with a personalized block and a popular block, split
between the in-house model and a non-personalized holdout, sent to every demo user."""

from pathlib import Path

import pandas as pd
from django.conf import settings

from bulletins.models import Bulletin, BulletinBlock, BulletinRun, Delivery, Variant
from bulletins.services.preview import bulletin_preview
from bulletins.services.reports import ExperimentReport, experiment_report
from bulletins.services.runs import bulletin_run_in_process, bulletin_run_start
from bulletins.services.simulation import Readers, Simulated, readers_simulate
from recommendations.models import Item, Placement

DEMO_SLUG = "weekly-picks"


def demo_bulletin_ensure() -> Bulletin:
    """The demo bulletin and its placements, created once (a marketer's edits are kept)."""
    for_you = Placement.objects.get(slug="for-you")
    popular, _ = Placement.objects.get_or_create(
        slug="popular-this-week",
        defaults={
            "name": "Popular this week",
            "strategy": Placement.Strategy.TRENDING,
            "count": 10,
            "window_days": 7,
            "fallback_order": "trending",
        },
    )
    bulletin, created = Bulletin.objects.get_or_create(
        slug=DEMO_SLUG,
        defaults={
            "name": "Weekly picks",
            "subject_template": "Your picks for this week",
        },
    )
    if created:
        BulletinBlock.objects.create(
            bulletin=bulletin, position=1, title="Picked for you", placement=for_you, count=4
        )
        BulletinBlock.objects.create(
            bulletin=bulletin, position=2, title="Popular this week", placement=popular, count=3
        )
        Variant.objects.create(bulletin=bulletin, name="personalized", share=80, source="inhouse")
        Variant.objects.create(
            bulletin=bulletin, name="holdout", share=20, source="trending", is_control=True
        )
    return bulletin


def demo_bulletin_send(*, progress: bool = False) -> tuple[BulletinRun, Path | None]:
    """Send the demo bulletin to everyone, and write one user's email as an HTML file to open
    in a browser (None when nobody got one)."""
    bulletin = demo_bulletin_ensure()
    run, _ = bulletin_run_start(bulletin=bulletin, trigger=BulletinRun.Trigger.COMMAND)
    run = bulletin_run_in_process(run=run, progress=progress, wait_for_retries=False)
    example = (
        Delivery.objects.filter(run=run, status=Delivery.Status.SENT, variant__name="personalized")
        .select_related("user")
        .first()
    )
    if example is None:
        return run, None
    preview = bulletin_preview(bulletin=bulletin, user_external_id=example.user.external_id)
    if preview.email is None:
        return run, None
    path = Path(settings.VAR_DIR) / "emails" / f"example-{example.user.external_id}.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(preview.email.html, encoding="utf-8")
    return run, path


# A reader clicks an item of a topic they like with a chance that grows with how much they
# like it; anything else only now and then.
BASE_APPEAL = 0.01
TASTE_APPEAL = 0.12


def demo_readers_simulate(
    *, run: BulletinRun, tastes: pd.DataFrame, seed: int = 7
) -> tuple[Simulated, ExperimentReport]:
    """Readers with the demo's planted tastes open, click and buy; answers what they did and
    the bulletin's experiment report for the run. `tastes`: user_id, topic, weight."""
    liking = {(row.user_id, row.topic): float(row.weight) for row in tastes.itertuples(index=False)}
    topic_of = {
        external_id: (categories or [""])[0]
        for external_id, categories in Item.objects.values_list("external_id", "categories")
    }

    def appeal(user_id: str, item_id: str) -> float:
        return BASE_APPEAL + TASTE_APPEAL * liking.get((user_id, topic_of.get(item_id)), 0.0)

    simulated = readers_simulate(run=run, readers=Readers(), seed=seed, appeal=appeal)
    return simulated, experiment_report(bulletin=run.bulletin, run=run)
