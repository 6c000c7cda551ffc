from collections import Counter
from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models
from django.db.models import QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
)
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from recommendations.models import (
    ApiKey,
    EndUser,
    EventType,
    Interaction,
    Item,
    ModelVersion,
    PersonalizeRun,
    Placement,
    PlacementVariant,
    RecommendationRun,
    RecommendationSet,
    Rule,
    RuleCondition,
    Segment,
    SegmentCondition,
)
from recommendations.services.api_keys import api_key_issue, api_keys_revoke, widget_snippet
from recommendations.services.comparison import NothingToCompare, sources_compare
from recommendations.services.erasure import users_forget
from recommendations.services.placements import (
    placement_rule_conflicts,
    rule_catalogue_check,
    rule_to_engine,
)
from recommendations.services.preview import PreviewError, placement_preview
from recommendations.services.rules import (
    condition_to_engine,
    item_condition_field_check,
    segment_condition_field_check,
)
from recommendations.services.training import TrainingError, model_version_activate
from recommendations.tasks import recommendations_compute_all_task, segments_refresh_task
from recsite.admin_csv import csv_response
from recsite.admin_forms import ArmsFormSet

FORGET_AT_ONCE = 100


@admin.register(EndUser)
class EndUserAdmin(admin.ModelAdmin):
    list_display = [
        "external_id",
        "email",
        "email_opt_in",
        "personalization_opt_out",
        "is_anonymous",
        "created_at",
    ]
    list_filter = [
        "email_opt_in",
        "personalization_opt_out",
        "is_anonymous",
        "created_at",
        ("segment_memberships__segment", admin.RelatedOnlyFieldListFilter),
    ]
    search_fields = ["=external_id", "email"]
    readonly_fields = ["created_at", "updated_at"]
    show_full_result_count = False
    actions = ["forget"]

    @admin.action(description="Forget selected users (erase personal data)", permissions=["delete"])
    def forget(self, request: HttpRequest, queryset: QuerySet[EndUser]):
        """Asks first (the page lists the users and what goes), then erases each user as
        `manage.py forget_user` does. More than FORGET_AT_ONCE users: use the command."""
        count = queryset.count()
        if count > FORGET_AT_ONCE:
            self.message_user(
                request,
                f"Select at most {FORGET_AT_ONCE} users, or use manage.py forget_user.",
                messages.ERROR,
            )
            return None
        if request.POST.get("confirmed") != "yes":
            context = {
                **self.admin_site.each_context(request),
                "title": f"Forget {count} user{'s' if count != 1 else ''}?",
                "opts": self.model._meta,
                "users": list(queryset.order_by("pk")),
                "action_checkbox_name": ACTION_CHECKBOX_NAME,
            }
            return TemplateResponse(request, "admin/recommendations/enduser/forget.html", context)
        reports = users_forget(users=queryset)
        removed = Counter()
        for report in reports:
            removed.update(report.removed)
        self.message_user(
            request,
            f"Forgot {len(reports)} user(s): {removed['recommendations.Interaction']} events, "
            f"{removed['bulletins.Delivery']} emails, {removed['bulletins.Click']} clicks and "
            "the rest of their data are gone; reports keep their totals.",
        )
        return None


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin):
    list_display = ["external_id", "title", "available", "price", "published_at", "updated_at"]
    list_filter = ["available", "published_at"]
    search_fields = ["=external_id", "title", "description"]
    date_hierarchy = "published_at"
    readonly_fields = ["created_at", "updated_at"]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    show_full_result_count = False


@admin.register(EventType)
class EventTypeAdmin(admin.ModelAdmin):
    list_display = ["name", "weight", "value_mode", "is_conversion", "description"]
    list_editable = ["weight", "value_mode", "is_conversion"]
    search_fields = ["name"]


