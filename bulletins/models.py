"""Bulletins and what happens to them: runs, one delivery per user and run, clicks, opens and
unsubscribes. A delivery row is the outbox: it is written (with the items it will carry) before
anything is pushed, claimed before the push and marked with the platform's answer after it."""

import datetime as dt

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from bulletins import scheduling
from recommendations.models import (
    EndUser,
    Interaction,
    Item,
    Placement,
    PlacementVariant,
    Segment,
)

# The service's own secrets: a connection must never send them to its platform's base URL.
SERVICE_SECRET_VARIABLES = {
    "SECRET_KEY",
    "DATABASE_URL",
    "REDIS_URL",
    "CACHE_URL",
    "CELERY_BROKER_URL",
    "CELERY_RESULT_BACKEND",
    "EMAIL_URL",
    "EMAIL_PLATFORM_OPTIONS",
}
SERVICE_SECRET_PREFIXES = ("AWS_", "PERSONALIZE_")


class PlatformConnection(models.Model):
    """A marketing platform account. Secrets never live here: `credential_env` names the
    environment variable that holds the API key or signing secret."""

    class Kind(models.TextChoices):
        SMTP = "smtp", "SMTP (Django email backend)"
        SENDGRID = "sendgrid", "SendGrid v3 mail/send"
        MAILCHIMP = "mailchimp", "Mailchimp Marketing API"
        BRAZE = "braze", "Braze /users/track"
        KLAVIYO = "klaviyo", "Klaviyo profiles"
        WEBHOOK = "webhook", "signed webhook"

    # The adapter argument that receives the secret read from `credential_env`.
    SECRET_ARGUMENT = {
        Kind.SENDGRID: "api_key",
        Kind.MAILCHIMP: "api_key",
        Kind.BRAZE: "api_key",
        Kind.KLAVIYO: "api_key",
        Kind.WEBHOOK: "secret",
    }

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=20, choices=Kind, default=Kind.SMTP)
    options = models.JSONField(
        default=dict,
        blank=True,
        help_text='Adapter options other than the secret, e.g. {"url": "https://…"} for a '
        'webhook, {"server": "us21", "list_id": "…"} for Mailchimp.',
    )
    credential_env = models.CharField(
        max_length=100,
        blank=True,
        validators=[
            RegexValidator(
                r"^[A-Z][A-Z0-9_]*$",
                "The name of an environment variable (capitals, digits, _), not the secret.",
            )
        ],
        help_text="Name of the environment variable holding the API key or signing secret.",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()})"

    def clean(self) -> None:
        if not isinstance(self.options, dict):
            raise ValidationError({"options": "Options must be a JSON object."})
        if "name" in self.options or "api_key" in self.options or "secret" in self.options:
            raise ValidationError(
                {"options": "Put secrets in an environment variable named in 'credential env'."}
            )
        if self.kind in self.SECRET_ARGUMENT and not self.credential_env:
            raise ValidationError(
                {"credential_env": f"{self.get_kind_display()} needs an API key or secret."}
            )
        name = self.credential_env
        if name in SERVICE_SECRET_VARIABLES or name.startswith(SERVICE_SECRET_PREFIXES):
            raise ValidationError(
                {
                    "credential_env": f"{name} holds one of the service's own secrets; give "
                    "the platform a variable of its own."
                }
            )


