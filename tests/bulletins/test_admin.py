"""The bulletin admin through the test client: the add form with its inlines, the schedule,
"Preview & test", "Send now", the runs, and what the Marketers role may do there."""

import pytest
from django.contrib.auth.models import Group, User
from django.urls import reverse
from django_celery_beat.models import PeriodicTask

from bulletins.models import (
    Bulletin,
    BulletinBlock,
    BulletinRun,
    Delivery,
    PlatformConnection,
    Variant,
)
from bulletins.services.runs import bulletin_run_start, bulletin_shard_prepare, run_shards
from bulletins.services.schedules import SCHEDULED_SEND_TASK
from recommendations.models import EndUser, Placement
from recommendations.roles import MARKETERS

pytestmark = pytest.mark.django_db

ADD_URL = "/admin/bulletins/bulletin/add/"


@pytest.fixture
def marketer_client(client):
    user = User.objects.create_user("mia", password="pw", is_staff=True)
    user.groups.add(Group.objects.get(name=MARKETERS))
    client.force_login(user)
    return client


@pytest.fixture(params=["superuser", "marketer"])
def staff_client(request):
    """The same behaviour for a superuser and for a member of Marketers."""
    fixture = "admin_client" if request.param == "superuser" else "marketer_client"
    return request.getfixturevalue(fixture)


def recipient(bulletin) -> EndUser:
    """A user a run would send to."""
    return (
        EndUser.objects.filter(is_anonymous=False, email_opt_in=True)
        .exclude(email="")
        .order_by("pk")
        .first()
    )


def preview_url(bulletin):
    return reverse("admin:bulletins_bulletin_preview", args=[bulletin.pk])


def send_url(bulletin):
    return reverse("admin:bulletins_bulletin_send", args=[bulletin.pk])


def add_form(*, variants=(), **fields):
    """The add form's POST: the bulletin, one block and `variants` (name, share, is_control),
    with both inlines' management forms."""
    data = {
        "name": "Morning picks",
        "slug": "morning",
        "subject_template": "{{ first_name|default:'Hi' }}, good morning",
        "from_email": "",
        "layout_mjml": "",
        "platform": "",
        "send_frequency": "none",
        "send_time": "08:00",
        "send_weekday": "1",
        "send_cron": "",
        "send_timezone": "UTC",
        "blocks-TOTAL_FORMS": "1",
        "blocks-INITIAL_FORMS": "0",
        "blocks-MIN_NUM_FORMS": "1",
        "blocks-MAX_NUM_FORMS": "1000",
        "blocks-0-position": "1",
        "blocks-0-title": "Picked for you",
        "blocks-0-placement": str(Placement.objects.get(slug="for-you").pk),
        "blocks-0-count": "3",
        "blocks-0-skip_sent_in_last": "1",
        "variants-TOTAL_FORMS": str(len(variants)),
        "variants-INITIAL_FORMS": "0",
        "variants-MIN_NUM_FORMS": "0",
        "variants-MAX_NUM_FORMS": "1000",
        "_save": "Save",
    }
    for index, (name, share, is_control) in enumerate(variants):
        data[f"variants-{index}-name"] = name
        data[f"variants-{index}-share"] = str(share)
        data[f"variants-{index}-source"] = Variant.Source.PLACEMENT
        data[f"variants-{index}-subject_template"] = ""
        if is_control:
            data[f"variants-{index}-is_control"] = "on"
    data.update(fields)
    return data


# Adding and saving


@pytest.mark.parametrize(
    ("field", "source", "message"),
    [
        ("subject_template", "{% if %}Hi", "invalid subject template"),
        ("subject_template", "{{ first_name|no_such_filter }}", "no_such_filter"),
        ("layout_mjml", "<mjml><mj-body>{% for item in %}</mj-body></mjml>", "invalid layout"),
    ],
)
def test_a_template_that_cannot_render_is_refused_on_its_field(
    staff_client, field, source, message
):
    response = staff_client.post(ADD_URL, {**add_form(), field: source})

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == [field] and message in errors[field][0]
    assert "sample reader" in errors[field][0]
    assert not Bulletin.objects.exists()


def test_add_form_creates_the_bulletin_with_its_block_and_variants(staff_client):
    response = staff_client.post(
        ADD_URL, add_form(variants=[("control", 50, True), ("trending", 50, False)])
    )

    assert response.status_code == 302
    bulletin = Bulletin.objects.get(slug="morning")
    block = BulletinBlock.objects.get(bulletin=bulletin)
    assert (block.title, block.placement.slug, block.count) == ("Picked for you", "for-you", 3)
    assert sorted(bulletin.variants.values_list("name", "share", "is_control")) == [
        ("control", 50, True),
        ("trending", 50, False),
    ]


