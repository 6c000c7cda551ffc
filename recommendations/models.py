"""The audience, the catalogue and their behaviour.

End users are the newsletter's audience and the website's visitors; Django's auth `User`
stays for staff. External ids are the ids the customer's own systems use; the CSV import,
the events API and every export speak in them.
"""

from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models


class EndUser(models.Model):
    external_id = models.CharField(max_length=255, unique=True)
    email = models.EmailField(blank=True, db_index=True)
    attributes = models.JSONField(default=dict, blank=True)
    email_opt_in = models.BooleanField(
        default=False, help_text="Consented to receive bulletins by email."
    )
    personalization_opt_out = models.BooleanField(
        default=False, help_text="Asked not to be profiled: gets non-personalized lists only."
    )
    is_anonymous = models.BooleanField(
        default=False, help_text="Created from behaviour events before the user was known."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "end user"
        indexes = [
            models.Index(
                fields=["email_opt_in", "personalization_opt_out"], name="enduser_consent"
            ),
            models.Index(fields=["created_at"], name="enduser_created"),
        ]

    def __str__(self) -> str:
        return self.external_id


class Item(models.Model):
    external_id = models.CharField(max_length=255, unique=True)
    title = models.CharField(max_length=500, blank=True)
    description = models.TextField(blank=True)
    url = models.URLField(max_length=2000, blank=True)
    image_url = models.URLField(max_length=2000, blank=True)
    categories = models.JSONField(default=list, blank=True, help_text="A list of category names.")
    tags = models.JSONField(default=list, blank=True, help_text="A list of tags.")
    price = models.DecimalField(
        max_digits=12, decimal_places=2, null=True, blank=True, validators=[MinValueValidator(0)]
    )
    available = models.BooleanField(default=True)
    published_at = models.DateTimeField(null=True, blank=True)
    attributes = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(fields=["available", "published_at"], name="item_available_published"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(price__isnull=True) | models.Q(price__gte=0),
                name="item_price_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return self.title or self.external_id


class EventType(models.Model):
    """How much one event of a kind says about a user's taste. Marketers tune the weights."""

    class ValueMode(models.TextChoices):
        FIXED = "fixed", "weight only"
        VALUE = "value", "weight × event value (e.g. a rating)"
        FRACTION = "fraction", "weight × fraction in [0, 1] (e.g. share of a video watched)"

    name = models.SlugField(max_length=50, unique=True)
    weight = models.FloatField(default=1.0, validators=[MinValueValidator(0)])
    value_mode = models.CharField(max_length=10, choices=ValueMode, default=ValueMode.FIXED)
    is_conversion = models.BooleanField(
        default=False, help_text="Counts as a conversion when it follows a tracked click."
    )
    attribution_window_days = models.PositiveSmallIntegerField(
        default=7,
        validators=[MinValueValidator(1)],
        help_text="A conversion is attributed to the user's last click up to this many days "
        "before it.",
    )
    description = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(weight__gte=0), name="eventtype_weight_gte_0"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def strength(self, value: float | None) -> float:
        """The interaction strength of one event of this type with the given value."""
        if self.value_mode == self.ValueMode.VALUE:
            return self.weight * (value if value is not None else 1.0)
        if self.value_mode == self.ValueMode.FRACTION:
            return self.weight * min(max(value if value is not None else 1.0, 0.0), 1.0)
        return self.weight


class Interaction(models.Model):
    """One behaviour event. `event_id` makes intake idempotent: a replay stores nothing new."""

    class Source(models.TextChoices):
        IMPORT = "import", "CSV import"
        API = "api", "events API"
        WIDGET = "widget", "website widget"
        EMAIL = "email", "email click"

    event_id = models.CharField(max_length=255, unique=True)
    user = models.ForeignKey(EndUser, on_delete=models.CASCADE, related_name="interactions")
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="interactions")
    event_type = models.ForeignKey(EventType, on_delete=models.PROTECT, related_name="+")
    event_value = models.FloatField(null=True, blank=True)
    timestamp = models.DateTimeField()
    context = models.JSONField(default=dict, blank=True)
    source = models.CharField(max_length=10, choices=Source, default=Source.API)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(fields=["user", "-timestamp"], name="interaction_user_time"),
            models.Index(fields=["item", "-timestamp"], name="interaction_item_time"),
            models.Index(fields=["timestamp"], name="interaction_time"),
        ]

    def __str__(self) -> str:
        return (
            f"{self.user_id} {self.event_type_id} {self.item_id} @ {self.timestamp:%Y-%m-%d %H:%M}"
        )