class Bulletin(models.Model):
    slug = models.SlugField(max_length=60, unique=True)
    name = models.CharField(max_length=200)
    subject_template = models.CharField(
        max_length=300,
        help_text='Django template syntax, e.g. "{{ user.first_name|default:"Hi" }}, your picks". '
        "`user` holds the end user's attributes and email.",
    )
    layout_mjml = models.TextField(
        blank=True,
        help_text="MJML with Django template syntax; empty uses the built-in layout. "
        "See docs/BULLETINS.md for the context.",
    )
    from_email = models.CharField(
        max_length=254, blank=True, help_text="Empty uses DEFAULT_FROM_EMAIL."
    )
    segments = models.ManyToManyField(
        Segment,
        blank=True,
        related_name="+",
        help_text="Audience: members of any of these segments; none selected means every "
        "opted-in user. Users who did not opt in or unsubscribed are always skipped.",
    )
    platform = models.ForeignKey(
        PlatformConnection,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="Empty uses the EMAIL_PLATFORM setting (SMTP by default).",
    )
    send_frequency = models.CharField(
        "send",
        max_length=10,
        choices=[
            (scheduling.NONE, "not on a schedule"),
            (scheduling.DAILY, "every day"),
            (scheduling.WEEKLY, "every week"),
            (scheduling.CRON, "on a cron expression"),
        ],
        default=scheduling.NONE,
    )
    send_time = models.TimeField(
        "at", default=dt.time(8, 0), null=True, blank=True, help_text="Daily and weekly."
    )
    send_weekday = models.CharField(
        "on", max_length=1, choices=scheduling.WEEKDAYS, default="1", help_text="Weekly."
    )
    send_cron = models.CharField(
        "cron expression",
        max_length=100,
        blank=True,
        help_text="minute hour day-of-month month day-of-week, for example `0 8 * * 1-5` "
        "(08:00 on weekdays).",
    )
    send_timezone = models.CharField(
        "time zone", max_length=64, default="UTC", help_text="For example Europe/Paris."
    )
    schedule = models.ForeignKey(
        CrontabSchedule,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
        help_text="The crontab beat runs, made from the fields above when the bulletin is saved.",
    )
    schedule_enabled = models.BooleanField("schedule on", default=False)
    min_detectable_uplift = models.PositiveSmallIntegerField(
        default=10,
        validators=[MinValueValidator(1), MaxValueValidator(1000)],
        help_text="Experiments: the relative CTR uplift (percent) worth detecting; the report "
        "warns while the arms are too small to detect it.",
    )
    periodic_task = models.OneToOneField(
        PeriodicTask, on_delete=models.SET_NULL, null=True, blank=True, editable=False
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def schedule_spec(self) -> scheduling.ScheduleSpec:
        return scheduling.ScheduleSpec(
            frequency=self.send_frequency,
            time=self.send_time,
            weekday=self.send_weekday,
            cron=self.send_cron.strip(),
            timezone=self.send_timezone.strip(),
        )

    @property
    def schedule_summary(self) -> str:
        return scheduling.schedule_summary(self.schedule_spec)

    def clean(self) -> None:
        errors = scheduling.schedule_errors(self.schedule_spec)
        if self.schedule_enabled and self.send_frequency == scheduling.NONE:
            errors["send_frequency"] = "Choose when to send before turning the schedule on."
        if errors:
            raise ValidationError(errors)


class BulletinBlock(models.Model):
    """One recommendation block of a bulletin, filled from a placement."""

    bulletin = models.ForeignKey(Bulletin, on_delete=models.CASCADE, related_name="blocks")
    position = models.PositiveSmallIntegerField(default=1)
    title = models.CharField(max_length=200)
    placement = models.ForeignKey(Placement, on_delete=models.PROTECT, related_name="+")
    count = models.PositiveSmallIntegerField(
        default=6, validators=[MinValueValidator(1), MaxValueValidator(50)]
    )
    skip_sent_in_last = models.PositiveSmallIntegerField(
        "skip items sent in the last",
        default=1,
        validators=[MaxValueValidator(10)],
        help_text="Leave out what this reader was sent in their last N emails, so a weekly "
        "bulletin does not show last week's items again; 0 allows repeats.",
    )

    class Meta:
        ordering = ["bulletin", "position", "pk"]

    def __str__(self) -> str:
        return f"{self.title} ({self.placement.slug}, {self.count})"


class Variant(models.Model):
    """An experiment arm. Users are split by a stable hash of bulletin and user, so a user
    stays in the same arm from one run to the next."""

    class Source(models.TextChoices):
        PLACEMENT = "placement", "as each placement is set"
        IN_HOUSE = "inhouse", "in-house model"
        PERSONALIZE = "personalize", "Amazon Personalize"
        NON_PERSONALIZED = "trending", "non-personalized (trending) holdout"

    bulletin = models.ForeignKey(Bulletin, on_delete=models.CASCADE, related_name="variants")
    name = models.SlugField(max_length=40)
    share = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text="Percent of the audience; a bulletin's shares add up to 100.",
    )
    source = models.CharField(max_length=20, choices=Source, default=Source.PLACEMENT)
    subject_template = models.CharField(
        max_length=300, blank=True, help_text="Empty uses the bulletin's subject."
    )
    is_control = models.BooleanField(default=False, help_text="The arm others are compared to.")

    class Meta:
        ordering = ["bulletin", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["bulletin", "name"], name="variant_unique_name"),
            models.UniqueConstraint(
                fields=["bulletin"],
                condition=models.Q(is_control=True),
                name="variant_one_control",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.share}%)"