def test_variant_shares_that_do_not_add_up_to_100_are_refused(admin_client):
    response = admin_client.post(ADD_URL, add_form(variants=[("a", 50, True), ("b", 30, False)]))

    assert response.status_code == 200
    assert "Variant shares add up to 80; they must add up to 100." in response.content.decode()
    assert not Bulletin.objects.exists()


def test_two_control_variants_are_refused(admin_client):
    response = admin_client.post(ADD_URL, add_form(variants=[("a", 50, True), ("b", 50, True)]))

    assert response.status_code == 200
    assert "Only one variant can be the control." in response.content.decode()
    assert not Bulletin.objects.exists()


def test_a_bulletin_without_a_block_is_refused(admin_client):
    data = add_form(**{"blocks-TOTAL_FORMS": "0"})

    response = admin_client.post(ADD_URL, data)

    assert response.status_code == 200
    assert "Please submit at least 1 form." in response.content.decode()
    assert not Bulletin.objects.exists()


DAILY_AT_7 = {"send_frequency": "daily", "send_time": "07:00", "schedule_enabled": "on"}


def test_saving_with_an_enabled_schedule_creates_its_periodic_task(staff_client):
    staff_client.post(ADD_URL, add_form(**DAILY_AT_7))

    bulletin = Bulletin.objects.get(slug="morning")
    task = PeriodicTask.objects.get(task=SCHEDULED_SEND_TASK)
    assert (bulletin.periodic_task, task.enabled) == (task, True)
    crontab = task.crontab
    assert (crontab.minute, crontab.hour, crontab.day_of_week) == ("0", "7", "*")
    assert bulletin.schedule_summary == "Every day at 07:00 (UTC)"


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"send_frequency": "cron", "send_cron": "* * * * *"}, "send_cron", "once an hour"),
        ({"send_frequency": "cron", "send_cron": "0 8 * *"}, "send_cron", "five parts"),
        ({"send_frequency": "cron", "send_cron": "0 25 * * *"}, "send_cron", "cannot run"),
        ({"send_frequency": "daily", "send_timezone": "Mars/Olympus"}, "send_timezone", "Unknown"),
    ],
)
def test_a_schedule_that_cannot_run_is_refused_on_its_field(admin_client, fields, field, message):
    response = admin_client.post(ADD_URL, add_form(**fields, schedule_enabled="on"))

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert message in errors[field][0]
    assert not PeriodicTask.objects.filter(task=SCHEDULED_SEND_TASK).exists()


def test_a_weekly_schedule_in_a_time_zone_reads_in_words_and_runs_there(admin_client):
    admin_client.post(
        ADD_URL,
        add_form(
            send_frequency="weekly",
            send_time="09:30",
            send_weekday="5",
            send_timezone="Europe/Paris",
            schedule_enabled="on",
        ),
    )

    bulletin = Bulletin.objects.get(slug="morning")
    assert bulletin.schedule_summary == "Every Friday at 09:30 (Europe/Paris)"
    crontab = bulletin.periodic_task.crontab
    assert (crontab.minute, crontab.hour, crontab.day_of_week) == ("30", "9", "5")
    assert str(crontab.timezone) == "Europe/Paris"


def test_a_new_bulletin_is_not_scheduled_and_marketers_cannot_edit_system_crontabs(
    marketer_client,
):
    assert Bulletin().send_frequency == "none"
    page = marketer_client.get(ADD_URL).content.decode()
    assert 'name="schedule"' not in page  # the system crontab is not picked here
    add_crontab = reverse("admin:django_celery_beat_crontabschedule_add")
    assert marketer_client.get(add_crontab).status_code == 403


def test_enabling_a_schedule_without_choosing_one_is_refused(admin_client):
    response = admin_client.post(ADD_URL, add_form(schedule_enabled="on"))

    assert response.status_code == 200
    assert "Choose when to send before turning the schedule on." in response.content.decode()


def test_deleting_a_scheduled_bulletin_deletes_its_periodic_task(admin_client):
    admin_client.post(ADD_URL, add_form(**DAILY_AT_7))
    bulletin = Bulletin.objects.get(slug="morning")

    delete_url = reverse("admin:bulletins_bulletin_delete", args=[bulletin.pk])
    response = admin_client.post(delete_url, {"post": "yes"})

    assert response.status_code == 302
    assert not Bulletin.objects.exists()
    assert not PeriodicTask.objects.filter(task=SCHEDULED_SEND_TASK).exists()


