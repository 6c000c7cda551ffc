import json

import pytest
from django.core.management import CommandError, call_command

from recommendations.synthetic import generate

pytestmark = pytest.mark.django_db


@pytest.fixture
def csv_dir(tmp_path):
    generate(n_users=250, n_items=96, seed=5).write_csvs(tmp_path)
    return tmp_path


def _evaluate(capsys, *args) -> dict:
    call_command("evaluate", *args, "--json")
    return json.loads(capsys.readouterr().out)


def test_evaluates_csvs_beside_popularity(csv_dir, capsys):
    result = _evaluate(capsys, "--data", str(csv_dir), "--split", "stratified", "--k", "5")
    hybrid, popularity = result["summary"]["hybrid"], result["summary"]["popularity"]
    for name in ("precision_at_k", "recall_at_k", "ndcg_at_k", "map", "coverage", "novelty"):
        assert 0 <= hybrid[name] and name in popularity
    assert hybrid["ndcg_at_k"] > popularity["ndcg_at_k"]
    assert result["k"] == 5


def test_temporal_split_and_several_seeds_are_averaged(csv_dir, capsys):
    result = _evaluate(capsys, "--data", str(csv_dir), "--split", "temporal", "--seeds", "1", "2")
    assert [run["seed"] for run in result["runs"]] == [1, 2]


def test_tuning_reports_the_chosen_parameters(csv_dir, capsys):
    result = _evaluate(capsys, "--data", str(csv_dir), "--tune")
    assert {"ease_l2", "value_power", "item_feature_weight"} <= set(result["runs"][0]["params"])


def test_evaluates_the_database_with_the_admin_event_weights(planted_catalogue, capsys):
    result = _evaluate(capsys, "--split", "temporal")
    assert result["runs"][0]["params"]["event_weights"]["purchase"] == 5.0
    assert result["summary"]["hybrid"]["ndcg_at_k"] > result["summary"]["popularity"]["ndcg_at_k"]


def test_table_output_names_the_metrics(csv_dir, capsys):
    call_command("evaluate", "--data", str(csv_dir))
    out = capsys.readouterr().out
    assert "nDCG@10" in out and "popularity" in out


def test_missing_data_folder_is_a_clear_error(tmp_path):
    with pytest.raises(CommandError, match="no interactions.csv"):
        call_command("evaluate", "--data", str(tmp_path))
