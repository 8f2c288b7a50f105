"""The OpenAPI document tells the truth: schemathesis with every check against each shipped use case's live
endpoint finds nothing, every status the service answers is documented with its body, and a method a route
does not take is 405."""

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import mlflow
import numpy as np
import pytest
import requests
from mlflow import MlflowClient
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from aimass_pipeline.core.contracts import Contract
from aimass_pipeline.core.registry import sign_logged_model
from aimass_pipeline.core.specs import load_specs
from aimass_pipeline.deployment.bento import build_champion_bento
from aimass_pipeline.serving.compiled import contract_rows
from aimass_pipeline.settings import Settings
from aimass_pipeline_tests.bento_server import bento_server
from aimass_pipeline_tests.serving.test_bento_service import _prepared_settings

USE_CASES = ("credit_risk", "breast_cancer", "digits", "health_breaches")
DOCUMENTED = {"200", "400", "401", "413", "415", "422", "503"}
API_KEY = "openapi-test-key"


def _train(contract: Contract) -> Pipeline:
    rows = contract_rows(contract, n=200, seed=1)
    labels = np.arange(len(rows)) % len(contract.classes)
    parts = [("num", make_pipeline(SimpleImputer(), StandardScaler()), contract.numeric_features)]
    if contract.text_features:  # a text use case: TF-IDF inside the pipeline, as text_logreg has it
        parts = [(f"txt_{c}", TfidfVectorizer(dtype="float64"), c) for c in contract.text_features]
    if contract.categorical_features:
        cat = make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore"))
        parts.append(("cat", cat, contract.categorical_features))
    return Pipeline([("prep", ColumnTransformer(parts)), ("clf", LogisticRegression(max_iter=300))]).fit(
        rows, labels
    )


def _register_champion(settings: Settings, use_case: str, model: Pipeline) -> None:
    experiment = mlflow.get_experiment_by_name("openapi-test") or None
    experiment_id = (
        experiment.experiment_id
        if experiment
        else mlflow.create_experiment(
            "openapi-test", artifact_location=Path(settings.mlflow_artifacts_uri).as_uri()
        )
    )
    with mlflow.start_run(experiment_id=experiment_id):
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            registered_model_name=use_case,
            skops_trusted_types=["numpy.dtype"],
            pip_requirements=["scikit-learn", "skops"],
        )
        # What AIMass logs is signed; the service refuses an unsigned model.
        sign_logged_model(info.model_id, info.model_uri, settings.signing_key())
    MlflowClient().set_registered_model_alias(use_case, "champion", str(info.registered_model_version))


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    home = tmp_path_factory.mktemp("aimass-openapi")
    specs = load_specs()
    with pytest.MonkeyPatch.context() as mp:
        settings = _prepared_settings(home, mp)
        for use_case in USE_CASES:
            _register_champion(settings, use_case, _train(specs[use_case].contract))
            build_champion_bento(settings, use_case)
        yield settings


@pytest.fixture(scope="module", params=USE_CASES)
def live(request: pytest.FixtureRequest, built: Settings) -> Iterator[str]:
    use_case = request.param
    env = built.child_env() | {
        "AIMASS_CHAMPION_POLL_S": "0",
        "AIMASS_PREDICTION_LOG": "off",
        "AIMASS_API_KEY": API_KEY,
        # A schema-valid 10,000-record digits request (64 pixels each) is ~11 MB: over the default 8 MiB
        # limit it is a documented 413, which schemathesis counts as a valid request rejected.
        "AIMASS_MAX_BODY_BYTES": str(32 * 1024 * 1024),
    }
    with bento_server(built, use_case, built.home / f"serve-{use_case}.log", env) as server:
        yield server.url