class BulletinRun(models.Model):
    class Status(models.TextChoices):
        PREPARING = "preparing", "preparing deliveries"
        SENDING = "sending", "sending"
        DONE = "done", "done"
        FAILED = "failed", "failed"

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule", "schedule"
        ADMIN = "admin", "admin"
        COMMAND = "command", "command"

    bulletin = models.ForeignKey(Bulletin, on_delete=models.PROTECT, related_name="runs")
    status = models.CharField(max_length=10, choices=Status, default=Status.PREPARING)
    trigger = models.CharField(max_length=10, choices=Trigger, default=Trigger.ADMIN)
    run_key = models.CharField(
        max_length=100,
        help_text="One run per key: a schedule tick delivered twice starts one run.",
    )
    audience = models.PositiveIntegerField(default=0)
    shards = models.PositiveIntegerField(default=0)
    shard_bounds = models.JSONField(
        default=list, blank=True, help_text="[[first user pk, last user pk], ...]"
    )
    prepared_shards = models.JSONField(default=list, blank=True)
    deliveries = models.PositiveIntegerField(default=0, help_text="Users to send to.")
    sent = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    fallback = models.PositiveIntegerField(
        default=0, help_text="Deliveries with a block filled from the placement's fallback."
    )
    skipped_not_opted_in = models.PositiveIntegerField(default=0)
    skipped_unsubscribed = models.PositiveIntegerField(default=0)
    skipped_no_email = models.PositiveIntegerField(default=0)
    skipped_no_items = models.PositiveIntegerField(
        default=0, help_text="Users for whom not even the fallback found an item."
    )
    cancelled = models.PositiveIntegerField(
        default=0, help_text="Unsubscribed between preparing and sending."
    )
    error = models.TextField(blank=True)
    started_at = models.DateTimeField(auto_now_add=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]
        constraints = [
            models.UniqueConstraint(fields=["bulletin", "run_key"], name="bulletinrun_unique_key")
        ]

    def __str__(self) -> str:
        return f"{self.bulletin} run #{self.pk}"

    @property
    def skipped(self) -> int:
        return (
            self.skipped_not_opted_in
            + self.skipped_unsubscribed
            + self.skipped_no_email
            + self.skipped_no_items
        )


