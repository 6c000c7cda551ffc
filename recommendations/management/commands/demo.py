from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from bulletins.models import BulletinRun
from bulletins.services.demo import demo_bulletin_send, demo_readers_simulate
from recommendations.models import EndUser, Placement
from recommendations.selectors import recommendations_explained
from recommendations.services.comparison import sources_compare
from recommendations.services.demo import DemoReport, demo_data_load, demo_widget_key_ensure
from recommendations.services.importing import ImportFailed
from recommendations.services.personalize_double import personalize_double_run
from recommendations.services.recommending import recommendations_compute_all_in_process
from recommendations.services.segments import segments_refresh
from recommendations.services.training import TrainingError, model_version_train

SHOWN_USERS = 3
SHOWN_ITEMS = 5


class Command(BaseCommand):
    help = "Run the main job on a synthetic publisher's catalogue and audience, and summarize."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--users", type=int, default=2000)
        parser.add_argument("--items", type=int, default=600)
        parser.add_argument("--seed", type=int, default=7)

    def handle(self, *args, users: int, items: int, seed: int, **options) -> None:
        progress = options["verbosity"] > 0
        self._heading(
            f"1. Data: a synthetic publisher, {users} users and {items} items (seed {seed})"
        )
        try:
            report = demo_data_load(
                n_users=users,
                n_items=items,
                seed=seed,
                progress=progress,
                site_url=settings.PUBLIC_BASE_URL,  # item pages on the demo page
            )
            self._data_summary(report)
            self._heading("2. Training the in-house model and learning segments")
            version = model_version_train()
            segments = segments_refresh()
            self._heading("3. Every user's recommendations")
            run = recommendations_compute_all_in_process(progress=progress)
        except (ImportFailed, TrainingError, ValueError) as error:
            raise CommandError(str(error)) from None

        self.stdout.write(f"  model version #{version.pk}: {version.decision}")
        self.stdout.write(
            f"  {len(segments)} segments learned from behaviour: "
            + ", ".join(f"{slug} ({size} users)" for slug, size in segments.items())
        )
        metrics, baseline = version.metrics, version.baseline_metrics
        self.stdout.write(
            f"  on the last 10% of events: nDCG@10 {metrics['ndcg_at_k']:.3f} "
            f"(popularity {baseline['ndcg_at_k']:.3f}), recall@10 {metrics['recall_at_k']:.3f} "
            f"(popularity {baseline['recall_at_k']:.3f})"
        )
        self.stdout.write(f"  {run.lists_written} lists for {run.users} users")
        self._examples(report)
        self._personalize_double()
        run = self._bulletin(progress)
        self._readers(run, report.data.tastes)
        self._widget()
        self.stdout.write(
            "\nNext: `.venv/bin/python manage.py createsuperuser` and "
            "`.venv/bin/python manage.py runserver`, then open http://127.0.0.1:8000/admin/"
        )

    def _widget(self) -> None:
        self._heading("8. The website widget")
        api_key, created = demo_widget_key_ensure(site_url=settings.PUBLIC_BASE_URL)
        state = "created" if created else "kept"
        origins = ", ".join(api_key.allowed_origins)
        self.stdout.write(f"  public key '{api_key.name}' {state}, allowed on {origins}")
        self.stdout.write(
            "  start the server (`.venv/bin/python manage.py runserver`) and open "
            f"{settings.PUBLIC_BASE_URL.rstrip('/')}/demo/ : the widget for a visitor or any "
            "user, its clicks, and purchases on the item pages (docs/WIDGET.md)"
        )

    def _personalize_double(self) -> None:
        self._heading("5. In-house vs Amazon Personalize (a local test double stands in)")
        stored = personalize_double_run()
        placement = Placement.objects.get(slug="for-you")
        summary = sources_compare(placement=placement).report.summary
        self.stdout.write(
            f"  {stored} lists from the double, through the same rules; on '{placement.slug}': "
            f"overlap@{summary['k']} {summary['overlap_at_k']:.2f}, RBO {summary['rbo']:.2f}, "
            f"coverage {summary['coverage_a']:.0%} in-house vs {summary['coverage_b']:.0%}, "
            f"{summary['only_b_items']} items only the double recommends"
        )
        self.stdout.write(
            "  the report with charts and a CSV export: admin → Placements → For you → "
            "In-house vs Personalize (docs/PERSONALIZE.md runs the real thing)"
        )

    def _bulletin(self, progress: bool) -> BulletinRun:
        self._heading("6. A bulletin to every demo user (through the file email backend)")
        run, example = demo_bulletin_send(progress=progress)
        self.stdout.write(
            f"  run #{run.pk} of '{run.bulletin.slug}': {run.status}; sent {run.sent}, "
            f"failed {run.failed}; skipped {run.skipped_not_opted_in} who did not opt in, "
            f"{run.skipped_unsubscribed} unsubscribed, {run.skipped_no_items} without items; "
            f"fallback used for {run.fallback}"
        )
        where = getattr(settings, "EMAIL_FILE_PATH", None)
        if where:
            self.stdout.write(f"  the emails, as sent (MIME, one file per batch): {where}/")
        if example is not None:
            self.stdout.write(f"  one of them as a page to open in a browser: {example}")
        self.stdout.write(
            "  admin → Bulletins → Weekly picks: preview any user's email, send a test, schedule"
        )
        return run

    def _readers(self, run: BulletinRun, tastes) -> None:
        self._heading("7. Simulated readers, with the planted tastes, open, click and buy")
        simulated, report = demo_readers_simulate(run=run, tastes=tastes)
        self.stdout.write(
            f"  {simulated.opens} opens, {simulated.clicks} clicks and {simulated.conversions} "
            "purchases, through the tracked links and the events API"
        )
        for arm in report.arms:
            counts = arm.counts
            line = (
                f"  {arm.name:<13} {counts.delivered:>5} delivered, CTR {counts.ctr or 0:.1%}, "
                f"conversion {counts.conversion_rate or 0:.1%}"
            )
            if arm.is_control:
                line += "  (control)"
            elif arm.ctr_uplift is not None and arm.ctr_uplift.relative_uplift is not None:
                result = arm.ctr_uplift
                line += (
                    f"  CTR uplift {result.relative_uplift:+.0%} (95% CI "
                    f"{result.relative_low:+.0%} to {result.relative_high:+.0%}, "
                    f"p = {result.p_value:.3f})"
                )
            self.stdout.write(line)
            if arm.warning:
                self.stdout.write(f"      {arm.warning}")
        self.stdout.write(
            "  the full report with charts: admin → Bulletins → Weekly picks → Report"
        )

    def _heading(self, text: str) -> None:
        self.stdout.write(self.style.MIGRATE_HEADING(f"\n{text}"))

    def _data_summary(self, report: DemoReport) -> None:
        for file_report in report.import_report.files:
            self.stdout.write(
                f"  {file_report.kind:<13} {file_report.read:>7} rows: {file_report.created} new, "
                f"{file_report.updated} updated, {file_report.unchanged} unchanged, "
                f"{file_report.duplicates} duplicates, {file_report.rejected} rejected"
            )
        live = report.live_events
        self.stdout.write(
            f"  live events   {live['accepted']} accepted, {live['duplicates']} duplicates, "
            f"{live['rejected']} rejected (through the events API's service)"
        )
        self.stdout.write(
            f"  in the database: {report.users} end users, {report.items} items, "
            f"{report.interactions} interactions (CSVs in {report.csv_paths['users'].parent})"
        )

    def _examples(self, report: DemoReport) -> None:
        self._heading("4. A few users, what we planted, and what they get")
        tastes = report.data.tastes
        busy = report.data.interactions["USER_ID"].value_counts()
        never_seen = sorted(set(tastes["user_id"]) - set(busy.index))
        examples = [busy.index[len(busy) // 4], busy.index[len(busy) // 2], *never_seen[:1]]
        for external_id in examples[:SHOWN_USERS]:
            user = EndUser.objects.get(external_id=external_id)
            planted = tastes[tastes["user_id"] == external_id]
            planted = planted.sort_values("weight", ascending=False)
            likes = ", ".join(f"{row.topic} {row.weight:.0%}" for row in planted.itertuples())
            events = busy.get(external_id, 0)
            profile = "" if events else f"; no events yet, attributes {user.attributes}"
            self.stdout.write(f"\n  {external_id} ({events} events; planted: {likes}{profile})")
            explained = recommendations_explained(user_pk=user.pk, placement_slug="for-you")
            for entry in explained[:SHOWN_ITEMS]:
                self.stdout.write(f"    {entry['rank']}. {entry['title']}  — {entry['why']}")