def test_every_api_response_is_documented_with_its_body(live: str, request: pytest.FixtureRequest) -> None:
    spec = requests.get(f"{live}/docs.json", headers={"X-API-Key": API_KEY}, timeout=30).json()
    image = spec["paths"].get("/predict_image")
    if request.node.callspec.params["live"] == "digits":  # the image contract: its upload route is documented
        assert image is not None, sorted(spec["paths"])
        assert set(image["post"]["responses"]) == DOCUMENTED, sorted(image["post"]["responses"])
        assert image["post"]["responses"]["200"] == spec["paths"]["/predict"]["post"]["responses"]["200"]
        body = image["post"]["requestBody"]
        assert body["required"] is True
        assert set(body["content"]) == {"multipart/form-data", "application/json"}
        assert {"ApiKeyHeader": []} in image["post"]["security"]
    else:
        assert image is None, "only an image contract has /predict_image"
    for path in ("/predict", "/predict_batch"):
        responses = spec["paths"][path]["post"]["responses"]
        assert set(responses) == DOCUMENTED, (path, sorted(responses))
        for status, response in responses.items():
            assert "schema" in response["content"]["application/json"], (path, status, response)
        assert spec["paths"][path]["post"]["requestBody"]["required"] is True
        assert {"ApiKeyHeader": []} in spec["paths"][path]["post"]["security"]


def test_a_method_a_route_does_not_take_is_405(live: str) -> None:
    key = {"X-API-Key": API_KEY}
    for method, path in (
        ("GET", "/predict"),
        ("PUT", "/predict_batch"),
        ("POST", "/healthz"),
        ("POST", "/docs.json"),
    ):
        response = requests.request(method, f"{live}{path}", headers=key, data=b"x", timeout=30)
        assert response.status_code == 405, (method, path, response.status_code, response.text[:200])


def test_schemathesis_with_every_check_finds_nothing(live: str, tmp_path: Path) -> None:
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "run",
        f"{live}/docs.json",
        "--url",
        live,
        "--checks",
        "all",
        "--max-examples",
        "8",
        "--seed",
        "13",
        "--generation-deterministic",
        "--header",
        f"X-API-Key: {API_KEY}",
        "--max-response-time",
        "5",
        "--request-timeout",
        "30",
        "--no-color",
    ]
    # No schema can say "a PNG that decodes within the pixel limits": a schema-valid /predict_image body may
    # be refused with its documented 422, on that route alone.
    (tmp_path / "schemathesis.toml").write_text(
        '[[operations]]\ninclude-path = "/predict_image"\n'
        'checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "422"]\n'
    )
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]


def test_a_text_is_scored_as_in_process_and_bad_text_is_refused(
    live: str, request: pytest.FixtureRequest
) -> None:
    if request.node.callspec.params["live"] != "health_breaches":
        pytest.skip("a text use case only")
    texts = [
        "Acme Billing Services LLC. A business associate's server was hacked and claims data exposed.",
        "Saint Mary Hospital. Paper records of 600 patients were stolen from a locked office.",
        "Clinique Me\u0301dicale. Un ordinateur portable volé. Appelez le +33 145-678-9012, dossier 12345678.",
    ]
    key = {"X-API-Key": API_KEY}
    body = {"records": [{"report": t} for t in texts]}
    served = requests.post(f"{live}/predict", json=body, headers=key, timeout=30)
    assert served.status_code == 200, served.text
    model = mlflow.sklearn.load_model("models:/health_breaches@champion")
    import pandas as pd

    from aimass_pipeline.core.text_contract import normalise, scrub

    # The service scores a text as ingestion stores it: NFC, contacts scrubbed (the column is declared PII).
    stored = [scrub(normalise(t)) for t in texts]
    assert "<phone>" in stored[2] and "<number>" in stored[2]
    expected = model.predict_proba(pd.DataFrame({"report": stored}))[:, 1]
    got = [p["probability"] for p in served.json()["predictions"]]
    assert np.allclose(got, expected, atol=1e-6, rtol=0), (got, expected)

    oversized = {"records": [{"report": "x" * 20_001}]}
    refused = requests.post(f"{live}/predict", json=oversized, headers=key, timeout=30)
    assert refused.status_code == 422 and "report" in str(refused.json()["detail"][0]["loc"]), refused.text
    invalid = b'{"records": [{"report": "caf\xe9"}]}'
    headers = key | {"content-type": "application/json"}
    assert requests.post(f"{live}/predict", data=invalid, headers=headers, timeout=30).status_code == 400