@admin.register(Interaction)
class InteractionAdmin(admin.ModelAdmin):
    list_display = ["timestamp", "user", "event_type", "item", "event_value", "source"]
    list_filter = ["event_type", "source", "timestamp"]
    list_select_related = ["user", "item", "event_type"]
    search_fields = ["=user__external_id", "=item__external_id", "=event_id"]
    raw_id_fields = ["user", "item"]
    date_hierarchy = "timestamp"
    readonly_fields = ["received_at"]
    show_full_result_count = False


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "prefix", "is_active", "created_at", "last_used_at"]
    list_filter = ["kind", "is_active"]
    search_fields = ["name", "prefix"]
    readonly_fields = ["prefix", "embed_snippet", "created_at", "last_used_at"]
    actions = ["revoke"]

    def get_readonly_fields(self, request: HttpRequest, obj: ApiKey | None = None):
        return [*self.readonly_fields, "kind"] if obj else self.readonly_fields

    @admin.display(description="Embed the widget")
    def embed_snippet(self, obj: ApiKey) -> str:
        if obj.kind != ApiKey.Kind.PUBLIC or not obj.published_key:
            return "—"
        return format_html(
            "<pre>{}</pre><div class='help'>Paste the script once per page and a container "
            "where the list goes; see docs/WIDGET.md.</div>",
            widget_snippet(api_key=obj.published_key),
        )

    def save_model(self, request: HttpRequest, obj: ApiKey, form, change: bool) -> None:
        if not change:
            raw_key = api_key_issue(obj)
            if obj.kind == ApiKey.Kind.SECRET:
                messages.warning(
                    request,
                    f"The key for “{obj.name}” is {raw_key} — copy it now: it is stored hashed "
                    "and cannot be shown again.",
                )
            else:
                messages.success(
                    request,
                    f"The public key for “{obj.name}” is {raw_key}; its page shows it with the "
                    "snippet that embeds the widget.",
                )
        super().save_model(request, obj, form, change)

    @admin.action(description="Revoke the selected keys", permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        revoked = api_keys_revoke(keys=queryset)
        self.message_user(request, f"Revoked {revoked} key(s).")


class RuleInline(admin.TabularInline):
    model = Rule
    fields = ["name", "kind", "segment", "priority", "starts_at", "ends_at", "is_active"]
    readonly_fields = fields
    extra = 0
    show_change_link = True
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False  # rules are added on their own page, where their conditions are


class PlacementArmsFormSet(ArmsFormSet):
    noun = "Arm"
    control_required = True  # the widget engagement report measures every arm against it


class PlacementVariantInline(admin.TabularInline):
    """The placement's experiment arms: visitors split by a stable hash of placement and
    visitor, each arm served from its source (see the widget engagement report)."""

    model = PlacementVariant
    formset = PlacementArmsFormSet
    extra = 0
    fields = ["name", "share", "source", "is_control"]
    verbose_name = "experiment arm"
    verbose_name_plural = "experiment arms (none: every visitor gets the placement's source)"


@admin.register(Placement)
class PlacementAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "strategy", "source", "count", "is_active", "preview_link"]
    list_filter = ["strategy", "source", "is_active"]
    search_fields = ["slug", "name"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [PlacementVariantInline, RuleInline]

    def get_urls(self):
        preview = self.admin_site.admin_view(self.preview_view)
        compare = self.admin_site.admin_view(self.compare_view)
        return [
            path("<path:object_id>/preview/", preview, name="recommendations_placement_preview"),
            path("<path:object_id>/compare/", compare, name="recommendations_placement_compare"),
            *super().get_urls(),
        ]

    @admin.display(description="preview")
    def preview_link(self, placement: Placement) -> str:
        preview = reverse("admin:recommendations_placement_preview", args=[placement.pk])
        compare = reverse("admin:recommendations_placement_compare", args=[placement.pk])
        engagement = reverse("admin:bulletins_widgetengagement_change", args=[placement.pk])
        return format_html(
            '<a href="{}">Preview</a> · <a href="{}">In-house vs Personalize</a> · '
            '<a href="{}">Widget engagement</a>',
            preview,
            compare,
            engagement,
        )

    def compare_view(self, request: HttpRequest, object_id: str):
        placement = self.get_object(request, object_id)
        if placement is None or not self.has_view_permission(request, placement):
            raise PermissionDenied
        sample = request.GET.get("sample", "").strip()
        comparison, error = None, None
        try:
            comparison = sources_compare(
                placement=placement, sample=int(sample) if sample.isdigit() else None
            )
        except NothingToCompare as failure:
            error = str(failure)
        if comparison and request.GET.get("format") == "csv":
            return csv_response(
                f"{placement.slug}-inhouse-vs-personalize.csv",
                comparison.report.to_rows(per_user=True),
            )
        context = {
            **self.admin_site.each_context(request),
            "title": f"In-house vs Amazon Personalize: {placement}",
            "opts": self.model._meta,
            "placement": placement,
            "comparison": comparison,
            "summary": [
                (name, value)
                for name, value in (comparison.report.summary.items() if comparison else [])
                if isinstance(value, int | float)
            ],
            "sample": sample,
            "error": error,
        }
        return TemplateResponse(request, "admin/recommendations/placement/compare.html", context)

    def preview_view(self, request: HttpRequest, object_id: str):
        placement = self.get_object(request, object_id)
        if placement is None or not self.has_view_permission(request, placement):
            raise PermissionDenied
        user_id = request.GET.get("user", "").strip()
        item_id = request.GET.get("item", "").strip() or None
        preview, error = None, None
        if user_id:
            try:
                preview = placement_preview(
                    placement=placement, user_external_id=user_id, item_id=item_id
                )
            except PreviewError as failure:
                error = str(failure)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Preview: {placement}",
            "opts": self.model._meta,
            "original": placement,
            "placement": placement,
            "user_id": user_id,
            "item_id": item_id or "",
            "preview": preview,
            "error": error,
        }
        return TemplateResponse(request, "admin/recommendations/placement/preview.html", context)