class ApiKey(models.Model):
    """A key for the public APIs. Only a SHA-256 of the key is stored; the key is shown once.

    Secret keys are for server-to-server calls. Public keys go in browser widgets: they may
    only read recommendations and write events, from their allowed origins.
    """

    class Kind(models.TextChoices):
        SECRET = "secret", "secret (server to server)"
        PUBLIC = "public", "public (browser widget)"

    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=10, choices=Kind)
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    # A public key is printed in every page that embeds the widget, so keeping it lets admin
    # show the embed snippet at any time; a secret key is only ever stored as its hash.
    published_key = models.CharField(max_length=80, blank=True, editable=False)
    allowed_origins = models.JSONField(
        default=list, blank=True, help_text="For public keys: origins like https://example.com."
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.kind}, {self.prefix}…)"

    def clean(self) -> None:
        """Origins are compared with the browser's `Origin` header, so they must be written
        the way browsers send it: scheme, host and port only."""
        if not isinstance(self.allowed_origins, list):
            raise ValidationError(
                {"allowed_origins": 'A list of origins, like ["https://example.com"].'}
            )
        for origin in self.allowed_origins:
            parts = urlsplit(origin) if isinstance(origin, str) else None
            if (
                parts is None
                or parts.scheme not in ("http", "https")
                or not parts.netloc
                or parts.path
                or parts.query
                or parts.fragment
            ):
                raise ValidationError(
                    {
                        "allowed_origins": f"{origin!r} is not an origin: write scheme, host and "
                        "port only, like https://shop.example or http://localhost:8000."
                    }
                )


MAX_PLACEMENT_COUNT = 100  # a widget row or an email block; more is a mistake


