"""The demo page: the website widget embedded the way a customer's site embeds it, on this
installation's own data. Served when `DEMO_PAGE_ENABLED` (on in development); 404 otherwise.

The demo keeps "who is signed in" in a cookie of its own (`recsite_demo_user`), as a site
keeps its login: its pages then put that user on the widget's script tag. The widget keeps
its anonymous id in its own cookie (`rs_aid`).
"""

from functools import wraps
from urllib.parse import urlsplit

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from recommendations.models import ApiKey, EndUser, Item, Placement
from recommendations.services.demo import DEMO_KEY_NAME, demo_widget_key

DEMO_USER_COOKIE = "recsite_demo_user"
SHOWN_USERS = 10
WIDGET_ITEMS = 6
MAX_USER_ID = 255


def demo_page(view):
    """Only when the demo is enabled, and only for GET."""

    @require_GET
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not settings.DEMO_PAGE_ENABLED:
            raise Http404("The demo page is off (DEMO_PAGE_ENABLED).")
        return view(request, *args, **kwargs)

    return wrapper


@demo_page
def demo_home(request: HttpRequest) -> HttpResponse:
    """`/demo/`: a "For you" widget for an anonymous visitor or a chosen user
    (`?user=ID` signs in as them; `?user=` signs out)."""
    chosen = request.GET.get("user")
    user_id = _user_id(request) if chosen is None else chosen.strip()[:MAX_USER_ID]
    users = EndUser.objects.filter(is_anonymous=False).order_by("pk")[:SHOWN_USERS]
    context = {
        **_widget_context(request),
        "user_id": user_id,
        "users": list(users.values_list("external_id", flat=True)),
        "k": WIDGET_ITEMS,
    }
    response = render(request, "recommendations/demo.html", context)
    if chosen is not None:
        if user_id:
            response.set_cookie(DEMO_USER_COOKIE, user_id, path="/demo/", samesite="Lax")
        else:
            response.delete_cookie(DEMO_USER_COOKIE, path="/demo/", samesite="Lax")
    return response


@demo_page
def demo_item(request: HttpRequest, external_id: str) -> HttpResponse:
    """`/demo/items/<id>/`: an item's page, where the demo's widget clicks land. It reports
    a view, its Buy button a purchase, and it shows similar items when a placement does."""
    item = get_object_or_404(Item, external_id=external_id)
    similar = (
        Placement.objects.filter(strategy=Placement.Strategy.SIMILAR_ITEMS, is_active=True)
        .order_by("pk")
        .first()
    )
    context = {
        **_widget_context(request),
        "user_id": _user_id(request),
        "item": item,
        "similar": similar,
        "k": WIDGET_ITEMS,
    }
    return render(request, "recommendations/demo_item.html", context)


def _user_id(request: HttpRequest) -> str:
    return request.COOKIES.get(DEMO_USER_COOKIE, "").strip()[:MAX_USER_ID]


def _widget_context(request: HttpRequest) -> dict:
    """The demo key, and whether the key lets this page's origin in (the page works on
    whichever host name it was opened, the key only on those it names)."""
    api_key: ApiKey | None = demo_widget_key()
    origin = f"{request.scheme}://{request.get_host()}"
    base = urlsplit(settings.PUBLIC_BASE_URL)
    return {
        "api_key": api_key,
        "key_name": DEMO_KEY_NAME,
        "origin": origin,
        "origin_allowed": api_key is not None and origin in api_key.allowed_origins,
        "public_base_url": f"{base.scheme}://{base.netloc}",
    }
