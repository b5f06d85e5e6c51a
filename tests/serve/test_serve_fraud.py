"""POST /v1/fraud/score over real HTTP: the probabilities and decisions of the model `fraud run` saved (same as
loading it directly), every bad transaction a 4xx naming its field, a LEAKY model served only when allowed."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from adaptlab.errors import AdaptlabError
from adaptlab.fraud.data import FEATURES
from adaptlab.fraud.model import load_model, predict_proba
from adaptlab.serve.app import ServeLimits, create_app
from adaptlab.serve.fraud import ServedFraudScorer

MAX_BATCH = 40


@pytest.fixture(scope="module")
def client(fraud_runs, serving):
    scorer = ServedFraudScorer.load(fraud_runs["safe"])
    with serving(create_app(None, scorer, ServeLimits(max_batch=MAX_BATCH))) as client:
        yield client


def _transactions(frame, rows) -> list[dict]:
    return [{name: float(frame[name].iloc[i]) for name in FEATURES} for i in rows]


def test_scores_equal_the_saved_model_loaded_directly(client, fraud_runs, fraud_frame):
    rows = range(0, 400, 11)  # 37 rows, frauds among them
    status, body = client.post("/v1/fraud/score", {"transactions": _transactions(fraud_frame, rows)})
    assert status == 200, body
    model, scaler, meta = load_model(fraud_runs["safe"] / "model")
    expected = predict_proba(model, scaler, fraud_frame[FEATURES].iloc[list(rows)].to_numpy())
    probabilities = np.array([r["probability"] for r in body["results"]])
    np.testing.assert_allclose(probabilities, expected, rtol=1e-6)  # float32 model: thread-dependent kernels
    assert [r["fraud"] for r in body["results"]] == (expected >= meta["threshold"]).tolist()
    assert body["threshold"] == meta["threshold"] and body["warning"] is None
    assert 0 < sum(r["fraud"] for r in body["results"]) < len(rows)  # a threshold that separates something


def test_tasks_lists_the_fraud_features_and_threshold(client, fraud_runs):
    status, body = client.get("/v1/tasks")
    meta = json.loads((fraud_runs["safe"] / "model" / "model.json").read_text())
    assert status == 200
    assert body["fraud"] == {"available": True, "features": FEATURES, "threshold": meta["threshold"], "leaky": False}
    assert body["tasks"] == [] and body["base_model"] is None
    assert client.get("/healthz") == (200, {"status": "ok", "tasks": 0, "fraud": True})


def _one(frame, **changes) -> dict:
    return {**_transactions(frame, [0])[0], **changes}


BAD = {  # name -> (what to send given a valid transaction t, expected status, field, words in the message)
    "missing feature": (lambda t: {"transactions": [t, {k: v for k, v in t.items() if k != "V7"}]},
                        422, "transactions[1].V7", "required"),
    "extra field": (lambda t: {"transactions": [{**t, "Class": 1}]}, 422, "transactions[0].Class", "unknown field"),
    "number as text": (lambda t: {"transactions": [{**t, "Amount": "12.5"}]}, 422, "transactions[0].Amount",
                       "must be a number"),
    "boolean": (lambda t: {"transactions": [{**t, "V3": True}]}, 422, "transactions[0].V3", "must be a number"),
    "null": (lambda t: {"transactions": [{**t, "V3": None}]}, 422, "transactions[0].V3", "must be a number"),
    "not a list": (lambda t: {"transactions": t}, 422, "transactions", "must be a list"),
    "empty": (lambda t: {"transactions": []}, 422, "transactions", "at least one"),
    "over the batch limit": (lambda t: {"transactions": [t] * (MAX_BATCH + 1)}, 422, "transactions",
                             f"limit of {MAX_BATCH}"),
    "unknown top-level field": (lambda t: {"transactions": [t], "threshold": 0.1}, 422, "threshold",
                                "unknown field"),
    "overflows after standardising": (lambda t: {"transactions": [t, t, {**t, "Amount": 1e308}]}, 422,
                                      "transactions[2]", "too large"),
}


@pytest.mark.parametrize("what", BAD)
def test_bad_transactions_are_4xx_naming_the_field(client, fraud_frame, what):
    make, status, field, words = BAD[what]
    code, body = client.post("/v1/fraud/score", make(_one(fraud_frame)))
    assert (code, body["error"]["field"]) == (status, field), body
    assert words in body["error"]["message"]


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_non_finite_numbers_are_refused_though_python_json_reads_them(client, fraud_frame, literal):
    transaction = json.dumps(_one(fraud_frame, V5=123456.0)).replace("123456.0", literal)
    code, body = client.post("/v1/fraud/score", raw=f'{{"transactions": [{transaction}]}}'.encode())
    assert code == 422 and body["error"]["field"] == "transactions[0].V5"
    assert "finite" in body["error"]["message"]


def test_an_ordinary_large_amount_is_scored(client, fraud_frame):
    code, body = client.post("/v1/fraud/score", {"transactions": [_one(fraud_frame, Amount=25_691.16)]})
    assert code == 200 and math.isfinite(body["results"][0]["probability"])


def test_leaky_model_is_refused_unless_allowed(fraud_runs, fraud_frame, serving):
    with pytest.raises(AdaptlabError, match=r"LEAKY.*--allow-leaky") as refused:
        ServedFraudScorer.load(fraud_runs["leaky"])
    assert "\n" not in str(refused.value)
    scorer = ServedFraudScorer.load(fraud_runs["leaky"], allow_leaky=True)
    with serving(create_app(None, scorer)) as client:
        code, body = client.post("/v1/fraud/score", {"transactions": _transactions(fraud_frame, [0, 1])})
        assert code == 200 and body["warning"].startswith("LEAKY: paper protocol")
        assert client.get("/v1/tasks")[1]["fraud"]["leaky"] is True


def test_without_a_fraud_model_the_route_says_so(fraud_frame, serving):
    with serving(create_app(None, None)) as client:
        code, body = client.post("/v1/fraud/score", {"transactions": _transactions(fraud_frame, [0])})
        assert code == 404 and "--fraud-model" in body["error"]["message"]