class RuleConditionFormSet(BaseInlineFormSet):
    """Checks the whole rule, its conditions included, against the placement's other rules."""

    def clean(self) -> None:
        super().clean()
        rule = self.instance
        if any(form.errors for form in self.forms) or not rule.placement_id:
            return
        forms_and_conditions = [
            (
                f,
                RuleCondition(
                    field=f.cleaned_data["field"],
                    operator=f.cleaned_data["operator"],
                    value=f.cleaned_data.get("value", ""),
                ),
            )
            for f in self.forms
            if f.cleaned_data and not f.cleaned_data.get("DELETE")
        ]
        checked = True
        for form, condition in forms_and_conditions:
            try:
                rule_catalogue_check(rule_to_engine(rule, [condition]))
            except ValidationError as error:
                form.add_error("value", error)
                checked = False
        if not checked:
            return
        engine_rule = rule_to_engine(rule, [c for _, c in forms_and_conditions])
        conflicts = placement_rule_conflicts(rule.placement, engine_rule)
        if conflicts:
            raise ValidationError(["This rule contradicts another one:", *conflicts])


class RuleConditionInline(admin.TabularInline):
    model = RuleCondition
    formset = RuleConditionFormSet
    extra = 1

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        formset.form = _condition_form(formset.form, item_fields=True)
        return formset


_RULE_FIELDS = {
    "placement",
    "segment",
    "name",
    "kind",
    "multiplier",
    "pin_item",
    "position",
    "cap",
    "days",
    "priority",
    "starts_at",
    "ends_at",
    "is_active",
}


class RuleForm(forms.ModelForm):
    class Meta:
        model = Rule
        fields = sorted(_RULE_FIELDS)

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        rule = Rule(**{k: v for k, v in cleaned.items() if k in _RULE_FIELDS})
        try:
            rule_to_engine(rule, conditions=[])
        except ValidationError as error:
            raise ValidationError(error.messages) from None
        return cleaned


@admin.register(Rule)
class RuleAdmin(admin.ModelAdmin):
    form = RuleForm
    list_display = [
        "name",
        "placement",
        "kind",
        "segment",
        "priority",
        "starts_at",
        "ends_at",
        "is_active",
        "problem",
    ]
    list_filter = ["placement", "kind", "is_active", "segment"]
    readonly_fields = ["problem"]
    search_fields = ["name"]
    autocomplete_fields = ["pin_item"]
    inlines = [RuleConditionInline]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "placement",
                    "name",
                    "kind",
                    "segment",
                    "priority",
                    "is_active",
                    "problem",
                ]
            },
        ),
        (
            "Settings for the kind",
            {
                "fields": ["multiplier", "pin_item", "position", "cap", "days"],
                "description": "Boost, bury, freshness: multiplier. Pin: item and position. "
                "Cap: items per category. Freshness: days since publication. Recently sent: "
                "how many bulletins back.",
            },
        ),
        ("When", {"fields": ["starts_at", "ends_at"]}),
    ]