class Delivery(models.Model):
    """One user's email in one run: what it carries, and what the platform said."""

    class Status(models.TextChoices):
        PENDING = "pending", "pending"
        SENDING = "sending", "being sent"
        SENT = "sent", "sent"
        RETRYABLE = "retryable", "failed, will retry"
        FAILED = "failed", "failed"
        CANCELLED = "cancelled", "not sent: unsubscribed before sending"

    run = models.ForeignKey(BulletinRun, on_delete=models.CASCADE, related_name="delivery_set")
    user = models.ForeignKey(EndUser, on_delete=models.CASCADE, related_name="deliveries")
    variant = models.ForeignKey(
        Variant, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    email = models.EmailField(help_text="The address at the time of the run.")
    items = models.JSONField(
        default=list,
        help_text="[{item_id, block, position, placement, source, reason}], position from 1 "
        "across the email.",
    )
    used_fallback = models.BooleanField(default=False)
    status = models.CharField(max_length=10, choices=Status, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    claimed_at = models.DateTimeField(null=True, blank=True)
    claim_token = models.CharField(max_length=32, blank=True, editable=False)
    message_id = models.CharField(max_length=255, blank=True)
    error = models.TextField(blank=True)
    size_bytes = models.PositiveIntegerField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "deliveries"
        constraints = [
            models.UniqueConstraint(fields=["run", "user"], name="delivery_unique_run_user")
        ]
        indexes = [
            models.Index(fields=["run", "status"], name="delivery_run_status"),
            models.Index(fields=["user", "sent_at"], name="delivery_user_sent"),
        ]

    def __str__(self) -> str:
        return f"delivery #{self.pk} to {self.email}"


class Unsubscribe(models.Model):
    """A user who asked not to receive a bulletin again (or any, when `bulletin` is empty)."""

    class Method(models.TextChoices):
        ONE_CLICK = "one_click", "one-click (RFC 8058)"
        LINK = "link", "unsubscribe page"
        ADMIN = "admin", "admin"

    user = models.ForeignKey(EndUser, on_delete=models.CASCADE, related_name="unsubscribes")
    bulletin = models.ForeignKey(
        Bulletin, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    delivery = models.ForeignKey(
        Delivery, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    method = models.CharField(max_length=10, choices=Method, default=Method.LINK)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "bulletin"], name="unsubscribe_unique_user_bulletin"
            ),
            models.UniqueConstraint(
                fields=["user"],
                condition=models.Q(bulletin__isnull=True),
                name="unsubscribe_unique_user_all",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} from {self.bulletin or 'all bulletins'}"


class Click(models.Model):
    """A click on a tracked link: in an email (`delivery`) or a website widget
    (`placement`). Machine clicks are kept, flagged with why, and left out of the reports;
    a human's repeated click on the same link counts once (`is_first`)."""

    class Channel(models.TextChoices):
        EMAIL = "email", "email"
        WIDGET = "widget", "website widget"

    channel = models.CharField(max_length=10, choices=Channel, default=Channel.EMAIL)
    delivery = models.ForeignKey(
        Delivery, on_delete=models.CASCADE, null=True, blank=True, related_name="clicks"
    )
    user = models.ForeignKey(
        EndUser, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    run = models.ForeignKey(
        BulletinRun, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    variant = models.ForeignKey(
        Variant, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    placement = models.ForeignKey(
        Placement, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    placement_variant = models.ForeignKey(
        PlacementVariant,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="A widget click: the placement's experiment arm the visitor was in.",
    )
    item = models.ForeignKey(Item, on_delete=models.SET_NULL, null=True, related_name="+")
    position = models.PositiveSmallIntegerField()
    source = models.CharField(max_length=20, blank=True)
    is_human = models.BooleanField(default=True)
    bot_reason = models.CharField(max_length=60, blank=True)
    is_first = models.BooleanField(
        default=True, help_text="The first human click of this user on this link."
    )
    user_agent = models.CharField(max_length=500, blank=True)
    ip_hash = models.CharField(max_length=24, blank=True, help_text="Salted hash, never the IP.")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        indexes = [
            models.Index(fields=["delivery", "position"], name="click_delivery_position"),
            models.Index(fields=["user", "created_at"], name="click_user_time"),
            models.Index(fields=["run", "variant"], name="click_run_variant"),
        ]

    def __str__(self) -> str:
        where = f"delivery #{self.delivery_id}" if self.delivery_id else f"{self.placement}"
        return f"click on position {self.position} of {where}"


class Open(models.Model):
    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="opens")
    is_human = models.BooleanField(default=True)
    bot_reason = models.CharField(max_length=60, blank=True)
    is_first = models.BooleanField(default=True)
    user_agent = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"open of delivery #{self.delivery_id}"


class Conversion(models.Model):
    """A conversion event attributed to the user's last human click before it, within the
    event type's window: through the click, to its bulletin run, variant, source and position
    (or widget placement and arm). An event is attributed once."""

    interaction = models.OneToOneField(
        Interaction, on_delete=models.CASCADE, related_name="conversion"
    )
    click = models.ForeignKey(Click, on_delete=models.CASCADE, related_name="conversions")
    user = models.ForeignKey(EndUser, on_delete=models.CASCADE, related_name="+")
    channel = models.CharField(max_length=10, choices=Click.Channel)
    run = models.ForeignKey(
        BulletinRun, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    variant = models.ForeignKey(
        Variant, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    placement = models.ForeignKey(
        Placement, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    placement_variant = models.ForeignKey(
        PlacementVariant, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    source = models.CharField(max_length=20, blank=True)
    position = models.PositiveSmallIntegerField()
    event_type = models.CharField(max_length=50)
    value = models.FloatField(null=True, blank=True)
    converted_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["run", "variant"], name="conversion_run_variant")]

    def __str__(self) -> str:
        return f"{self.event_type} by {self.user_id} after click #{self.click_id}"


class WidgetEngagement(Placement):
    """A placement seen as a website widget: its admin page is the widget engagement report
    (arms with uplifts, positions, days), counted from impression events, clicks and
    conversions. Nothing of its own is stored."""

    class Meta:
        proxy = True
        verbose_name = "widget engagement"
        verbose_name_plural = "widget engagement"


class ErasedContribution(models.Model):
    """What erased end users (`python manage.py forget_user`) had added to a bulletin's
    experiment report and its runs' counts, kept as plain counts when their rows went, so the
    totals stay what they were (`bulletins.services.erasure`). No user, address or id: a row
    sums every erased user with the same key."""

    class Scope(models.TextChoices):
        ARM = "arm", "people per arm over all runs"
        RUN = "run", "people per arm in one run, and the run's deliveries by status"
        POSITION = "position", "emails per position in one run"
        DAY = "day", "clicks and conversions per day in one run"

    bulletin = models.ForeignKey(Bulletin, on_delete=models.CASCADE, related_name="+")
    scope = models.CharField(max_length=10, choices=Scope)
    run = models.ForeignKey(
        BulletinRun, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    variant = models.ForeignKey(
        Variant, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    position = models.PositiveSmallIntegerField(null=True, blank=True)
    day = models.DateField(null=True, blank=True)
    # The run's deliveries by status (scope run), as `run_counts_refresh` recounts them.
    deliveries = models.PositiveIntegerField(default=0)
    sent = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    cancelled = models.PositiveIntegerField(default=0)
    # The report's counts (`bulletins.services.reports.Counts`).
    delivered = models.PositiveIntegerField(default=0)
    openers = models.PositiveIntegerField(default=0)
    clickers = models.PositiveIntegerField(default=0)
    clicks = models.PositiveIntegerField(default=0)
    converters = models.PositiveIntegerField(default=0)
    conversions = models.PositiveIntegerField(default=0)
    value = models.FloatField(default=0.0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["bulletin", "scope"], name="erased_bulletin_scope")]

    def __str__(self) -> str:
        return f"erased users' {self.get_scope_display()} for {self.bulletin_id}"


class Suppression(models.Model):
    """An address that asked not to be emailed (this bulletin, or all when `bulletin` is
    empty) and whose user was erased: only the SHA-256 of the address is kept, so a later
    import of the same address is still skipped as unsubscribed."""

    email_sha256 = models.CharField(max_length=64)
    bulletin = models.ForeignKey(
        Bulletin, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["email_sha256", "bulletin"], name="suppression_unique_bulletin"
            ),
            models.UniqueConstraint(
                fields=["email_sha256"],
                condition=models.Q(bulletin__isnull=True),
                name="suppression_unique_all",
            ),
        ]

    def __str__(self) -> str:
        return f"suppressed {self.email_sha256[:12]}… ({self.bulletin_id or 'all'})"
