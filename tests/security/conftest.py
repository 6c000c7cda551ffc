"""One object of every admin model, the principals that may knock on a URL, and how to fill
a URL pattern's parameters with the objects: shared by the permissions matrix and the CSRF
tests."""

import datetime as dt
import re
from dataclasses import dataclass, field

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group, User
from django.db import models
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    SolarSchedule,
)

from bulletins.models import (
    Bulletin,
    BulletinBlock,
    BulletinRun,
    Click,
    Delivery,
    Open,
    PlatformConnection,
    Unsubscribe,
    Variant,
)
from recommendations.models import (
    ApiKey,
    EndUser,
    EventType,
    Interaction,
    Item,
    ModelVersion,
    PersonalizeRun,
    Placement,
    RecommendationRun,
    RecommendationSet,
    Rule,
    Segment,
)
from recommendations.roles import MARKETERS
from recommendations.services.api_keys import api_key_create
from recsite import tokens

ANONYMOUS, STAFF, MARKETER, SUPERUSER, PUBLIC_KEY, SECRET_KEY = PRINCIPALS = (
    "anonymous",
    "staff",
    "marketer",
    "superuser",
    "public key",
    "secret key",
)


@dataclass(frozen=True)
class Route:
    """One URL pattern of the project: its full route, its namespaced name (None for the
    admin's unnamed ones) and the view."""

    route: str
    name: str | None
    callback: object

    @property
    def key(self) -> str:
        return self.name or self.route


def routes() -> list[Route]:
    """Every URL pattern the resolver knows, admin's generated ones included."""

    def walk(resolver: URLResolver, prefix: str, namespace: str | None):
        for pattern in resolver.url_patterns:
            if isinstance(pattern, URLResolver):
                inner = namespace
                if pattern.namespace:
                    inner = f"{namespace}:{pattern.namespace}" if namespace else pattern.namespace
                yield from walk(pattern, prefix + str(pattern.pattern), inner)
            else:
                assert isinstance(pattern, URLPattern)
                name = pattern.name and (
                    f"{namespace}:{pattern.name}" if namespace else pattern.name
                )
                yield Route(prefix + str(pattern.pattern), name, pattern.callback)

    return list(walk(get_resolver(), "", None))


@dataclass
class World:
    objects: dict[str, models.Model]  # "<app label>_<model name>" -> one instance
    user: EndUser
    item: Item
    bulletin: Bulletin
    delivery: Delivery
    raw_keys: dict[str, str]
    staff: dict[str, User] = field(default_factory=dict)

    def client(self, principal: str, **client_kwargs) -> Client:
        if principal in (PUBLIC_KEY, SECRET_KEY):
            return Client(HTTP_AUTHORIZATION=f"Bearer {self.raw_keys[principal]}", **client_kwargs)
        client = Client(**client_kwargs)
        if principal != ANONYMOUS:
            client.force_login(self.staff[principal])
        return client