class Placement(models.Model):
    """Where recommendations are shown: a website widget, an email block, an item page."""

    class Strategy(models.TextChoices):
        PERSONALIZED = "personalized", "personalized for the user"
        SIMILAR_ITEMS = "similar_items", "similar to an item (item pages)"
        TRENDING = "trending", "trending"
        NEW_ARRIVALS = "new_arrivals", "new arrivals, ranked for the user"
        RANKING = "ranking", "a given list of items, ranked for the user"

    class Source(models.TextChoices):
        IN_HOUSE = "inhouse", "in-house model"
        PERSONALIZE = "personalize", "Amazon Personalize"
        BLEND = "blend", "blend of both"

    FALLBACKS = ("inhouse", "personalize", "trending")

    slug = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=100)
    strategy = models.CharField(max_length=20, choices=Strategy, default=Strategy.PERSONALIZED)
    count = models.PositiveSmallIntegerField(
        default=10,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_PLACEMENT_COUNT)],
        help_text=f"How many items to show (1 to {MAX_PLACEMENT_COUNT}).",
    )
    source = models.CharField(max_length=20, choices=Source, default=Source.IN_HOUSE)
    personalize_share = models.FloatField(
        default=0.5,
        validators=[MinValueValidator(0), MaxValueValidator(1)],
        help_text="For a blend: the share of positions filled from Personalize.",
    )
    fallback_order = models.CharField(
        max_length=100,
        default="inhouse,trending",
        help_text="Comma-separated sources to try, in order, when the first has no list: "
        "inhouse, personalize, trending.",
    )
    window_days = models.PositiveSmallIntegerField(
        default=14,
        validators=[MinValueValidator(1)],
        help_text="Trending: events of the last N days. New arrivals: published in the last N.",
    )
    item_list = models.JSONField(
        default=list, blank=True, help_text="For 'a given list': the item ids to rank."
    )
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["slug"]
        constraints = [
            models.CheckConstraint(condition=models.Q(count__gte=1), name="placement_count_gte_1"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def fallbacks(self) -> list[str]:
        return [name.strip() for name in self.fallback_order.split(",") if name.strip()]

    def clean(self) -> None:
        errors = {}
        unknown = [name for name in self.fallbacks if name not in self.FALLBACKS]
        if unknown:
            errors["fallback_order"] = (
                f"Unknown source(s) {', '.join(unknown)}; use {', '.join(self.FALLBACKS)}."
            )
        if self.strategy == self.Strategy.RANKING and not self.item_list:
            errors["item_list"] = "A ranking placement needs the list of item ids to rank."
        if errors:
            raise ValidationError(errors)


class PlacementVariant(models.Model):
    """An experiment arm of a placement: visitors are split by a stable hash of placement and
    user, so a visitor sees the same arm on every page and every day."""

    class Source(models.TextChoices):
        PLACEMENT = "placement", "as the placement is set"
        IN_HOUSE = "inhouse", "in-house model"
        PERSONALIZE = "personalize", "Amazon Personalize"
        BLEND = "blend", "blend of both"
        NON_PERSONALIZED = "trending", "non-personalized (trending) holdout"

    placement = models.ForeignKey(Placement, on_delete=models.CASCADE, related_name="variants")
    name = models.SlugField(max_length=40)
    share = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text="Percent of the visitors; a placement's shares add up to 100.",
    )
    source = models.CharField(max_length=20, choices=Source, default=Source.PLACEMENT)
    is_control = models.BooleanField(default=False, help_text="The arm others are compared to.")

    class Meta:
        ordering = ["placement", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["placement", "name"], name="placementvariant_unique_name"
            ),
            models.UniqueConstraint(
                fields=["placement"],
                condition=models.Q(is_control=True),
                name="placementvariant_one_control",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.share}%)"


class Segment(models.Model):
    """A group of end users: defined by conditions, or learned from behaviour (k-means)."""

    class Kind(models.TextChoices):
        RULES = "rules", "defined by conditions"
        LEARNED = "learned", "learned from behaviour"

    slug = models.SlugField(max_length=60, unique=True)
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=10, choices=Kind, default=Kind.RULES)
    size = models.PositiveIntegerField(default=0, editable=False)
    profile = models.JSONField(default=dict, blank=True, editable=False)
    refreshed_at = models.DateTimeField(null=True, blank=True, editable=False)
    members = models.ManyToManyField(EndUser, through="SegmentMembership", related_name="+")

    class Meta:
        ordering = ["kind", "name"]

    def __str__(self) -> str:
        return self.name


class SegmentMembership(models.Model):
    segment = models.ForeignKey(Segment, on_delete=models.CASCADE)
    user = models.ForeignKey(EndUser, on_delete=models.CASCADE, related_name="segment_memberships")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["segment", "user"], name="segmentmembership_unique"),
        ]
        indexes = [models.Index(fields=["user", "segment"], name="membership_user")]

    def __str__(self) -> str:
        return f"{self.user_id} in {self.segment_id}"


class Condition(models.Model):
    """`field operator value`; the value is text: comma-separated for 'in' and 'between'."""

    class Operator(models.TextChoices):
        EQUALS = "equals", "equals"
        NOT_EQUALS = "not_equals", "does not equal"
        IN = "in", "is one of"
        CONTAINS = "contains", "contains"
        LT = "lt", "<"
        GT = "gt", ">"
        BETWEEN = "between", "between"

    field = models.CharField(
        max_length=100,
        help_text="An item field (categories, tags, price, available, published_at, title, "
        "item_id) or attribute (e.g. year); for segments: recency_days, frequency_30d, "
        "frequency_90d, events_total, conversions, or a user attribute.",
    )
    operator = models.CharField(max_length=10, choices=Operator)
    value = models.CharField(max_length=500, blank=True)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{self.field} {self.get_operator_display()} {self.value}"


