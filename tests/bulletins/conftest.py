import pytest

from bulletins.models import Bulletin, BulletinBlock
from recommendations.models import Placement
from recommendations.services.recommending import recommendations_compute_all_in_process
from recommendations.services.training import model_version_train


@pytest.fixture
def served(planted_catalogue):
    """The planted publisher with a trained model and every user's lists stored."""
    model_version_train()
    recommendations_compute_all_in_process()
    return planted_catalogue


@pytest.fixture
def mailbox(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.EMAIL_PLATFORM = {"name": "smtp"}
    settings.PUBLIC_BASE_URL = "https://news.example.com"
    settings.DEFAULT_FROM_EMAIL = "news@example.com"
    from django.core import mail

    mail.outbox = []
    return mail.outbox


@pytest.fixture
def trending_placement(db):
    return Placement.objects.create(
        slug="popular",
        name="Popular",
        strategy=Placement.Strategy.TRENDING,
        count=10,
        window_days=3650,
    )


@pytest.fixture
def weekly(served, trending_placement):
    """A bulletin with a personalized block of 4 and a trending block of 3."""
    bulletin = Bulletin.objects.create(
        slug="weekly",
        name="Weekly picks",
        subject_template="{{ first_name|default:'Hi' }}, your week",
    )
    BulletinBlock.objects.create(
        bulletin=bulletin,
        position=1,
        title="Picked for you",
        placement=Placement.objects.get(slug="for-you"),
        count=4,
    )
    BulletinBlock.objects.create(
        bulletin=bulletin, position=2, title="Popular now", placement=trending_placement, count=3
    )
    return bulletin