def test_bulk_deleting_scheduled_bulletins_deletes_their_periodic_tasks(admin_client):
    admin_client.post(ADD_URL, add_form(**DAILY_AT_7))
    bulletin = Bulletin.objects.get(slug="morning")

    response = admin_client.post(
        reverse("admin:bulletins_bulletin_changelist"),
        {"action": "delete_selected", "_selected_action": [bulletin.pk], "post": "yes"},
    )

    assert response.status_code == 302
    assert not Bulletin.objects.exists()
    assert not PeriodicTask.objects.filter(task=SCHEDULED_SEND_TASK).exists()


def test_changelist_links_to_preview_and_send(admin_client, db):
    bulletin = Bulletin.objects.create(slug="b", name="B", subject_template="Hi")

    response = admin_client.get(reverse("admin:bulletins_bulletin_changelist"))

    page = response.content.decode()
    assert preview_url(bulletin) in page
    assert send_url(bulletin) in page


# Preview & test


def test_preview_shows_subject_items_and_the_email_in_a_sandboxed_iframe(
    staff_client, weekly, mailbox
):
    user = recipient(weekly)

    response = staff_client.get(preview_url(weekly), {"user": user.external_id})

    assert response.status_code == 200
    page = response.content.decode()
    preview = response.context["preview"]
    first_name = (user.attributes or {}).get("first_name") or "Hi"
    assert preview.email.subject == f"{first_name}, your week"
    assert 'id="preview-subject"' in page
    assert len(preview.items) == 7
    for entry in preview.items:
        assert f"<td>{entry['item_id']}</td>" in page
    assert '<iframe id="preview-html" title="Email preview" sandbox=""' in page
    assert 'id="preview-text"' in page
    assert "List-Unsubscribe-Post: List-Unsubscribe=One-Click" in page
    assert 'id="test-send-form"' in page


def test_preview_shows_a_user_in_the_arm_chosen(admin_client, weekly, mailbox):
    Variant.objects.create(
        bulletin=weekly,
        name="holdout",
        share=50,
        is_control=True,
        source=Variant.Source.NON_PERSONALIZED,
    )
    Variant.objects.create(bulletin=weekly, name="model", share=50, source=Variant.Source.IN_HOUSE)
    user = recipient(weekly)

    for arm in ("holdout", "model"):
        response = admin_client.get(preview_url(weekly), {"user": user.external_id, "variant": arm})
        preview = response.context["preview"]
        assert preview.variant.name == arm
        assert f'<option value="{arm}" selected>' in response.content.decode()
    holdout = admin_client.get(
        preview_url(weekly), {"user": user.external_id, "variant": "holdout"}
    )
    assert {e["source"] for e in holdout.context["preview"].items} == {"trending"}
    unknown = admin_client.get(preview_url(weekly), {"user": user.external_id, "variant": "nope"})
    assert "no arm named &#x27;nope&#x27;" in unknown.content.decode()


def test_preview_of_an_unknown_user_says_so(admin_client, weekly):
    response = admin_client.get(preview_url(weekly), {"user": "nobody-here"})

    assert response.status_code == 200
    assert "no end user with id &#x27;nobody-here&#x27;" in response.content.decode()


def test_preview_of_an_email_above_gmails_limit_shows_the_clipping_message(
    admin_client, weekly, mailbox
):
    filler = "word " * 22_000  # about 110 KB of text
    weekly.layout_mjml = (
        "<mjml><mj-body><mj-section><mj-column>"
        f"<mj-text>{filler}</mj-text>"
        '<mj-text><a href="{{ unsubscribe_url }}">Unsubscribe</a></mj-text>'
        "</mj-column></mj-section></mj-body></mjml>"
    )
    weekly.save()

    response = admin_client.get(preview_url(weekly), {"user": recipient(weekly).external_id})

    assert response.status_code == 200
    page = response.content.decode()
    assert 'id="preview-render-error"' in page
    assert "Gmail clips above 102 KB" in page
    assert "show fewer items or shorten descriptions" in page
    assert "<iframe" not in page


def test_preview_tells_when_a_run_would_skip_the_user(admin_client, weekly, mailbox):
    user = EndUser.objects.filter(is_anonymous=False, email_opt_in=False).first()

    response = admin_client.get(preview_url(weekly), {"user": user.external_id})

    assert "A run would skip this user: has not opted in to email." in response.content.decode()