def world_build() -> World:
    now = timezone.now()
    user = EndUser.objects.create(
        external_id="reader-1", email="reader-1@example.com", email_opt_in=True
    )
    other = EndUser.objects.create(
        external_id="reader-2", email="reader-2@example.com", email_opt_in=True
    )
    item = Item.objects.create(
        external_id="item-1", title="Bread basics", url="https://shop.example/items/1"
    )
    placement = Placement.objects.get(slug="for-you")
    interaction = Interaction.objects.create(
        event_id="event-1",
        user=user,
        item=item,
        event_type=EventType.objects.get(name="view"),
        timestamp=now - dt.timedelta(days=1),
    )
    secret, raw_secret = api_key_create(name="server", kind=ApiKey.Kind.SECRET)
    _, raw_public = api_key_create(
        name="widget", kind=ApiKey.Kind.PUBLIC, allowed_origins=["https://site.example"]
    )
    version = ModelVersion.objects.create(status=ModelVersion.Status.READY)
    bulletin = Bulletin.objects.create(slug="weekly", name="Weekly", subject_template="Hi")
    BulletinBlock.objects.create(bulletin=bulletin, title="For you", placement=placement, count=3)
    variant = Variant.objects.create(bulletin=bulletin, name="all", share=100, is_control=True)
    run = BulletinRun.objects.create(bulletin=bulletin, run_key="security", sent=1, deliveries=1)
    entry = {
        "item_id": item.external_id,
        "block": 1,
        "position": 1,
        "placement": placement.slug,
        "source": "inhouse",
        "reason": "collaborative",
    }
    delivery = Delivery.objects.create(
        run=run,
        user=user,
        variant=variant,
        email=user.email,
        items=[entry],
        status=Delivery.Status.SENT,
        sent_at=now - dt.timedelta(hours=1),
    )
    interval = IntervalSchedule.objects.create(every=10, period=IntervalSchedule.MINUTES)
    staff = User.objects.create_user("staff", password="pw", is_staff=True)
    marketer = User.objects.create_user("marketer", password="pw", is_staff=True)
    marketer.groups.add(Group.objects.get(name=MARKETERS))
    superuser = User.objects.create_superuser("root", password="pw")
    objects = [
        user,
        item,
        EventType.objects.get(name="view"),
        interaction,
        secret,
        placement,
        Rule.objects.create(placement=placement, name="No repeats", kind="exclude_consumed"),
        version,
        RecommendationSet.objects.create(
            user=user,
            placement=placement,
            model_version=version,
            items=[{"item_id": item.external_id, "score": 1.0, "reason": "collaborative"}],
            computed_at=now,
        ),
        RecommendationRun.objects.create(),
        Segment.objects.create(slug="readers", name="Readers"),
        PersonalizeRun.objects.create(recipe="user-personalization", folder="s3://b/p"),
        PlatformConnection.objects.create(
            name="hook",
            kind=PlatformConnection.Kind.WEBHOOK,
            options={"url": "http://127.0.0.1:9/hook"},
            credential_env="RECSITE_TEST_HOOK_SECRET",
        ),
        bulletin,
        run,
        delivery,
        Unsubscribe.objects.create(user=other, bulletin=bulletin),
        Click.objects.create(
            delivery=delivery, user=user, run=run, variant=variant, item=item, position=1
        ),
        Open.objects.create(delivery=delivery),
        interval,
        CrontabSchedule.objects.create(minute="0", hour="6"),
        SolarSchedule.objects.create(event="sunrise", latitude=52.5, longitude=13.4),
        ClockedSchedule.objects.create(clocked_time=now + dt.timedelta(days=1)),
        PeriodicTask.objects.create(name="security", task="celery.ping", interval=interval),
        Group.objects.get(name=MARKETERS),
        staff,
    ]
    by_key = {f"{obj._meta.app_label}_{obj._meta.model_name}": obj for obj in objects}
    by_key["bulletins_widgetengagement"] = placement  # a proxy: the placement's report
    return World(
        objects=by_key,
        user=user,
        item=item,
        bulletin=bulletin,
        delivery=delivery,
        raw_keys={SECRET_KEY: raw_secret, PUBLIC_KEY: raw_public},
        staff={STAFF: staff, MARKETER: marketer, SUPERUSER: superuser},
    )


@pytest.fixture
def world(db, settings) -> World:
    settings.DEMO_PAGE_ENABLED = True
    return world_build()


ADMIN_MODEL_ROUTE = re.compile(r"^admin/(?P<app>\w+)/(?P<model>\w+)/")
PARAMETER = re.compile(r"<(?:(?P<converter>\w+):)?(?P<name>\w+)>")


def admin_model_key(route: Route) -> str | None:
    """`<app>_<model>` for a model's admin URL, else None."""
    found = ADMIN_MODEL_ROUTE.match(route.route)
    key = found and f"{found['app']}_{found['model']}"
    return key if key in registered_admin_models() else None


def registered_admin_models() -> set[str]:
    return {f"{m._meta.app_label}_{m._meta.model_name}" for m in admin.site._registry}


def url_fill(route: Route, world: World, *, app_label: str = "") -> str:
    """The route with its parameters filled from the world's objects."""
    model_key = admin_model_key(route)
    values = {
        "object_id": model_key and world.objects[model_key].pk,
        "id": world.staff[STAFF].pk,  # admin/auth/user/<id>/password/
        "content_type_id": _content_type_id(world.user),
        "slug": world.bulletin.slug,
        "user_id": world.user.external_id,
        "external_id": world.item.external_id,
    }
    tokens_by_view = {
        "bulletin-click": tokens.click_token(world.delivery.pk, 1, world.item.external_id),
        "bulletin-open": tokens.open_token(world.delivery.pk),
        "bulletin-unsubscribe": tokens.unsubscribe_token(world.delivery.pk),
    }
    if route.name in tokens_by_view:
        values["token"] = tokens_by_view[route.name]
    if route.route.startswith("admin/r/"):
        values["object_id"] = world.user.pk
    if "(?P<app_label>" in route.route:  # the admin's regex routes
        return f"/admin/{app_label}/"
    if "(?P<url>" in route.route:
        return "/admin/no-such-page/"
    return "/" + PARAMETER.sub(lambda m: str(values[m["name"]]), route.route)


def _content_type_id(obj: models.Model) -> int:
    from django.contrib.contenttypes.models import ContentType

    return ContentType.objects.get_for_model(obj).pk
