"""``connector.http.absolute_url``: the clients hand httpx the URL it would have merged itself."""

from __future__ import annotations

import httpx
import pytest

from connector.http import absolute_url


@pytest.mark.parametrize("base", ["http://exact.test", "https://host.test/api", "https://host.test/api/", "http://127.0.0.1:8080/v2"])
@pytest.mark.parametrize("path", ["/api/v1/1/financial/GLAccounts", "invoices.info", "ws/Sales.asmx",
                                  "salesentry/SalesEntries(guid'ab-1')?$select=ID,EntryNumber&$filter=YourRef eq 'F 1/2'"])
def test_a_relative_url_is_joined_to_the_base_exactly_as_httpx_joins_it(base, path):
    seen = []
    client = httpx.Client(base_url=base, transport=httpx.MockTransport(lambda request: seen.append(request.url) or httpx.Response(204)))
    client.get(path)
    client.get(absolute_url(client, path))
    assert seen[0] == seen[1] and str(seen[0]) == str(seen[1])


def test_an_absolute_url_is_left_alone():
    client = httpx.Client(base_url="http://exact.test")
    assert absolute_url(client, "https://start.exactonline.nl/api/oauth2/token") == "https://start.exactonline.nl/api/oauth2/token"
