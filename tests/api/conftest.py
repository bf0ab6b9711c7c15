"""API test fixtures: one daemon per test session, on the backend named by
TERRACE_TEST_BACKEND (sqlite by default, or pg)."""
import os
import sys
import uuid

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from terrace import Daemon  # noqa: E402


@pytest.fixture(scope="session")
def daemon():
    d = Daemon(backend=os.environ.get("TERRACE_TEST_BACKEND", "sqlite"))
    d.start()
    yield d
    d.close()


@pytest.fixture(scope="session")
def admin(daemon):
    """Client authenticated as the bootstrap site admin."""
    return daemon.client()


@pytest.fixture
def anon(daemon):
    return daemon.client(token=None)


def unique(prefix="t"):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:10])


def temp_org(client):
    """Generator for fixtures: a fresh organization made with client,
    deleted afterwards."""
    name = unique("org")
    r = client.post("/api/v2/organizations", {
        "data": {"type": "organizations",
                 "attributes": {"name": name, "email": "o@example.com"}}})
    assert r.status == 201, r
    yield name
    client.delete("/api/v2/organizations/" + name)


@pytest.fixture
def org(admin):
    """A fresh organization owned by the admin; deleted afterwards."""
    yield from temp_org(admin)


def assert_error(resp, status):
    """resp is a JSON:API error document with the given status."""
    assert resp.status == status, resp
    doc = resp.json
    assert isinstance(doc.get("errors"), list) and doc["errors"], resp
    assert doc["errors"][0]["status"] == str(status), resp
    assert doc["errors"][0].get("detail") or doc["errors"][0].get("title")
