"""The demo's main job on embedded defaults: make a catalogue and audience, import them through
the same path real data takes, replay a little live website traffic, and summarize."""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from django.conf import settings

from recommendations.defaults import defaults_ensure
from recommendations.models import EndUser, Interaction, Item
from recommendations.services.events import events_ingest
from recommendations.services.importing import ImportReport, data_import
from recommendations.synthetic import SyntheticData, generate


@dataclass
class DemoReport:
    data: SyntheticData
    csv_paths: dict[str, Path]
    import_report: ImportReport
    live_events: dict
    users: int
    items: int
    interactions: int


def demo_data_load(
    *, n_users: int, n_items: int, seed: int, directory: Path | None = None, progress: bool = False
) -> DemoReport:
    """Generate the synthetic publisher, write its CSVs and import them (idempotent)."""
    defaults_ensure()  # the event types' weights and the for-you placement, even after a flush
    data = generate(n_users=n_users, n_items=n_items, seed=seed)
    csv_paths = data.write_csvs(directory or Path(settings.VAR_DIR) / "demo")
    import_report = data_import(
        users=str(csv_paths["users"]),
        items=str(csv_paths["items"]),
        interactions=str(csv_paths["interactions"]),
        progress=progress,
    )
    live = events_ingest(events=_live_website_events(data, seed=seed))
    return DemoReport(
        data=data,
        csv_paths=csv_paths,
        import_report=import_report,
        live_events=live.as_dict(),
        users=EndUser.objects.count(),
        items=Item.objects.count(),
        interactions=Interaction.objects.count(),
    )


def _live_website_events(data: SyntheticData, *, seed: int, n_events: int = 50) -> list[dict]:
    """Views from new anonymous visitors and known users, as the website would send them."""
    rng = np.random.default_rng(seed)
    last_event = pd.to_numeric(data.interactions["TIMESTAMP"]).max()
    visitors = [f"anon-{n:04d}" for n in range(5)]
    users = [*visitors, *data.users["USER_ID"].sample(5, random_state=seed)]
    return [
        {
            "event_id": f"demo-live-{seed}-{n}",
            "user_id": users[n % len(users)],
            "item_id": str(rng.choice(data.items["ITEM_ID"])),
            "event_type": "view",
            "timestamp": int(last_event) + 60 * (n + 1),
            "context": {"page": "demo"},
        }
        for n in range(n_events)
    ]