class SegmentCondition(Condition):
    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="conditions")


class Rule(models.Model):
    """A marketer's rule on a placement's lists, for everyone or for one segment."""

    class Kind(models.TextChoices):
        EXCLUDE = "exclude", "exclude matching items"
        INCLUDE_ONLY = "include_only", "include only matching items"
        BOOST = "boost", "boost matching items (× multiplier)"
        BURY = "bury", "bury matching items (× multiplier)"
        PIN = "pin", "pin an item at a position"
        CAP_PER_CATEGORY = "cap_per_category", "at most N items per category"
        FRESHNESS_BOOST = "freshness_boost", "boost items published in the last N days"
        EXCLUDE_CONSUMED = "exclude_consumed", "exclude what the user already consumed"
        EXCLUDE_RECENTLY_SENT = "exclude_recently_sent", "exclude what the last N bulletins sent"

    placement = models.ForeignKey(Placement, on_delete=models.CASCADE, related_name="rules")
    segment = models.ForeignKey(
        Segment,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="rules",
        help_text="Empty: the rule applies to everyone.",
    )
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=30, choices=Kind)
    multiplier = models.FloatField(
        null=True, blank=True, help_text="Boost and freshness: above 1. Bury: between 0 and 1."
    )
    pin_item = models.ForeignKey(
        Item, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    position = models.PositiveSmallIntegerField(null=True, blank=True, help_text="Pin: 1 = first.")
    cap = models.PositiveSmallIntegerField(null=True, blank=True, help_text="Items per category.")
    days = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        help_text="Freshness: days since publication. Recently sent: how many bulletins back.",
    )
    priority = models.IntegerField(default=100, help_text="Lower runs first and wins conflicts.")
    starts_at = models.DateTimeField(null=True, blank=True)
    ends_at = models.DateTimeField(null=True, blank=True)
    is_active = models.BooleanField(default=True)
    problem = models.CharField(
        max_length=500,
        blank=True,
        editable=False,
        help_text="Why serving skips this rule (set when the catalogue no longer fits it).",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["placement", "priority", "pk"]
        indexes = [models.Index(fields=["placement", "is_active"], name="rule_placement_active")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(starts_at__isnull=True)
                | models.Q(ends_at__isnull=True)
                | models.Q(ends_at__gt=models.F("starts_at")),
                name="rule_window_ends_after_start",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class RuleCondition(Condition):
    rule = models.ForeignKey(Rule, on_delete=models.CASCADE, related_name="conditions")


class RecommendationSource(models.TextChoices):
    IN_HOUSE = "inhouse", "in-house"
    PERSONALIZE = "personalize", "Amazon Personalize"


class ModelVersion(models.Model):
    """One trained model: its parameters, how it did on a time-based holdout, its artifact."""

    Source = RecommendationSource

    class Status(models.TextChoices):
        TRAINING = "training", "training"
        ACTIVE = "active", "active"
        READY = "ready", "ready (not active)"
        REJECTED = "rejected", "rejected (worse than the active version)"
        FAILED = "failed", "failed"

    source = models.CharField(max_length=20, choices=Source, default=Source.IN_HOUSE)
    status = models.CharField(max_length=10, choices=Status, default=Status.TRAINING)
    is_active = models.BooleanField(default=False)
    params = models.JSONField(default=dict, blank=True)
    metrics = models.JSONField(default=dict, blank=True, help_text="On the time-based holdout.")
    baseline_metrics = models.JSONField(
        default=dict, blank=True, help_text="Popularity on the same holdout."
    )
    data_size = models.JSONField(default=dict, blank=True)
    duration_seconds = models.FloatField(null=True, blank=True)
    artifact = models.CharField(max_length=1000, blank=True)
    decision = models.TextField(blank=True, help_text="Why it was or was not activated.")
    activations = models.JSONField(
        default=list,
        blank=True,
        editable=False,
        help_text="Every time it was made active: when, and why (by training or by whom).",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    activated_at = models.DateTimeField(null=True, blank=True)
    last_interaction_pk = models.PositiveBigIntegerField(
        null=True,
        blank=True,
        editable=False,
        help_text=(
            "The newest interaction when training read them; later ones are not in the model."
        ),
    )

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["source"],
                condition=models.Q(is_active=True),
                name="modelversion_one_active_per_source",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_source_display()} model #{self.pk} ({self.status})"


class RecommendationSet(models.Model):
    """The current list for one user, placement and source, as served and sent."""

    Source = RecommendationSource

    user = models.ForeignKey(EndUser, on_delete=models.CASCADE, related_name="recommendation_sets")
    placement = models.ForeignKey(Placement, on_delete=models.CASCADE, related_name="+")
    source = models.CharField(max_length=20, choices=Source, default=Source.IN_HOUSE)
    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    items = models.JSONField(
        default=list, help_text="[{item_id, score, reason, because_item_id}] in rank order."
    )
    computed_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "placement", "source"], name="recommendationset_unique"
            ),
        ]
        indexes = [models.Index(fields=["placement", "computed_at"], name="recset_placement_time")]

    def __str__(self) -> str:
        return f"{self.placement_id}/{self.source} for {self.user_id}"


