from recsite.admin_csv import csv_response


def test_cells_a_spreadsheet_would_run_as_formulas_are_written_as_text():
    rows = [{"title": '=HYPERLINK("https://evil.example")', "id": "@SUM(A1)", "n": -3}]

    body = csv_response("report.csv", rows).content.decode()

    assert body.splitlines() == [
        "title,id,n",
        '"\'=HYPERLINK(""https://evil.example"")",\'@SUM(A1),-3',
    ]


def test_the_download_is_an_attachment_with_its_name():
    response = csv_response("weekly-report.csv", [{"a": 1}])

    assert response["Content-Type"] == "text/csv"
    assert response["Content-Disposition"] == 'attachment; filename="weekly-report.csv"'