PERSONALIZE_VERSION_NOTE = (
    "{version} is an Amazon Personalize solution version: AWS trained it, and it serves through "
    "the lists its batch inference job stored (manage.py personalize) or through a campaign "
    "(a placement whose source is Personalize). Only in-house versions are activated here."
)


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = [
        "__str__",
        "source",
        "status",
        "is_active",
        "ndcg",
        "precision",
        "popularity_ndcg",
        "interactions",
        "duration_seconds",
        "created_at",
    ]
    list_filter = ["source", "status", "is_active"]
    readonly_fields = [
        *(f.name for f in ModelVersion._meta.fields if f.name not in ("id", "activations")),
        "activation_history",
    ]
    actions = ["activate"]

    @admin.display(description="activation history")
    def activation_history(self, version: ModelVersion) -> str:
        if not version.activations:
            return "never active"
        return format_html_join(
            "", "<div>{}: {}</div>", ((a["at"], a["why"]) for a in version.activations)
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # versions come from training (manage.py train, or the scheduled task)

    def get_actions(self, request: HttpRequest):
        actions = super().get_actions(request)
        if request.GET.get("source__exact") == ModelVersion.Source.PERSONALIZE:
            actions.pop("activate", None)  # nothing here to activate: see the note
        return actions

    @admin.display(description="nDCG@k")
    def ndcg(self, version: ModelVersion) -> str:
        return _metric(version.metrics, "ndcg_at_k")

    @admin.display(description="Precision@k")
    def precision(self, version: ModelVersion) -> str:
        return _metric(version.metrics, "precision_at_k")

    @admin.display(description="popularity nDCG@k")
    def popularity_ndcg(self, version: ModelVersion) -> str:
        return _metric(version.baseline_metrics, "ndcg_at_k")

    @admin.display(description="interactions")
    def interactions(self, version: ModelVersion) -> str:
        return f"{version.data_size.get('interactions', 0):,}"

    @admin.action(
        description="Activate (roll back or forward to) the selected version",
        permissions=["change"],
    )
    def activate(
        self, request: HttpRequest, queryset: QuerySet[ModelVersion]
    ) -> HttpResponse | None:
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one version.", messages.ERROR)
            return
        version = queryset.get()
        if (
            version.source == ModelVersion.Source.IN_HOUSE
            and request.POST.get("confirmed") != "yes"
        ):
            active = ModelVersion.objects.filter(source=version.source, is_active=True).first()
            context = {
                **self.admin_site.each_context(request),
                "title": f"Make {version} the active model?",
                "opts": self.model._meta,
                "version": version,
                "active": active,
                "action_checkbox_name": ACTION_CHECKBOX_NAME,
            }
            return TemplateResponse(
                request, "admin/recommendations/modelversion/activate.html", context
            )
        if version.source != ModelVersion.Source.IN_HOUSE:
            self.message_user(
                request, PERSONALIZE_VERSION_NOTE.format(version=version), messages.WARNING
            )
            return
        try:
            model_version_activate(version=version, reason=f"activated by {request.user} in admin")
        except TrainingError as error:
            self.message_user(request, str(error), messages.ERROR)
            return
        recommendations_compute_all_task.delay_on_commit()
        self.message_user(
            request, f"{version} is active; every user's lists are being recomputed with it."
        )


def _metric(metrics: dict, name: str) -> str:
    value = metrics.get(name)
    return "—" if value is None else f"{value:.4f}"


@admin.register(RecommendationSet)
class RecommendationSetAdmin(admin.ModelAdmin):
    list_display = ["user", "placement", "source", "model_version", "size", "computed_at"]
    list_filter = ["placement", "source"]
    list_select_related = ["user", "placement", "model_version"]
    search_fields = ["=user__external_id"]
    raw_id_fields = ["user"]
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.display(description="items")
    def size(self, recommendation_set: RecommendationSet) -> int:
        return len(recommendation_set.items)


@admin.register(RecommendationRun)
class RecommendationRunAdmin(admin.ModelAdmin):
    list_display = [
        "__str__",
        "model_version",
        "status",
        "progress",
        "users",
        "lists_written",
        "started_at",
        "finished_at",
        "error",
    ]
    list_filter = ["status"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.display(description="shards done")
    def progress(self, run: RecommendationRun) -> str:
        return f"{run.shards_done} / {run.shards}"


class SegmentConditionInline(admin.TabularInline):
    model = SegmentCondition
    extra = 1

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        formset.form = _condition_form(formset.form)
        return formset


def _condition_form(base, item_fields: bool = False):
    """A condition form that refuses values the engine could not compare, naming the field;
    for rules (`item_fields`), also fields that no item has."""

    class ConditionForm(base):
        def clean(self):
            cleaned = super().clean()
            if cleaned.get("field") and cleaned.get("operator") and not cleaned.get("DELETE"):
                condition_to_engine(
                    self.instance.__class__(
                        field=cleaned["field"],
                        operator=cleaned["operator"],
                        value=cleaned.get("value", ""),
                    )
                )
                if item_fields:
                    item_condition_field_check(cleaned["field"])
                else:
                    segment_condition_field_check(cleaned["field"])
            return cleaned

    return ConditionForm


@admin.register(Segment)
class SegmentAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "kind", "size", "summary", "refreshed_at"]
    list_filter = ["kind"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    # `member_list`, not the model's `members`: that would print every member on the page.
    readonly_fields = ["size", "member_list", "profile_table", "refreshed_at"]
    inlines = [SegmentConditionInline]
    actions = ["refresh"]

    def get_readonly_fields(self, request: HttpRequest, obj: Segment | None = None):
        if obj and obj.kind == Segment.Kind.LEARNED:
            return [*self.readonly_fields, "name", "slug", "kind"]
        return self.readonly_fields

    def get_inlines(self, request: HttpRequest, obj: Segment | None = None):
        return [] if obj and obj.kind == Segment.Kind.LEARNED else self.inlines

    def get_prepopulated_fields(self, request: HttpRequest, obj: Segment | None = None):
        # A learned segment's slug is read-only: nothing to fill in from its name.
        if obj and obj.kind == Segment.Kind.LEARNED:
            return {}
        return super().get_prepopulated_fields(request, obj)

    @admin.display(description="profile")
    def summary(self, segment: Segment) -> str:
        profile = segment.profile
        if "problem" in profile:
            return profile["problem"]
        if "conditions" in profile:
            return " and ".join(profile["conditions"]) or "everyone"
        if "top_categories" in profile:
            return (
                f"{profile['share']:.0%} of users; top: {', '.join(profile['top_categories'])}; "
                f"median {profile.get('median_recency_days', 0):.0f} days since last event"
            )
        return "retired: fewer learned segments now" if "retired" in profile else "—"

    @admin.display(description="members")
    def member_list(self, segment: Segment) -> str:
        """The members, paged, searchable and filterable, in the end users' own list."""
        if segment.pk is None:
            return "—"
        users = reverse("admin:recommendations_enduser_changelist")
        query = urlencode({"segment_memberships__segment__id__exact": segment.pk})
        return format_html(
            '<a href="{}?{}">See the {} members</a>', users, query, f"{segment.size:,}"
        )

    @admin.display(description="profile")
    def profile_table(self, segment: Segment) -> str:
        return format_html_join(
            "",
            "<div><strong>{}</strong>: {}</div>",
            ((key, value) for key, value in segment.profile.items()),
        )

    @admin.action(description="Refresh the members of every segment now")
    def refresh(self, request: HttpRequest, queryset: QuerySet[Segment]) -> None:
        segments_refresh_task.delay_on_commit()
        self.message_user(request, "Segments are being refreshed.")

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None):
        extra_context = {
            **(extra_context or {}),
            "can_refresh_segments": self.has_change_permission(request),
        }
        return super().changelist_view(request, extra_context)

    def get_urls(self):
        refresh_all = self.admin_site.admin_view(self.refresh_all_view)
        return [
            path("refresh/", refresh_all, name="recommendations_segment_refresh_all"),
            *super().get_urls(),
        ]

    def refresh_all_view(self, request: HttpRequest) -> HttpResponse:
        """The changelist's button: works with no segment yet (learned ones are made by it),
        where an action needs a selection."""
        if not self.has_change_permission(request):
            raise PermissionDenied
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        segments_refresh_task.delay_on_commit()
        self.message_user(
            request,
            "Segments are being refreshed: rule segments from their conditions, learned ones "
            "from behaviour. Reload this page in a minute.",
        )
        return HttpResponseRedirect(reverse("admin:recommendations_segment_changelist"))


@admin.register(PersonalizeRun)
class PersonalizeRunAdmin(admin.ModelAdmin):
    list_display = ["__str__", "recipe", "step", "status", "message", "started_at", "finished_at"]
    list_filter = ["status", "step"]
    readonly_fields = [field.name for field in PersonalizeRun._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # started by `manage.py personalize` or its schedule
