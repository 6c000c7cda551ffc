import pytest
from django.core.management import call_command

from bulletins.models import BulletinRun, Click, Conversion
from recommendations.models import EndUser, Interaction, Item

pytestmark = pytest.mark.django_db


def test_demo_loads_a_catalogue_and_audience_and_can_run_again(tmp_path, settings, capsys):
    settings.VAR_DIR = tmp_path
    settings.EMAIL_FILE_PATH = str(tmp_path / "emails")
    # Each run of the demo sends a new bulletin whose simulated readers buy: new events.
    imported = Interaction.objects.exclude(event_id__startswith="simulated-")
    call_command("demo", "--users", "120", "--items", "60", "-v0")
    first = (EndUser.objects.count(), Item.objects.count(), imported.count())
    call_command("demo", "--users", "120", "--items", "60", "-v0")
    second = (EndUser.objects.count(), Item.objects.count(), imported.count())

    assert first == second
    assert first[1] == 60 and first[0] >= 120 and first[2] > 1000
    assert EndUser.objects.filter(is_anonymous=True).exists()  # live website visitors
    assert (tmp_path / "demo" / "interactions.csv").exists()
    assert "end users" in capsys.readouterr().out


def test_demo_sends_a_bulletin_to_every_demo_user_through_the_file_backend(
    tmp_path, settings, capsys
):
    settings.VAR_DIR = tmp_path
    settings.EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    settings.EMAIL_FILE_PATH = str(tmp_path / "emails")
    call_command("demo", "--users", "120", "--items", "60", "-v0")

    run = BulletinRun.objects.get()
    subscribers = EndUser.objects.filter(is_anonymous=False, email_opt_in=True)
    assert run.status == "done" and run.sent == subscribers.count() > 0
    written = "".join(path.read_text() for path in (tmp_path / "emails").glob("*.log"))
    assert written.count("List-Unsubscribe-Post: List-Unsubscribe=One-Click") == run.sent
    examples = list((tmp_path / "emails").glob("example-*.html"))
    assert len(examples) == 1 and "Picked for you" in examples[0].read_text()
    out = capsys.readouterr().out
    assert str(tmp_path / "emails") in out and str(examples[0]) in out
    # Simulated readers clicked and bought through the tracked links; the report compares arms.
    assert Click.objects.filter(is_human=True).exists() and Conversion.objects.exists()
    assert "(control)" in out and "CTR uplift" in out and "95% CI" in out
