"""The public links in every email: click redirect, open pixel, unsubscribe. They answer
anyone on the internet, so they never fail loudly: a bad token gets a friendly page (or the
pixel), never a redirect to somewhere the request chose."""

import base64

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from bulletins.models import Unsubscribe
from bulletins.services.tracking import (
    LinkNotFound,
    click_record,
    open_record,
    unsubscribe_record,
    unsubscribe_target,
)
from recsite import tokens

PIXEL_GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
ONE_CLICK_BODY = ("List-Unsubscribe", "One-Click")


def _user_agent(request: HttpRequest) -> str:
    return request.META.get("HTTP_USER_AGENT", "")


def _link_invalid(request: HttpRequest, status: int = 404) -> HttpResponse:
    return render(request, "bulletins/link_invalid.html", status=status)


@never_cache
@require_http_methods(["GET", "HEAD"])
def click_redirect(request: HttpRequest, token: str) -> HttpResponse:
    try:
        # HEAD is answered and recorded too, as a machine's (link scanners probe with it).
        target = click_record(
            token=token,
            method=request.method,
            user_agent=_user_agent(request),
            ip=request.META.get("REMOTE_ADDR", ""),
        )
    except (tokens.InvalidToken, LinkNotFound):
        return _link_invalid(request)
    response = HttpResponseRedirect(target)
    response["Referrer-Policy"] = "no-referrer"
    return response


@never_cache
@require_http_methods(["GET", "HEAD"])
def open_pixel(request: HttpRequest, token: str) -> HttpResponse:
    if request.method == "GET":
        open_record(token=token, user_agent=_user_agent(request))
    return HttpResponse(PIXEL_GIF, content_type="image/gif")


@csrf_exempt  # the token authenticates; RFC 8058 one-click POSTs come from mail providers
@never_cache
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    try:
        delivery = unsubscribe_target(token=token)
    except (tokens.InvalidToken, LinkNotFound):
        return _link_invalid(request)
    bulletin = delivery.run.bulletin
    if request.method == "GET":
        # A GET never unsubscribes: scanners and previews open links.
        return render(request, "bulletins/unsubscribe.html", {"bulletin": bulletin})
    one_click = request.POST.get(ONE_CLICK_BODY[0]) == ONE_CLICK_BODY[1]
    unsubscribe_record(
        delivery=delivery,
        method=Unsubscribe.Method.ONE_CLICK if one_click else Unsubscribe.Method.LINK,
        all_bulletins=request.POST.get("scope") == "all",
    )
    if one_click:
        return HttpResponse("unsubscribed\n", content_type="text/plain")
    return render(
        request,
        "bulletins/unsubscribed.html",
        {"bulletin": bulletin, "all_bulletins": request.POST.get("scope") == "all"},
    )
