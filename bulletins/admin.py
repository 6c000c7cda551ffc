import os
import re
import uuid
from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

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
    WidgetEngagement,
)
from bulletins.report_charts import daily_chart, rate_chart, rates_text, uplift_summary
from bulletins.services.audience import send_forecast
from bulletins.services.preview import (
    PreviewError,
    bulletin_preview,
    bulletin_templates_check,
    bulletin_test_send,
)
from bulletins.services.reports import (
    WIDGET_MIN_DETECTABLE_UPLIFT,
    experiment_report,
    report_rows,
    widget_report,
    widget_report_rows,
)
from bulletins.services.runs import BulletinNotReady, bulletin_check
from bulletins.services.schedules import bulletin_schedule_sync
from bulletins.tasks import bulletin_run_resume_task, bulletin_send_task
from recsite.admin_csv import csv_response
from recsite.admin_forms import ArmsFormSet

SEND_FORM_KEY = re.compile(r"admin:[0-9a-f]{32}")


@admin.register(PlatformConnection)
class PlatformConnectionAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "credential_env", "credential_set"]
    list_filter = ["kind"]

    @admin.display(description="secret in environment", boolean=True)
    def credential_set(self, connection: PlatformConnection) -> bool | None:
        if not connection.credential_env:
            return None
        return bool(os.environ.get(connection.credential_env))


class BulletinBlockInline(admin.TabularInline):
    model = BulletinBlock
    extra = 0
    min_num = 1
    fields = ["position", "title", "placement", "count", "skip_sent_in_last"]

    def get_formset(self, request, obj=None, **kwargs):
        # min_num alone only shows one empty form: a bulletin could still be saved (or its
        # last block deleted) with none, and then never be sent.
        return super().get_formset(request, obj, validate_min=True, **kwargs)


class VariantInline(admin.TabularInline):
    model = Variant
    formset = ArmsFormSet
    extra = 0
    fields = ["name", "share", "source", "subject_template", "is_control"]


def _arm_table(arms) -> tuple[list[dict], dict]:
    """Per experiment arm: the rows for the table, and the CTR chart."""
    rows = [
        {
            "arm": arm,
            "rates": rates_text(arm.counts),
            "ctr_uplift": uplift_summary(arm.ctr_uplift),
            "conversion_uplift": uplift_summary(arm.conversion_uplift),
        }
        for arm in arms
    ]
    return rows, rate_chart([(arm.name, arm.counts.clickers, arm.counts.delivered) for arm in arms])


def _position_table(by_position) -> tuple[list[dict], dict]:
    """Per position: the rows for the table and the CTR chart, each row with its bar."""
    chart = rate_chart([(f"#{position}", c.clickers, c.delivered) for position, c in by_position])
    rows = [
        {"position": position, "counts": counts, "rates": rates_text(counts), "bar": bar}
        for (position, counts), bar in zip(by_position, chart["bars"], strict=True)
    ]
    return rows, chart


class BulletinForm(forms.ModelForm):
    """Refuses a subject or layout that would fail every delivery, on its field."""

    def clean(self):
        cleaned = super().clean()
        if "subject_template" in cleaned:
            problems = bulletin_templates_check(
                subject_template=cleaned["subject_template"],
                layout_mjml=cleaned.get("layout_mjml", ""),
            )
            for field_name, problem in problems.items():
                self.add_error(field_name, problem)
        return cleaned


