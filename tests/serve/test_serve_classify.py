"""POST /v1/classify over real HTTP on a real AdapterRegistry (tiny random-init base, three task adapters): the
same answers as calling the registry directly, for single items, mixed batches and 16 concurrent clients;
every kind of bad input a 4xx naming the field; a failing model a generic 500 without a traceback."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from adaptlab.serve.app import ServeLimits, create_app

LIMITS = ServeLimits(max_batch=16, max_text_chars=200, max_body_bytes=20_000, batch_window_ms=20)


@pytest.fixture(scope="module")
def served(registry, serving):
    app = create_app(registry, None, LIMITS)
    with serving(app) as client:
        yield client, app


@pytest.fixture(scope="module")
def client(served):
    return served[0]


def _body(item: tuple) -> dict:
    task, text, pair = item
    return {"task": task, "text": text, **({"text_pair": pair} if pair is not None else {})}


def assert_same(answers: list[dict], expected: list) -> None:
    assert len(answers) == len(expected)
    for answer, direct in zip(answers, expected):
        assert (answer["task"], answer["label"]) == (direct.task, direct.label)
        assert list(answer["probabilities"]) == list(direct.probabilities)  # the task's label order
        np.testing.assert_allclose(list(answer["probabilities"].values()), list(direct.probabilities.values()),
                                   atol=1e-5, rtol=0)


def test_tasks_lists_every_adapter_with_its_labels_and_input(client, registry):
    status, body = client.get("/v1/tasks")
    assert status == 200
    assert body["tasks"] == [{"name": t.name, "labels": t.labels, "input": t.input, "base_model": t.base_model}
                             for t in registry.tasks()]
    assert [(t["name"], len(t["labels"]), t["input"]) for t in body["tasks"]] == \
        [("nli3", 3, "pair"), ("sent2", 2, "single"), ("topic4", 4, "pair")]
    assert body["base_model"] == registry.base_model and body["fraud"]["available"] is False
    assert body["limits"] == {"max_batch": 16, "max_text_chars": 200, "max_body_bytes": 20_000}
    assert client.get("/healthz") == (200, {"status": "ok", "tasks": 3, "fraud": False})


def test_one_item_answers_like_the_registry(client, registry):
    for item in [("sent2", "A woman reads a book in the park.", None),
                 ("nli3", "A man is playing a guitar on stage.", "Someone plays music for a crowd.")]:
        status, answer = client.post("/v1/classify", _body(item))
        assert status == 200, answer
        assert_same([answer], registry.classify([item]))


@pytest.mark.parametrize("seed", [0, 1])
def test_a_mixed_batch_answers_each_item_like_the_registry(client, registry, tiny, seed):
    items = tiny.random_items(np.random.default_rng(seed), 16)
    assert len({task for task, *_ in items}) == 3
    status, body = client.post("/v1/classify", {"items": [_body(item) for item in items]})
    assert status == 200, body
    assert_same(body["results"], registry.classify(items))


def test_concurrent_clients_each_get_their_own_results_in_shared_forward_passes(served, registry, tiny):
    client, app = served
    rng = np.random.default_rng(7)
    requests = [tiny.random_items(rng, int(rng.integers(1, 5))) for _ in range(64)]  # 16 threads x 4 requests
    expected = [registry.classify(items) for items in requests]
    calls_before = app.state.batcher.model_calls
    barrier = threading.Barrier(16)

    def client_thread(index: int) -> list:
        barrier.wait()  # all 16 clients start together
        answers = []
        for items in requests[index::16]:
            body = {"items": [_body(i) for i in items]} if len(items) > 1 else _body(items[0])
            status, answer = client.post("/v1/classify", body)
            assert status == 200, answer
            answers.append(answer["results"] if len(items) > 1 else [answer])
        return answers

    started = time.monotonic()
    with ThreadPoolExecutor(16) as pool:
        per_thread = list(pool.map(client_thread, range(16)))
    assert time.monotonic() - started < 120
    for index, answers in enumerate(per_thread):
        for answer, direct in zip(answers, expected[index::16], strict=True):
            assert_same(answer, direct)
    calls = app.state.batcher.model_calls - calls_before
    assert calls < len(requests)  # requests from different clients shared forward passes


ITEM = {"task": "sent2", "text": "Nobody is outside."}
PAIR = {"task": "nli3", "text": "The children are sleeping.", "text_pair": "Nobody is outside."}
BAD = {  # name -> (body, expected status, field, words in the message)
    "unknown task": ({"items": [ITEM, {**ITEM, "task": "sst9"}]}, 422, "items[1].task", "unknown task 'sst9'"),
    "missing task": ({"text": "hello"}, 422, "task", "required"),
    "missing text": ({"items": [{"task": "sent2"}]}, 422, "items[0].text", "required"),
    "extra field": ({"items": [ITEM, {**ITEM, "label": "positive"}]}, 422, "items[1].label", "unknown field"),
    "extra top-level field": ({"items": [ITEM], "task": "sent2"}, 422, "task", "unknown field"),
    "empty text": ({"items": [{**ITEM, "text": ""}]}, 422, "items[0].text", "empty"),
    "blank text_pair": ({**PAIR, "text_pair": " \n\t"}, 422, "text_pair", "empty"),
    "over-long text": ({"items": [ITEM, {**ITEM, "text": "x" * 201}]}, 422, "items[1].text", "limit is 200"),
    "over-long text_pair": ({**PAIR, "text_pair": "y" * 201}, 422, "text_pair", "limit is 200"),
    "pair task given one text": ({"items": [{"task": "topic4", "text": "one"}]}, 422, "items[0].text_pair",
                                 "text pairs"),
    "single task given two texts": ({**ITEM, "text_pair": "two"}, 422, "text_pair", "single texts"),
    "batch over the limit": ({"items": [ITEM] * 17}, 422, "items", "limit of 16"),
    "empty batch": ({"items": []}, 422, "items", "at least one"),
    "text is a number": ({**ITEM, "text": 7}, 422, "text", "must be a string"),
    "text is null": ({**ITEM, "text": None}, 422, "text", "must be a string"),
    "text is a list": ({"items": [{**ITEM, "text": ["a", "b"]}]}, 422, "items[0].text", "must be a string"),
    "task is a boolean": ({**ITEM, "task": True}, 422, "task", "must be a string"),
    "items not a list": ({"items": ITEM}, 422, "items", "must be a list"),
    "an item not an object": ({"items": [ITEM, "text"]}, 422, "items[1]", "object"),
    "body is a list": ([ITEM], 422, None, "object"),
    "lone surrogate": ({**ITEM, "text": "\ud800"}, 422, "text", "surrogate"),
}


@pytest.mark.parametrize("what", BAD)
def test_bad_input_is_4xx_naming_the_field(client, what):
    body, status, field, words = BAD[what]
    code, answer = client.post("/v1/classify", body)
    assert (code, answer["error"]["field"]) == (status, field), answer
    assert words in answer["error"]["message"]
    assert set(answer) == {"error"} and set(answer["error"]) == {"field", "message"}


@pytest.mark.parametrize("raw, status, field, words", [
    (b'{"task": "sent2", "text": NaN}', 422, "text", "must be a string"),
    (b'{"task": "sent2", "text": Infinity}', 422, "text", "must be a string"),
    (b'{"task": "sent2", "text": "a",', 400, None, "malformed JSON at character"),
    (b'', 400, None, "no body"),
    (b'\xff\xfe{}', 400, None, "malformed JSON"),
])
def test_malformed_and_non_finite_json(client, raw, status, field, words):
    code, answer = client.post("/v1/classify", raw=raw)
    assert (code, answer["error"]["field"]) == (status, field), answer
    assert words in answer["error"]["message"]


def test_oversized_bodies_are_refused_by_declared_and_by_actual_size(client):
    big = json.dumps({"items": [{**ITEM, "text": "x" * 150}] * 140}).encode()  # ~25 kB, limit 20 kB
    code, answer = client.post("/v1/classify", raw=big)  # Content-Length declared
    assert code == 413 and "20,000 bytes" in answer["error"]["message"]
    # chunked: no Content-Length, the bytes received are counted
    code, answer = client.post("/v1/classify", chunks=[big[i:i + 4096] for i in range(0, len(big), 4096)])
    assert code == 413 and answer["error"]["field"] is None
    small = json.dumps(ITEM).encode()
    code, answer = client.post("/v1/classify", chunks=[small[:10], small[10:]])
    assert code == 200 and answer["task"] == "sent2"


def test_wrong_content_type_route_and_method(client):
    code, answer = client.post("/v1/classify", raw=json.dumps(ITEM).encode(), headers={"Content-Type": "text/plain"})
    assert code == 415 and "application/json" in answer["error"]["message"]
    assert client.get("/v1/nothing")[0] == 404
    code, answer = client.get("/v1/classify")
    assert code == 405 and answer["error"]["message"] == "Method Not Allowed"


def test_openapi_documents_the_request_models(client):
    code, spec = client.get("/openapi.json")
    assert code == 200
    assert {"/healthz", "/v1/tasks", "/v1/classify", "/v1/fraud/score"} <= set(spec["paths"])
    item = spec["components"]["schemas"]["ClassifyItem"]
    assert item["additionalProperties"] is False and set(item["required"]) == {"task", "text"}
    transaction = spec["components"]["schemas"]["Transaction"]
    assert len(transaction["required"]) == 30 and transaction["additionalProperties"] is False
    code, page = client.get("/docs")
    assert code == 200 and "swagger" in page.lower()


class FailingRegistry:
    """The real registry, except that classifying the text "explode" fails like a bug would."""

    def __init__(self, registry):
        self.registry, self.base_model = registry, registry.base_model

    def tasks(self):
        return self.registry.tasks()

    def classify(self, items):
        if any(text == "explode" for _, text, _ in items):
            raise RuntimeError("secret internal detail")
        return self.registry.classify(items)


def test_a_model_failure_is_a_generic_500_and_other_requests_still_succeed(registry, serving, caplog):
    with serving(create_app(FailingRegistry(registry), None, LIMITS)) as client:
        with ThreadPoolExecutor(2) as pool:
            failing = pool.submit(client.post, "/v1/classify", {**ITEM, "text": "explode"})
            fine = pool.submit(client.post, "/v1/classify", ITEM)
            (code, answer), (fine_code, fine_answer) = failing.result(), fine.result()
    assert code == 500 and answer == {"error": {"field": None,
                                                "message": "internal server error (details are in the server log)"}}
    assert "secret" not in json.dumps(answer) and "Traceback" not in json.dumps(answer)
    assert fine_code == 200 and fine_answer["task"] == "sent2"
