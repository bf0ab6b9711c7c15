"""Discovery, ping, health and the generic error paths."""
from conftest import assert_error


def test_well_known(anon):
    r = anon.get("/.well-known/terraform.json")
    assert r.status == 200
    assert r.headers["Content-Type"] == "application/json"
    assert r.json["tfe.v2"] == "/api/v2/"


def test_ping_headers(anon):
    r = anon.get("/api/v2/ping")
    assert r.status in (200, 204)
    assert float(r.headers["TFP-API-Version"]) >= 2.5
    assert r.headers["TFP-AppName"] in ("Terraform Enterprise",
                                        "HCP Terraform")
    v = r.headers["X-TFE-Version"]
    assert v.startswith("v") and int(v[1:].split("-")[0]) >= 202001


def test_health(anon):
    assert anon.get("/_health_check").status == 200
    r = anon.get("/_health_check?full=1")
    assert r.status == 200 and r.json["database"] == "ok"


def test_unknown_path_is_json_404(anon):
    assert_error(anon.get("/api/v2/no-such-thing"), 404)


def test_wrong_method_405(anon):
    assert_error(anon.post("/api/v2/ping", {}), 405)