def test_an_uploaded_png_is_scored_as_its_pixel_record(live: str, request: pytest.FixtureRequest) -> None:
    """/predict_image on the digits server: multipart and base64 JSON give what /predict gives for the record
    the PNG decodes to (decoded in process as landing decodes it), and the limits answer 413 / 415 / 422."""
    if request.node.callspec.params["live"] != "digits":
        pytest.skip("only the digits contract is an image")
    import base64

    from aimass_pipeline.core.images import decode, encode_png, image_spec_of
    from aimass_pipeline_tests.collection.test_image_archive import bomb_png

    contract = load_specs()["digits"].contract
    spec = image_spec_of(contract)
    png = encode_png(np.random.default_rng(3).integers(0, 17, size=(8, 8)), spec)
    key = {"X-API-Key": API_KEY}
    record = dict(zip(contract.feature_names, decode(png, spec).astype(int).tolist(), strict=True))
    expected = requests.post(f"{live}/predict", json={"records": [record]}, headers=key, timeout=30)
    assert expected.status_code == 200, expected.text
    want = expected.json()["predictions"][0]["probabilities"]
    # In process: the champion the server loaded, on the record the PNG decodes to.
    model = mlflow.sklearn.load_model("models:/digits@champion")
    import pandas as pd

    in_process = model.predict_proba(pd.DataFrame([record], dtype=float))[0]
    assert max(abs(want[c] - p) for c, p in zip(contract.classes, in_process, strict=True)) <= 1e-6
    answers = (
        requests.post(
            f"{live}/predict_image", files={"image": ("x.png", png, "image/png")}, headers=key, timeout=30
        ),
        requests.post(
            f"{live}/predict_image", json={"image": base64.b64encode(png).decode()}, headers=key, timeout=30
        ),
    )
    for answer in answers:
        assert answer.status_code == 200, answer.text
        got = answer.json()["predictions"][0]["probabilities"]
        assert max(abs(got[c] - want[c]) for c in want) <= 1e-6
    refused = {
        "not an image": (415, {"data": b"x", "headers": {**key, "content-type": "text/plain"}}),
        "text as png": (422, {"files": {"image": ("x.png", b"hello", "image/png")}, "headers": key}),
        "no image field": (422, {"json": {"picture": "AAAA"}, "headers": key}),
        "bomb": (422, {"files": {"image": ("x.png", bomb_png(), "image/png")}, "headers": key}),
        "bad base64": (422, {"json": {"image": "not base64!"}, "headers": key}),
        "another json field": (
            422,
            {"json": {"image": base64.b64encode(png).decode(), "x": 1}, "headers": key},
        ),
        "another form field": (
            422,
            {"files": {"image": ("x.png", png, "image/png")}, "data": {"note": "hi"}, "headers": key},
        ),
        "over the body limit": (413, {"files": {"image": ("x.png", b"\0" * (33 << 20))}, "headers": key}),
    }
    for name, (status, kwargs) in refused.items():
        answer = requests.post(f"{live}/predict_image", timeout=60, **kwargs)
        assert answer.status_code == status, (name, answer.status_code, answer.text[:300])
    assert requests.post(f"{live}/predict_image", json={"image": "AAAA"}, timeout=30).status_code == 401
    wrong_method = requests.get(f"{live}/predict_image", headers=key, timeout=30)
    assert (wrong_method.status_code, wrong_method.headers.get("allow")) == (405, "POST")
