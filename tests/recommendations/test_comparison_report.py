import csv
import io

import pytest
from django.urls import reverse

from recommendations.models import Placement, RecommendationSet
from recommendations.services.comparison import NothingToCompare, sources_compare
from recommendations.services.personalize_double import personalize_double_run
from recommendations.services.recommending import recommendations_compute_all_in_process
from recommendations.services.training import model_version_train

pytestmark = pytest.mark.django_db


@pytest.fixture
def both_sources(planted_catalogue):
    model_version_train()
    recommendations_compute_all_in_process()
    personalize_double_run()
    return Placement.objects.get(slug="for-you")


def test_comparison_measures_overlap_coverage_and_discovery(both_sources):
    comparison = sources_compare(placement=both_sources)
    summary = comparison.report.summary
    assert comparison.users_compared > 250
    assert 0 <= summary["overlap_at_k"] <= 1 and 0 <= summary["rbo"] <= 1
    assert summary["overlap_at_k"] < 1  # two different models
    assert sum(b["users"] for b in comparison.histogram) == comparison.users_compared
    assert summary["coverage_b"] > 0
    assert summary["only_b_items"] == len(comparison.report.only_b)
    assert all(item["title"] for item in comparison.only_personalize)


def test_a_sample_compares_that_many_users(both_sources):
    assert sources_compare(placement=both_sources, sample=40).users_compared == 40


def test_without_personalize_lists_it_says_so(planted_catalogue):
    model_version_train()
    recommendations_compute_all_in_process()
    with pytest.raises(NothingToCompare, match="No Amazon Personalize lists"):
        sources_compare(placement=Placement.objects.get(slug="for-you"))


def test_report_renders_in_admin_with_a_csv_export(both_sources, admin_client):
    url = reverse("admin:recommendations_placement_compare", args=[both_sources.pk])
    page = admin_client.get(url)
    assert page.status_code == 200
    text = page.content.decode()
    assert "recommended only by Personalize" in text and "compare-histogram" in text
    export = admin_client.get(url, {"format": "csv"})
    assert export["Content-Type"] == "text/csv"
    rows = list(csv.DictReader(io.StringIO(export.content.decode())))
    assert {"summary", "per_user_overlap", "per_user_rbo"} <= {row["section"] for row in rows}


def test_double_lists_are_labelled_and_go_through_the_rules(both_sources):
    stored = (
        RecommendationSet.objects.filter(source="personalize")
        .select_related("model_version")
        .first()
    )
    assert "test double" in stored.model_version.decision
    assert all(entry["reason"] == "personalize" for entry in stored.items)
