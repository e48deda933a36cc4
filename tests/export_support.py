"""What the export tests share: a GET of an export path as the client's viewer, and the rows of the
CSV file it answers with (after checking it is one)."""

from __future__ import annotations

import csv
import io

import httpx

from tests.conftest import GraphQLClient


def read_csv(response: httpx.Response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert "attachment" in response.headers["content-disposition"]
    return list(csv.DictReader(io.StringIO(response.content.decode("utf-8"))))


async def get(client: GraphQLClient, path: str, **params: str) -> httpx.Response:
    return await client.http.get(path, params=params)