class RecommendationRun(models.Model):
    """One batch computation of every user's lists, fanned out over user shards."""

    class Status(models.TextChoices):
        RUNNING = "running", "running"
        DONE = "done", "done"
        FAILED = "failed", "failed"

    model_version = models.ForeignKey(ModelVersion, on_delete=models.SET_NULL, null=True)
    status = models.CharField(max_length=10, choices=Status, default=Status.RUNNING)
    shards = models.PositiveIntegerField(default=0)
    shards_done = models.PositiveIntegerField(default=0)
    completed_shards = models.JSONField(
        default=list, blank=True, editable=False, help_text="First user pk of each done shard."
    )
    shard_bounds = models.JSONField(
        default=list, blank=True, editable=False, help_text="[first, last] user pk of each shard."
    )
    users = models.PositiveIntegerField(default=0)
    lists_written = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(auto_now_add=True)
    heartbeat_at = models.DateTimeField(
        null=True, blank=True, help_text="When a shard last reported; beat resumes a silent run."
    )
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True, help_text="Why the run failed.")

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"Recommendation run #{self.pk} ({self.status})"


class PersonalizeRun(models.Model):
    """One pass of the Amazon Personalize path, advanced step by step by a Celery task that
    re-checks Personalize's jobs with a countdown (no worker sleeps while a job runs)."""

    class Step(models.TextChoices):
        EXPORT = "export", "exporting to S3"
        IMPORTING = "importing", "dataset import jobs"
        TRAINING = "training", "training a solution version"
        INFERRING = "inferring", "batch inference"
        DONE = "done", "done"

    class Status(models.TextChoices):
        RUNNING = "running", "running"
        DONE = "done", "done"
        FAILED = "failed", "failed (in-house lists keep serving)"

    status = models.CharField(max_length=10, choices=Status, default=Status.RUNNING)
    step = models.CharField(max_length=10, choices=Step, default=Step.EXPORT)
    recipe = models.CharField(max_length=100)
    folder = models.CharField(max_length=1000, help_text="s3:// folder of this run's files.")
    arns = models.JSONField(default=dict, blank=True)
    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    message = models.TextField(blank=True)
    line_errors = models.JSONField(default=list, blank=True)
    counts = models.JSONField(default=dict, blank=True)
    started_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]
        verbose_name = "Personalize run"

    def __str__(self) -> str:
        return f"Personalize run #{self.pk} ({self.get_step_display()}, {self.status})"