@admin.register(Bulletin)
class BulletinAdmin(admin.ModelAdmin):
    form = BulletinForm
    list_display = [
        "name",
        "slug",
        "schedule_summary",
        "schedule_enabled",
        "platform",
        "actions_links",
    ]
    readonly_fields = ["schedule_summary"]
    list_filter = ["schedule_enabled", "platform"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    filter_horizontal = ["segments"]
    inlines = [BulletinBlockInline, VariantInline]
    fieldsets = [
        (None, {"fields": ["name", "slug", "subject_template", "from_email"]}),
        ("Layout", {"fields": ["layout_mjml"], "classes": ["collapse"]}),
        ("Audience", {"fields": ["segments"]}),
        (
            "Delivery",
            {
                "fields": [
                    "platform",
                    "send_frequency",
                    ("send_time", "send_weekday"),
                    "send_cron",
                    "send_timezone",
                    "schedule_enabled",
                    "schedule_summary",
                ],
                "description": "When the schedule is on, the bulletin is sent at these times. "
                "Every day and every week use the time (and the day); a cron expression "
                "gives anything else, at most once an hour.",
            },
        ),
    ]

    @admin.display(description="schedule")
    def schedule_summary(self, bulletin: Bulletin) -> str:
        return bulletin.schedule_summary

    def save_related(self, request, form, formsets, change) -> None:
        super().save_related(request, form, formsets, change)
        bulletin_schedule_sync(bulletin=form.instance)

    def get_urls(self):
        preview = self.admin_site.admin_view(self.preview_view)
        send = self.admin_site.admin_view(self.send_view)
        report = self.admin_site.admin_view(self.report_view)
        return [
            path("<path:object_id>/preview/", preview, name="bulletins_bulletin_preview"),
            path("<path:object_id>/send/", send, name="bulletins_bulletin_send"),
            path("<path:object_id>/report/", report, name="bulletins_bulletin_report"),
            *super().get_urls(),
        ]

    @admin.display(description="")
    def actions_links(self, bulletin: Bulletin) -> str:
        return format_html(
            '<a href="{}">Preview &amp; test</a> · <a href="{}">Send now</a> · '
            '<a href="{}">Experiment report</a>',
            reverse("admin:bulletins_bulletin_preview", args=[bulletin.pk]),
            reverse("admin:bulletins_bulletin_send", args=[bulletin.pk]),
            reverse("admin:bulletins_bulletin_report", args=[bulletin.pk]),
        )

    def preview_view(self, request: HttpRequest, object_id: str):
        bulletin = self.get_object(request, object_id)
        if bulletin is None or not self.has_view_permission(request, bulletin):
            raise PermissionDenied
        user_id = (request.POST.get("user") or request.GET.get("user") or "").strip()
        variant_name = request.GET.get("variant", "").strip()
        preview, error = None, None
        if request.method == "POST" and request.POST.get("test_to"):
            if not self.has_change_permission(request, bulletin):
                raise PermissionDenied
            try:
                result = bulletin_test_send(
                    bulletin=bulletin,
                    user_external_id=user_id,
                    to_email=request.POST["test_to"].strip(),
                )
            except PreviewError as failure:
                error = str(failure)
            else:
                if result.status == "sent":
                    messages.success(request, f"Test email sent to {request.POST['test_to']}.")
                else:
                    error = f"Test send {result.status}: {result.error}"
        if user_id:
            try:
                preview = bulletin_preview(
                    bulletin=bulletin, user_external_id=user_id, variant_name=variant_name
                )
            except PreviewError as failure:
                error = error or str(failure)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Preview: {bulletin}",
            "opts": self.model._meta,
            "original": bulletin,
            "bulletin": bulletin,
            "user_id": user_id,
            "variant_name": variant_name,
            "variant_names": list(bulletin.variants.values_list("name", flat=True)),
            "preview": preview,
            "error": error,
            "can_send": self.has_change_permission(request, bulletin),
        }
        return TemplateResponse(request, "admin/bulletins/bulletin/preview.html", context)

    def send_view(self, request: HttpRequest, object_id: str):
        bulletin = self.get_object(request, object_id)
        if bulletin is None or not self.has_change_permission(request, bulletin):
            raise PermissionDenied
        change_url = reverse("admin:bulletins_bulletin_change", args=[bulletin.pk])
        try:
            bulletin_check(bulletin)
        except BulletinNotReady as failure:
            messages.error(request, str(failure))
            return HttpResponseRedirect(change_url)
        forecast = send_forecast(bulletin)
        repeat_refused = (
            request.method == "POST"
            and forecast.recent_run is not None
            and request.POST.get("confirm_repeat") != "yes"
        )
        if request.method == "POST" and not repeat_refused:
            # The form's key makes a double-submitted form start one run, not two.
            run_key = request.POST.get("run_key", "")
            if not SEND_FORM_KEY.fullmatch(run_key):
                run_key = ""
            transaction.on_commit(lambda: bulletin_send_task.delay(bulletin.pk, "admin", run_key))
            messages.success(
                request, f"{bulletin} is being sent; its run shows progress and counts."
            )
            runs = reverse("admin:bulletins_bulletinrun_changelist")
            return HttpResponseRedirect(f"{runs}?bulletin__id__exact={bulletin.pk}")
        context = {
            **self.admin_site.each_context(request),
            "title": f"Send {bulletin} now?",
            # A send held back for confirmation keeps its form's key: still one run at most.
            "run_key": posted_key
            if SEND_FORM_KEY.fullmatch(posted_key := request.POST.get("run_key", ""))
            else f"admin:{uuid.uuid4().hex}",
            "forecast": forecast,
            "repeat_refused": repeat_refused,
            "opts": self.model._meta,
            "original": bulletin,
            "bulletin": bulletin,
        }
        return TemplateResponse(request, "admin/bulletins/bulletin/send.html", context)

    def report_view(self, request: HttpRequest, object_id: str):
        bulletin = self.get_object(request, object_id)
        if bulletin is None or not self.has_view_permission(request, bulletin):
            raise PermissionDenied
        runs = list(bulletin.runs.order_by("-started_at"))
        chosen = request.GET.get("run", "")
        run = next((each for each in runs if str(each.pk) == chosen), None)
        if chosen and run is None:
            raise Http404(f"{bulletin} has no run {chosen!r}.")
        report = experiment_report(bulletin=bulletin, run=run)
        if request.GET.get("format") == "csv":
            header, *body = report_rows(report)
            which = f"run-{run.pk}" if run else "all-runs"
            return csv_response(
                f"{bulletin.slug}-report-{which}.csv",
                [dict(zip(header, row, strict=True)) for row in body],
            )
        arms, arm_chart = _arm_table(report.arms)
        positions, position_chart = _position_table(report.by_position)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Experiment report: {bulletin}",
            "opts": self.model._meta,
            "original": bulletin,
            "bulletin": bulletin,
            "report": report,
            "runs": runs,
            "run": run,
            "nothing_sent": not report.by_run,
            "arms": arms,
            "arm_chart": arm_chart,
            "positions": positions,
            "position_chart": position_chart,
            "by_run": [
                {"run": each, "counts": counts, "rates": rates_text(counts)}
                for each, counts in report.by_run
            ],
            "can_view_runs": request.user.has_perm("bulletins.view_bulletinrun"),
            "day_chart": daily_chart(report.by_day),
            "csv_query": f"run={run.pk}&format=csv" if run else "format=csv",
        }
        return TemplateResponse(request, "admin/bulletins/bulletin/report.html", context)


