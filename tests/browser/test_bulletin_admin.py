import pytest
from django.contrib.auth.models import Group, User

from bulletins.models import Bulletin, BulletinRun
from recommendations.models import EndUser, Placement
from recommendations.roles import MARKETERS
from recommendations.services.recommending import recommendations_compute_all_in_process
from recommendations.services.training import model_version_train


@pytest.fixture
def marketer(transactional_db):
    user = User.objects.create_user("mia", password="a-long-test-password", is_staff=True)
    user.groups.add(Group.objects.get(name=MARKETERS))
    return user


@pytest.fixture
def outbox(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.EMAIL_PLATFORM = {"name": "smtp"}
    settings.PUBLIC_BASE_URL = "https://news.example.com"
    from django.core import mail

    mail.outbox = []
    return mail.outbox


def test_marketer_creates_previews_and_sends_a_bulletin(
    live_server, page, marketer, planted_catalogue, outbox
):
    model_version_train()
    recommendations_compute_all_in_process()
    for_you = Placement.objects.get(slug="for-you")
    reader = (
        EndUser.objects.filter(is_anonymous=False, email_opt_in=True)
        .exclude(email="")
        .order_by("pk")
        .first()
    )

    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "mia")
    page.fill("#id_password", "a-long-test-password")
    page.click("input[type=submit]")
    page.wait_for_selector("#content-main")

    page.goto(f"{live_server.url}/admin/bulletins/bulletin/add/")
    page.fill("#id_name", "Morning picks")
    page.fill("#id_subject_template", "Your morning picks")
    page.fill("#id_blocks-0-title", "Picked for you")
    page.select_option("#id_blocks-0-placement", str(for_you.pk))
    page.fill("#id_blocks-0-count", "3")
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist .success")
    bulletin = Bulletin.objects.get(name="Morning picks")  # its slug is filled from the name
    assert [(b.placement_id, b.count) for b in bulletin.blocks.all()] == [(for_you.pk, 3)]

    page.click(f"#result_list a[href$='/{bulletin.pk}/preview/']")
    page.fill("#preview-user", reader.external_id)
    page.click("#preview-form input[type=submit]")
    page.wait_for_selector("#preview-subject")
    assert page.inner_text("#preview-subject") == "Your morning picks"
    assert page.locator("#preview-items tbody tr").count() == 3
    email = page.frame_locator("iframe#preview-html")
    email.locator("a[href^='https://news.example.com/r/']").first.wait_for()  # tracked links

    page.goto(f"{live_server.url}/admin/bulletins/bulletin/")
    page.click(f"#result_list a[href$='/{bulletin.pk}/send/']")
    page.wait_for_selector("#send-form")
    page.click("#send-form input[type=submit]")
    page.wait_for_selector(".messagelist .success")

    run = BulletinRun.objects.get(bulletin=bulletin)
    assert run.status == BulletinRun.Status.DONE
    assert run.sent == len(outbox) > 0
    row = page.locator("#result_list tbody tr").first
    assert row.locator("td.field-status").inner_text() == "done"
    assert row.locator("td.field-sent").inner_text() == str(run.sent)
