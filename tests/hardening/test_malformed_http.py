"""The malformed-input corpus, HTTP part: hostile requests to a real `adaptlab serve` app (uvicorn on loopback,
a tiny three-task adapter registry and a fraud model saved by `fraud run`).

The promise for every case, the server's form of the CLI's: a 4xx status, a JSON body
``{"error": {"field", "message"}}`` whose message is one line without a traceback, nothing logged at ERROR
(no 500, no traceback in the server log), no file written, and the server still answering a good request.
The serve tests check each endpoint's field-by-field messages; this table checks the promise across both
endpoints and the HTTP layer (methods, routes, content types, encodings, sizes, JSON oddities).
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import pytest

from adaptlab.fraud.data import FEATURES

TESTS = Path(__file__).parents[1]
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
pytest.importorskip("peft")


def _load(name: str, path: Path):
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


serve_fixtures = _load("hardening_serve_fixtures", TESTS / "serve" / "conftest.py")
# the server tests' fixtures, reused by name (pytest collects fixtures a test module imports)
tiny, tiny_family, registry_folder, registry, fraud_frame, fraud_runs = (
    serve_fixtures.tiny, serve_fixtures.tiny_family, serve_fixtures.registry_folder, serve_fixtures.registry,
    serve_fixtures.fraud_frame, serve_fixtures.fraud_runs)

MAX_BODY = 8_000
ITEM = {"task": "sent2", "text": "fine"}
PAIR = {"task": "nli3", "text": "a premise", "text_pair": "a hypothesis"}
CLASSIFY, FRAUD = "/v1/classify", "/v1/fraud/score"
TRANSACTION = {name: 0.5 for name in FEATURES}


def _j(value) -> bytes:
    return json.dumps(value).encode()


def _tx(**changes) -> bytes:
    return _j({"transactions": [{**TRANSACTION, **changes}]})


def _raw_tx(field: str, literal: str) -> bytes:
    """A transaction whose ``field`` holds ``literal`` verbatim (JSON that json.dumps would never write)."""
    body = _tx(**{field: 12345.0}).decode()
    return body.replace("12345.0", literal, 1).encode()


# (path, body bytes, extra headers or None, method, expected status)
CASES = {
    # ---- the HTTP layer
    "unknown route": ("/v1/nothing", _j(ITEM), None, "POST", 404),
    "route with a trailing part": (CLASSIFY + "/extra", _j(ITEM), None, "POST", 404),
    "GET on classify": (CLASSIFY, None, None, "GET", 405),
    "PUT on fraud": (FRAUD, _tx(), None, "PUT", 405),
    "DELETE on healthz": ("/healthz", None, None, "DELETE", 405),
    "text/plain body": (CLASSIFY, _j(ITEM), {"Content-Type": "text/plain"}, "POST", 415),
    "form body": (FRAUD, b"Time=1&V1=2", {"Content-Type": "application/x-www-form-urlencoded"}, "POST", 415),
    "multipart body": (CLASSIFY, b"--x\r\n\r\n--x--", {"Content-Type": "multipart/form-data; boundary=x"},
                       "POST", 415),
    "body over the limit": (CLASSIFY, _j({"items": [{**ITEM, "text": "x" * MAX_BODY}]}), None, "POST", 413),
    "fraud body over the limit": (FRAUD, _j({"transactions": [TRANSACTION] * 40}), None, "POST", 413),
    # ---- not JSON, or not the JSON we read
    "no body": (CLASSIFY, b"", None, "POST", 400),
    "truncated JSON": (CLASSIFY, b'{"task": "sent2", "text": "a",', None, "POST", 400),
    "trailing garbage": (CLASSIFY, _j(ITEM) + b" }", None, "POST", 400),
    "two JSON documents": (FRAUD, _tx() + _tx(), None, "POST", 400),
    "single quotes": (CLASSIFY, b"{'task': 'sent2', 'text': 'a'}", None, "POST", 400),
    "invalid UTF-8": (CLASSIFY, b'{"task": "sent2", "text": "\xff\xfe"}', None, "POST", 400),
    "NUL bytes": (FRAUD, b"\x00" * 64, None, "POST", 400),
    "deeply nested arrays": (CLASSIFY, b"[" * 3500 + b"]" * 3500, None, "POST", 400),
    "deeply nested objects": (FRAUD, b'{"a":' * 1200 + b"1" + b"}" * 1200, None, "POST", 400),
    "a bare string": (CLASSIFY, b'"sent2"', None, "POST", 422),
    "a bare number": (FRAUD, b"7", None, "POST", 422),
    "null": (CLASSIFY, b"null", None, "POST", 422),
    "a list of items": (CLASSIFY, _j([ITEM]), None, "POST", 422),
    "an empty object": (CLASSIFY, b"{}", None, "POST", 422),
    # ---- classify: fields
    "unknown task": (CLASSIFY, _j({**ITEM, "task": "sst9"}), None, "POST", 422),
    "task with a path": (CLASSIFY, _j({**ITEM, "task": "../../etc/passwd"}), None, "POST", 422),
    "empty task": (CLASSIFY, _j({**ITEM, "task": ""}), None, "POST", 422),
    "task is a number": (CLASSIFY, _j({**ITEM, "task": 3}), None, "POST", 422),
    "text is an object": (CLASSIFY, _j({**ITEM, "text": {"a": 1}}), None, "POST", 422),
    "text is NaN": (CLASSIFY, b'{"task": "sent2", "text": NaN}', None, "POST", 422),
    "empty text": (CLASSIFY, _j({**ITEM, "text": ""}), None, "POST", 422),
    "whitespace text": (CLASSIFY, _j({**ITEM, "text": "\u2003\n"}), None, "POST", 422),
    "over-long text": (CLASSIFY, _j({**ITEM, "text": "y" * 201}), None, "POST", 422),
    "lone surrogate": (CLASSIFY, b'{"task": "sent2", "text": "\\ud800"}', None, "POST", 422),
    "pair task without text_pair": (CLASSIFY, _j({"task": "nli3", "text": "one"}), None, "POST", 422),
    "single task with text_pair": (CLASSIFY, _j({**ITEM, "text_pair": "two"}), None, "POST", 422),
    "text_pair is a list": (CLASSIFY, _j({**PAIR, "text_pair": ["b"]}), None, "POST", 422),
    "unknown field": (CLASSIFY, _j({**ITEM, "label": "positive"}), None, "POST", 422),
    "items and a single item at once": (CLASSIFY, _j({"items": [ITEM], **ITEM}), None, "POST", 422),
    "items is an object": (CLASSIFY, _j({"items": ITEM}), None, "POST", 422),
    "items is empty": (CLASSIFY, _j({"items": []}), None, "POST", 422),
    "items over the batch limit": (CLASSIFY, _j({"items": [ITEM] * 17}), None, "POST", 422),
    "an item is a string": (CLASSIFY, _j({"items": [ITEM, "text"]}), None, "POST", 422),
    "an item is null": (CLASSIFY, _j({"items": [None]}), None, "POST", 422),
    "a bad item after good ones": (CLASSIFY, _j({"items": [ITEM, PAIR, {**PAIR, "task": "nope"}]}), None,
                                   "POST", 422),
    # ---- fraud: transactions
    "transactions missing": (FRAUD, _j({}), None, "POST", 422),
    "transactions is an object": (FRAUD, _j({"transactions": TRANSACTION}), None, "POST", 422),
    "transactions is empty": (FRAUD, _j({"transactions": []}), None, "POST", 422),
    "a transaction is a list": (FRAUD, _j({"transactions": [list(TRANSACTION.values())]}), None, "POST", 422),
    "a feature missing": (FRAUD, _j({"transactions": [{k: v for k, v in TRANSACTION.items() if k != "V7"}]}),
                          None, "POST", 422),
    "an extra column (the label)": (FRAUD, _tx(Class=1), None, "POST", 422),
    "a feature as text": (FRAUD, _tx(Amount="12.5"), None, "POST", 422),
    "a feature is true": (FRAUD, _tx(V3=True), None, "POST", 422),
    "a feature is null": (FRAUD, _tx(V3=None), None, "POST", 422),
    "a feature is an object": (FRAUD, _tx(V3={"value": 1}), None, "POST", 422),
    "NaN": (FRAUD, _raw_tx("V5", "NaN"), None, "POST", 422),
    "Infinity": (FRAUD, _raw_tx("V5", "Infinity"), None, "POST", 422),
    "-Infinity": (FRAUD, _raw_tx("Time", "-Infinity"), None, "POST", 422),
    "a float literal past float64": (FRAUD, _raw_tx("Amount", "1e400"), None, "POST", 422),
    "an integer of 5000 digits": (FRAUD, _raw_tx("Amount", "9" * 5000), None, "POST", 400),
    "overflows after standardising": (FRAUD, _tx(Amount=1e308), None, "POST", 422),
    "an unknown top-level field": (FRAUD, _j({"transactions": [TRANSACTION], "threshold": 0.0}), None, "POST",
                                   422),
}


@pytest.fixture(scope="module")
def server(registry, fraud_runs):
    from adaptlab.serve.app import ServeLimits, create_app
    from adaptlab.serve.fraud import ServedFraudScorer

    limits = ServeLimits(max_batch=16, max_text_chars=200, max_body_bytes=MAX_BODY, batch_window_ms=5)
    app = create_app(registry, ServedFraudScorer.load(fraud_runs["safe"]), limits)
    with serve_fixtures.running(app) as client:
        yield client


class _Errors(logging.Handler):
    """Every record at ERROR or above, from any logger (uvicorn logs an unhandled exception's traceback)."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.mark.parametrize("case", list(CASES))
def test_a_malformed_request_is_a_one_line_4xx_and_the_server_carries_on(server, tmp_path, monkeypatch, case):
    path, body, headers, method, status = CASES[case]
    monkeypatch.chdir(tmp_path)
    errors = _Errors()
    logging.getLogger().addHandler(errors)
    try:
        code, answer = server.request(method, path, raw=body, headers=headers)
    finally:
        logging.getLogger().removeHandler(errors)
    assert code == status, (code, answer)
    assert isinstance(answer, dict) and set(answer) == {"error"}, answer
    message = answer["error"]["message"]
    assert isinstance(message, str) and message and "\n" not in message and "Traceback" not in message
    assert len(message) < 300, message  # a sentence, not an echo of the hostile body
    assert [r.getMessage() for r in errors.records] == []
    assert list(tmp_path.iterdir()) == []
    target = FRAUD if path == FRAUD else CLASSIFY
    assert server.request("POST", target, raw=_tx() if target == FRAUD else _j(PAIR))[0] == 200


def test_the_corpus_covers_both_endpoints_and_the_http_layer():
    statuses = {case[4] for case in CASES.values()}
    assert statuses == {400, 404, 405, 413, 415, 422}
    assert sum(case[0] == CLASSIFY for case in CASES.values()) >= 25
    assert sum(case[0] == FRAUD for case in CASES.values()) >= 20


@pytest.mark.parametrize("case, words", [("deeply nested arrays", "malformed JSON: nested too deeply"),
                                         ("deeply nested objects", "malformed JSON: nested too deeply"),
                                         ("an integer of 5000 digits", f"a number has more than {sys.get_int_max_str_digits():,} digits")])
def test_json_the_reader_gives_up_on_says_why(server, case, words):
    path, body, headers, method, status = CASES[case]
    code, answer = server.request(method, path, raw=body, headers=headers)
    assert code == 400 and words in answer["error"]["message"]
