import pytest
from django.core.management import call_command

from recommendations.models import EndUser, Interaction, Item

pytestmark = pytest.mark.django_db


def test_demo_loads_a_catalogue_and_audience_and_can_run_again(tmp_path, settings, capsys):
    settings.VAR_DIR = tmp_path
    call_command("demo", "--users", "120", "--items", "60", "-v0")
    first = (EndUser.objects.count(), Item.objects.count(), Interaction.objects.count())
    call_command("demo", "--users", "120", "--items", "60", "-v0")
    second = (EndUser.objects.count(), Item.objects.count(), Interaction.objects.count())

    assert first == second
    assert first[1] == 60 and first[0] >= 120 and first[2] > 1000
    assert EndUser.objects.filter(is_anonymous=True).exists()  # live website visitors
    assert (tmp_path / "demo" / "interactions.csv").exists()
    assert "end users" in capsys.readouterr().out
