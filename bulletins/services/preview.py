"""Admin's preview of any user's email, and a test send of it to a chosen address."""

import uuid
from dataclasses import dataclass, replace

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from bulletins.models import Bulletin, Variant
from bulletins.rendering import Block, RenderedEmail, RenderError, bulletin_render, subject_render
from bulletins.services.audience import (
    Recipient,
    audience_queryset,
    audience_screen,
)
from bulletins.services.content import (
    deliveries_plan,
    email_render,
    items_lookup,
    message_of,
    user_context,
)
from bulletins.services.platforms import PlatformNotConfigured, bulletin_adapter
from integrations.platforms import PlatformAdapter, SendResult, adapter
from recommendations.models import EndUser

PREVIEW_DELIVERY_ID = 0  # its tracked links answer "link not found": nothing is recorded

# Platforms that email the address they are given. The others (Braze, Klaviyo, Mailchimp, a
# webhook) store the content on the user's profile or add a list member: a test through them
# would overwrite the real user's profile or subscribe the test address, so a test email goes
# through the site's own email backend instead.
EMAILS_AN_ADDRESS = {"smtp", "sendgrid"}


class PreviewError(ValueError):
    """Why there is no preview: unknown user, nothing to show, or a render error."""


@dataclass(frozen=True)
class EmailPreview:
    user: EndUser
    variant: Variant | None
    items: list[dict]
    used_fallback: bool
    email: RenderedEmail | None
    error: str
    would_skip: str  # why a real run would not send to this user, if it would not


def _skip_reason(bulletin: Bulletin, user: EndUser) -> str:
    if not audience_queryset(bulletin).filter(pk=user.pk).exists():
        return "not in the bulletin's audience (segments)"
    screening = audience_screen(bulletin, EndUser.objects.filter(pk=user.pk))
    if screening.not_opted_in:
        return "has not opted in to email"
    if screening.unsubscribed:
        return "unsubscribed"
    if screening.no_email:
        return "has no email address"
    return ""


def bulletin_preview(
    *, bulletin: Bulletin, user_external_id: str, variant_name: str = ""
) -> EmailPreview:
    """The user's email as a run would make it now, in the user's own arm or, with
    `variant_name`, in that arm (to see what each arm's readers get)."""
    user = EndUser.objects.filter(external_id=user_external_id).first()
    if user is None:
        raise PreviewError(f"no end user with id {user_external_id!r}")
    if not bulletin.blocks.exists():
        raise PreviewError("the bulletin has no recommendation block yet")
    recipient = Recipient(user.pk, user.external_id, user.email, user.attributes or {})
    variants = list(bulletin.variants.all())
    if variant_name:
        variants = [variant for variant in variants if variant.name == variant_name]
        if not variants:
            raise PreviewError(f"the bulletin has no arm named {variant_name!r}")
    plans, _ = deliveries_plan(bulletin, [recipient], variants=variants)
    if not plans:
        raise PreviewError(
            f"no item for {user_external_id!r}, not even from the placements' fallbacks"
        )
    plan = plans[0]
    email, error = None, ""
    try:
        email = email_render(
            bulletin,
            recipient=recipient,
            variant=plan.variant,
            items=plan.items,
            delivery_id=PREVIEW_DELIVERY_ID,
            blocks=list(bulletin.blocks.select_related("placement")),
            lookup=items_lookup([entry["item_id"] for entry in plan.items]),
        )
    except RenderError as failure:
        error = str(failure)
    return EmailPreview(
        user=user,
        variant=plan.variant,
        items=plan.items,
        used_fallback=plan.used_fallback,
        email=email,
        error=error,
        would_skip=_skip_reason(bulletin, user),
    )


def adapter_for_test_send(bulletin: Bulletin) -> PlatformAdapter:
    """The adapter a test email goes through: the bulletin's own when it emails an address,
    Django's email backend otherwise."""
    if bulletin.platform is not None:
        kind = bulletin.platform.kind
    else:
        kind = (getattr(settings, "EMAIL_PLATFORM", None) or {}).get("name", "smtp")
    try:
        if kind in EMAILS_AN_ADDRESS:
            return bulletin_adapter(bulletin)
        return adapter({"name": "smtp", "from_email": bulletin.from_email})
    except PlatformNotConfigured as failure:
        raise PreviewError(str(failure)) from failure


def bulletin_test_send(*, bulletin: Bulletin, user_external_id: str, to_email: str) -> SendResult:
    """Send the user's email, as previewed, to `to_email` (through the bulletin's platform
    when it emails addresses). Nothing is recorded as a delivery; its links are not tracked."""
    try:
        validate_email(to_email)
    except ValidationError as failure:
        raise PreviewError(f"{to_email!r} is not an email address") from failure
    preview = bulletin_preview(bulletin=bulletin, user_external_id=user_external_id)
    if preview.email is None:
        raise PreviewError(preview.error)
    user = preview.user
    recipient = Recipient(user.pk, user.external_id, to_email, user.attributes or {})
    email = preview.email
    message = replace(
        message_of(recipient, PREVIEW_DELIVERY_ID, email),
        subject=f"[TEST] {email.subject}",
        idempotency_key=f"test-{uuid.uuid4().hex}",
    )
    return adapter_for_test_send(bulletin).send([message])[0]


SAMPLE_ITEM = {
    "item_id": "sample",
    "title": "A sample story",
    "url": "https://example.com/sample",
    "position": 1,
    "description": "What a recommended item looks like in this layout.",
}


def _sample_user() -> dict:
    """A real subscriber's attributes when there is one (what templates will really see),
    else a made-up reader."""
    user = EndUser.objects.filter(is_anonymous=False, email_opt_in=True).exclude(email="").first()
    if user is None:
        return {"email": "reader@example.com", "id": "sample", "first_name": "Alex"}
    return user_context(Recipient(user.pk, user.external_id, user.email, user.attributes or {}))


def bulletin_templates_check(*, subject_template: str, layout_mjml: str) -> dict[str, str]:
    """Render the subject and the layout for a sample user and a sample item, as a run
    would: field name -> why it cannot be sent (empty when both render)."""
    user, errors = _sample_user(), {}
    try:
        subject_render(subject_template, user)
    except Exception as error:  # a template filter can raise anything; the form shows it
        errors["subject_template"] = _render_problem(error)
    try:
        bulletin_render(
            subject_template="sample",
            layout_mjml=layout_mjml or None,
            blocks=[Block(title="Picked for you", items=[SAMPLE_ITEM])],
            user=user,
            delivery_id=PREVIEW_DELIVERY_ID,
        )
    except Exception as error:
        errors["layout_mjml"] = _render_problem(error)
    return errors


def _render_problem(error: Exception) -> str:
    text = str(error) if isinstance(error, RenderError) else f"{type(error).__name__}: {error}"
    return f"Rendering for a sample reader failed: {text}"
