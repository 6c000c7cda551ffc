"""The demo's main job on embedded defaults: make a catalogue and audience, import them through
the same path real data takes, replay a little live website traffic, and summarize."""

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pandas as pd
from django.conf import settings

from recommendations.defaults import defaults_ensure
from recommendations.models import ApiKey, EndUser, Interaction, Item
from recommendations.services.api_keys import api_key_create
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
    *,
    n_users: int,
    n_items: int,
    seed: int,
    directory: Path | None = None,
    progress: bool = False,
    site_url: str = "",
) -> DemoReport:
    """Generate the synthetic publisher, write its CSVs and import them (idempotent).

    With `site_url`, the items' pages are this project's demo item pages
    (`{site_url}/demo/items/<id>/`), so a click in the demo page's widget lands on one."""
    defaults_ensure()  # the event types' weights and the for-you placement, even after a flush
    data = generate(n_users=n_users, n_items=n_items, seed=seed)
    if site_url:
        data.items["URL"] = [demo_item_url(site_url, item_id) for item_id in data.items["ITEM_ID"]]
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


DEMO_KEY_NAME = "demo"
LOOPBACK_TWINS = {"localhost": "127.0.0.1", "127.0.0.1": "localhost"}


def demo_item_url(site_url: str, item_id: str) -> str:
    return f"{site_url.rstrip('/')}/demo/items/{item_id}/"


def demo_widget_key() -> ApiKey | None:
    """The public key the demo page embeds: the newest active one named "demo"."""
    return (
        ApiKey.objects.filter(name=DEMO_KEY_NAME, kind=ApiKey.Kind.PUBLIC, is_active=True)
        .exclude(published_key="")
        .order_by("-created_at", "-pk")
        .first()
    )


def demo_origins(site_url: str) -> list[str]:
    """The origin of `site_url`, and its loopback twin (`runserver` answers on both names)."""
    parts = urlsplit(site_url)
    origins = [f"{parts.scheme}://{parts.netloc}"]
    twin = LOOPBACK_TWINS.get(parts.hostname or "")
    if twin:
        port = f":{parts.port}" if parts.port else ""
        origins.append(f"{parts.scheme}://{twin}{port}")
    return origins


def demo_widget_key_ensure(*, site_url: str) -> tuple[ApiKey, bool]:
    """The demo page's public key, allowed on `site_url`'s origin; created when missing.
    Answers the key and whether it is new."""
    origins = demo_origins(site_url)
    api_key = demo_widget_key()
    if api_key is None:
        api_key, _ = api_key_create(
            name=DEMO_KEY_NAME, kind=ApiKey.Kind.PUBLIC, allowed_origins=origins
        )
        return api_key, True
    missing = [origin for origin in origins if origin not in api_key.allowed_origins]
    if missing:
        api_key.allowed_origins = [*api_key.allowed_origins, *missing]
        api_key.full_clean()
        api_key.save(update_fields=["allowed_origins"])
    return api_key, False