def test_test_send_emails_one_test_copy_and_records_no_delivery(staff_client, weekly, mailbox):
    user = recipient(weekly)

    response = staff_client.post(
        preview_url(weekly), {"user": user.external_id, "test_to": "qa@example.org"}
    )

    assert response.status_code == 200
    assert len(mailbox) == 1
    message = mailbox[0]
    assert message.to == ["qa@example.org"]
    assert message.subject.startswith("[TEST] ")
    assert not Delivery.objects.exists()
    assert not BulletinRun.objects.exists()
    assert "Test email sent to qa@example.org." in response.content.decode()


def test_test_send_to_a_bad_address_sends_nothing_and_says_why(admin_client, weekly, mailbox):
    response = admin_client.post(
        preview_url(weekly), {"user": recipient(weekly).external_id, "test_to": "not-an-address"}
    )

    assert mailbox == []
    assert "is not an email address" in response.content.decode()


def test_test_send_of_a_braze_bulletin_goes_through_the_sites_email_backend(
    admin_client, weekly, mailbox, monkeypatch
):
    """Braze keeps the content on the user's profile: a test through it would overwrite the
    real user's."""
    monkeypatch.setenv("BRAZE_TEST_KEY", "not-a-real-key")
    weekly.platform = PlatformConnection.objects.create(
        name="braze",
        kind=PlatformConnection.Kind.BRAZE,
        credential_env="BRAZE_TEST_KEY",
        options={"base_url": "https://rest.braze.invalid"},
    )
    weekly.save()

    admin_client.post(
        preview_url(weekly), {"user": recipient(weekly).external_id, "test_to": "qa@example.org"}
    )

    assert [message.to for message in mailbox] == [["qa@example.org"]]


def test_test_send_through_a_platform_without_its_secret_says_why(
    admin_client, weekly, mailbox, monkeypatch
):
    monkeypatch.delenv("SENDGRID_TEST_KEY", raising=False)
    weekly.platform = PlatformConnection.objects.create(
        name="sendgrid", kind=PlatformConnection.Kind.SENDGRID, credential_env="SENDGRID_TEST_KEY"
    )
    weekly.save()

    response = admin_client.post(
        preview_url(weekly), {"user": recipient(weekly).external_id, "test_to": "qa@example.org"}
    )

    assert response.status_code == 200
    assert "SENDGRID_TEST_KEY" in response.content.decode()
    assert mailbox == []


# Send now


def test_send_now_asks_before_sending(admin_client, weekly, mailbox):
    response = admin_client.get(send_url(weekly))

    assert response.status_code == 200
    assert 'id="send-form"' in response.content.decode()
    assert not BulletinRun.objects.exists()


