"""CSV downloads from admin reports."""

import csv

from django.http import HttpResponse

# A cell a spreadsheet would run as a formula (OWASP "CSV injection"): item titles and ids
# come from imports and events, so they are written as text.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value):
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def csv_response(filename: str, rows: list[dict]) -> HttpResponse:
    """`rows` as a CSV attachment, the first row's keys as the header."""
    response = HttpResponse(content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    writer = csv.DictWriter(response, fieldnames=list(rows[0]) if rows else ["value"])
    writer.writeheader()
    writer.writerows({key: _cell(value) for key, value in row.items()} for row in rows)
    return response