@admin.register(WidgetEngagement)
class WidgetEngagementAdmin(admin.ModelAdmin):
    """Each placement's website widget report: the list names the placements, and a
    placement's page is its report. Read-only: placements and their experiment arms are edited
    under Recommendations → Placements, and whoever may see those may see this."""

    PERIODS = {"7": 7, "30": 30, "90": 90, "365": 365, "all": None}
    DEFAULT_PERIOD = "30"

    list_display = ["name", "slug", "is_active", "arms"]
    list_filter = ["is_active"]
    search_fields = ["slug", "name"]

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).prefetch_related("variants")

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return super().has_view_permission(request, obj) or request.user.has_perm(
            "recommendations.view_placement"
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.display(description="experiment arms")
    def arms(self, placement: WidgetEngagement) -> str:
        return (
            ", ".join(
                f"{arm.name} {arm.share}%{' (control)' if arm.is_control else ''}"
                for arm in placement.variants.all()
            )
            or "—"
        )

    def changelist_view(self, request: HttpRequest, extra_context=None):
        title = "Widget engagement: choose a placement"
        return super().changelist_view(request, {"title": title, **(extra_context or {})})

    def change_view(self, request: HttpRequest, object_id: str, form_url="", extra_context=None):
        placement = self.get_object(request, object_id)
        if placement is None or not self.has_view_permission(request, placement):
            raise PermissionDenied
        period = request.GET.get("days", self.DEFAULT_PERIOD)
        if period not in self.PERIODS:
            raise Http404(f"No period {period!r}: use one of {', '.join(self.PERIODS)}.")
        asked = request.GET.get("uplift", "")  # percent, as a bulletin's field
        wanted = int(asked) if asked.isdigit() and 1 <= int(asked) <= 1000 else None
        report = widget_report(
            placement=placement,
            days=self.PERIODS[period],
            min_detectable_uplift=wanted / 100 if wanted else WIDGET_MIN_DETECTABLE_UPLIFT,
        )
        if request.GET.get("format") == "csv":
            header, *body = widget_report_rows(report)
            which = f"{period}-days" if self.PERIODS[period] else "all-time"
            return csv_response(
                f"{placement.slug}-widget-{which}.csv",
                [dict(zip(header, row, strict=True)) for row in body],
            )
        arms, arm_chart = _arm_table(report.arms)
        positions, position_chart = _position_table(report.by_position)
        query = {"days": period, **({"uplift": wanted} if wanted else {})}
        context = {
            **self.admin_site.each_context(request),
            "title": f"Widget engagement: {placement}",
            "opts": self.model._meta,
            "original": placement,
            "placement": placement,
            "report": report,
            "periods": [
                (key, f"last {key} days" if days else "all time")
                for key, days in self.PERIODS.items()
            ],
            "period": period,
            "uplift_percent": round(report.min_detectable_uplift * 100),
            "nothing_shown": not report.by_day,
            "arms": arms,
            "arm_chart": arm_chart,
            "positions": positions,
            "position_chart": position_chart,
            "day_chart": daily_chart(
                [(day, clicks, convs) for day, _, clicks, convs in report.by_day]
            ),
            "csv_query": urlencode({**query, "format": "csv"}),
            "can_edit_placement": request.user.has_perm("recommendations.change_placement"),
        }
        return TemplateResponse(request, "admin/bulletins/widgetengagement/report.html", context)


@admin.register(BulletinRun)
class BulletinRunAdmin(admin.ModelAdmin):
    list_display = [
        "pk",
        "bulletin",
        "status",
        "trigger",
        "started_at",
        "progress",
        "sent",
        "failed",
        "skipped",
        "fallback",
        "failure_reason",
    ]
    list_filter = ["status", "trigger", "bulletin"]
    actions = ["resume"]
    # In a marketer's words first; the machinery (shards, lease) folded away at the end.
    fieldsets = [
        (None, {"fields": ["bulletin", "status", "failure_reason", "progress", "trigger"]}),
        (
            "Emails",
            {
                "fields": [
                    "audience_size",
                    "to_send",
                    "sent",
                    "failed",
                    "skipped_not_opted_in_words",
                    "skipped_unsubscribed_words",
                    "skipped_no_email_words",
                    "skipped_no_items_words",
                    "cancelled_words",
                    "fallback_words",
                ]
            },
        ),
        ("When", {"fields": ["started_at", "finished_at"]}),
        (
            "Technical details",
            {"fields": ["run_key", "shards", "heartbeat_at", "error"], "classes": ["collapse"]},
        ),
    ]
    readonly_fields = [name for _, options in fieldsets for name in options["fields"]]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="progress")
    def progress(self, run: BulletinRun) -> str:
        """Live from the delivery rows (the run's own counts are refreshed per batch)."""
        settled = run.delivery_set.exclude(
            status__in=[Delivery.Status.PENDING, Delivery.Status.SENDING]
        ).count()
        total = run.deliveries or run.delivery_set.count()
        if run.status == BulletinRun.Status.PREPARING:
            share = len(run.prepared_shards) / run.shards if run.shards else 0
            return f"choosing each reader's items: {share:.0%} of the audience done"
        return f"{settled} of {total} emails handled (sent, failed or skipped)"

    @admin.display(description="why it failed")
    def failure_reason(self, run: BulletinRun) -> str:
        if run.status != BulletinRun.Status.FAILED:
            return ""
        return run.error or "no reason was recorded"

    @admin.display(description="audience")
    def audience_size(self, run: BulletinRun) -> int:
        return run.audience

    @admin.display(description="emails to send")
    def to_send(self, run: BulletinRun) -> int:
        return run.deliveries

    @admin.display(description="skipped: not opted in")
    def skipped_not_opted_in_words(self, run: BulletinRun) -> int:
        return run.skipped_not_opted_in

    @admin.display(description="skipped: unsubscribed or suppressed")
    def skipped_unsubscribed_words(self, run: BulletinRun) -> int:
        return run.skipped_unsubscribed

    @admin.display(description="skipped: no email address")
    def skipped_no_email_words(self, run: BulletinRun) -> int:
        return run.skipped_no_email

    @admin.display(description="skipped: no item to show")
    def skipped_no_items_words(self, run: BulletinRun) -> int:
        return run.skipped_no_items

    @admin.display(description="not sent: unsubscribed while the run was under way")
    def cancelled_words(self, run: BulletinRun) -> int:
        return run.cancelled

    @admin.display(description="filled in part from the placement's fallback")
    def fallback_words(self, run: BulletinRun) -> int:
        return run.fallback

    @admin.action(description="Resume: send what is pending, in doubt or retryable")
    def resume(self, request: HttpRequest, queryset) -> None:
        if not self.has_change_permission(request):
            raise PermissionDenied
        open_runs = queryset.filter(
            status__in=[BulletinRun.Status.PREPARING, BulletinRun.Status.SENDING]
        )
        for run in open_runs:
            transaction.on_commit(lambda pk=run.pk: bulletin_run_resume_task.delay(pk))
        self.message_user(request, f"{open_runs.count()} run(s) resumed.")


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ["pk", "run", "email", "variant", "status", "attempts", "message_id", "sent_at"]
    list_filter = ["status", "used_fallback", "run__bulletin"]
    search_fields = ["email", "user__external_id", "message_id"]
    list_select_related = ["run__bulletin", "variant"]
    raw_id_fields = ["run", "user"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(Unsubscribe)
class UnsubscribeAdmin(admin.ModelAdmin):
    list_display = ["user", "bulletin", "method", "created_at"]
    list_filter = ["method", "bulletin"]
    search_fields = ["user__external_id", "user__email"]
    raw_id_fields = ["user", "delivery"]


@admin.register(Click)
class ClickAdmin(admin.ModelAdmin):
    list_display = ["delivery", "position", "item", "created_at"]
    raw_id_fields = ["delivery", "item"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(Open)
class OpenAdmin(admin.ModelAdmin):
    list_display = ["delivery", "created_at"]
    raw_id_fields = ["delivery"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False