def test_send_now_post_runs_the_bulletin_to_the_end(
    staff_client, weekly, mailbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(send_url(weekly))

    assert response.status_code == 302
    runs = reverse("admin:bulletins_bulletinrun_changelist")
    assert response["Location"] == f"{runs}?bulletin__id__exact={weekly.pk}"
    run = BulletinRun.objects.get()
    assert (run.status, run.trigger) == (BulletinRun.Status.DONE, BulletinRun.Trigger.ADMIN)
    assert run.sent == len(mailbox) > 0


def test_the_same_send_form_posted_twice_starts_one_run(
    admin_client, weekly, mailbox, django_capture_on_commit_callbacks
):
    form = admin_client.get(send_url(weekly)).context["run_key"]

    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(send_url(weekly), {"run_key": form})
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(send_url(weekly), {"run_key": form})

    run = BulletinRun.objects.get()
    assert run.sent == len(mailbox)


def test_send_now_shows_recipients_skips_and_arms_before_sending(admin_client, weekly, mailbox):
    EndUser.objects.filter(external_id="user-00001").update(email_opt_in=False)
    forecast = admin_client.get(send_url(weekly)).context["forecast"]

    subscribers = EndUser.objects.filter(is_anonymous=False, email_opt_in=True).exclude(email="")
    assert forecast.recipients == subscribers.count() > 0
    assert forecast.not_opted_in >= 1 and forecast.recent_run is None
    assert sum(size for _, size in forecast.arms) in (0, forecast.recipients)


def test_a_second_send_within_a_day_needs_an_explicit_confirmation(
    admin_client, weekly, mailbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(send_url(weekly))
    first = len(mailbox)

    page = admin_client.get(send_url(weekly)).content.decode()
    assert "already sent" in page and 'name="confirm_repeat"' in page
    with django_capture_on_commit_callbacks(execute=True):
        refused = admin_client.post(send_url(weekly))
    assert refused.status_code == 200 and 'class="errornote"' in refused.content.decode()
    assert BulletinRun.objects.count() == 1 and len(mailbox) == first

    with django_capture_on_commit_callbacks(execute=True):
        confirmed = admin_client.post(send_url(weekly), {"confirm_repeat": "yes"})
    assert confirmed.status_code == 302
    assert BulletinRun.objects.count() == 2 and len(mailbox) == 2 * first


def test_send_now_of_a_bulletin_without_blocks_explains_and_sends_nothing(admin_client, db):
    bulletin = Bulletin.objects.create(slug="empty", name="Empty", subject_template="Hi")

    response = admin_client.post(send_url(bulletin), follow=True)

    assert "has no recommendation block" in response.content.decode()
    assert not BulletinRun.objects.exists()


# Runs


def test_run_list_shows_progress_and_counts(admin_client, weekly, mailbox):
    run, _ = bulletin_run_start(bulletin=weekly)
    for shard in run_shards(run):
        bulletin_shard_prepare(run_id=run.pk, shard=shard)
    run.refresh_from_db()
    prepared = Delivery.objects.filter(run=run).count()

    response = admin_client.get(reverse("admin:bulletins_bulletinrun_changelist"))

    assert response.status_code == 200
    assert f"0 of {prepared} emails handled (sent, failed or skipped)" in (
        response.content.decode()
    )


def test_a_run_page_says_what_happened_in_words_and_why_it_failed(admin_client, weekly):
    run, _ = bulletin_run_start(bulletin=weekly)
    BulletinRun.objects.filter(pk=run.pk).update(
        status=BulletinRun.Status.FAILED, error="the platform refused the API key (401)"
    )
    EndUser.objects.filter(external_id="user-00001").update(email_opt_in=False)

    listed = admin_client.get(reverse("admin:bulletins_bulletinrun_changelist"))
    page = admin_client.get(reverse("admin:bulletins_bulletinrun_change", args=[run.pk]))

    assert "the platform refused the API key (401)" in listed.content.decode()
    text = page.content.decode()
    assert "Why it failed" in text and "the platform refused the API key (401)" in text
    assert "Skipped: not opted in" in text and "Technical details" in text
    first_section = text.split("Technical details")[0]
    assert "shard" not in first_section.lower() and "heartbeat" not in first_section.lower()


def test_resume_action_finishes_an_interrupted_run(
    staff_client, weekly, mailbox, django_capture_on_commit_callbacks
):
    run, _ = bulletin_run_start(bulletin=weekly)
    for shard in run_shards(run):
        bulletin_shard_prepare(run_id=run.pk, shard=shard)

    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(
            reverse("admin:bulletins_bulletinrun_changelist"),
            {"action": "resume", "_selected_action": [run.pk]},
        )

    assert response.status_code == 302
    run.refresh_from_db()
    assert run.status == BulletinRun.Status.DONE
    assert run.sent == len(mailbox) == Delivery.objects.filter(run=run).count() > 0


# What marketers may not do


def test_marketer_sees_platform_connections_read_only(marketer_client):
    connection = PlatformConnection.objects.create(
        name="esp", kind=PlatformConnection.Kind.SENDGRID, credential_env="SENDGRID_KEY"
    )
    change_url = reverse("admin:bulletins_platformconnection_change", args=[connection.pk])

    page = marketer_client.get(change_url)
    post = marketer_client.post(change_url, {"name": "x", "kind": "smtp", "options": "{}"})

    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert 'name="credential_env"' not in page.content.decode()
    assert post.status_code == 403
    connection.refresh_from_db()
    assert connection.name == "esp"


def test_marketer_cannot_add_platform_connections(marketer_client):
    response = marketer_client.get(reverse("admin:bulletins_platformconnection_add"))

    assert response.status_code == 403


def test_staff_without_bulletin_permissions_cannot_preview_or_send(client, weekly, mailbox):
    user = User.objects.create_user("clerk", password="pw", is_staff=True)
    client.force_login(user)

    preview = client.get(preview_url(weekly), {"user": recipient(weekly).external_id})
    send = client.post(send_url(weekly))

    assert (preview.status_code, send.status_code) == (403, 403)
    assert not BulletinRun.objects.exists()


def test_the_bulletin_page_has_preview_send_and_report_buttons(staff_client, weekly):
    page = staff_client.get(reverse("admin:bulletins_bulletin_change", args=[weekly.pk]))

    text = page.content.decode()
    for name in ("preview", "send", "report"):
        assert reverse(f"admin:bulletins_bulletin_{name}", args=[weekly.pk]) in text
    assert "Send now</a>" in text and "Experiment report</a>" in text
