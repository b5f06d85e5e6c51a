"""The FastAPI application: routes, the checks that need the loaded models, and the batcher's lifetime.

``create_app(registry, fraud, limits)`` is what ``adaptlab serve`` runs; a Python user can serve the same
app with any ASGI server. ``registry`` is an :class:`adaptlab.adapters.registry.AdapterRegistry` (or None),
``fraud`` a :class:`adaptlab.serve.fraud.ServedFraudScorer` (or None).
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from dataclasses import dataclass

import numpy as np
from fastapi import FastAPI

from adaptlab import __version__
from adaptlab.serve.batching import MicroBatcher
from adaptlab.serve.errors import ApiError, BodySizeLimit, install_error_handlers
from adaptlab.serve.schemas import (ClassifyBatch, ClassifyItem, ClassifyRequest, ClassifyResults, ErrorResponse,
                                    FraudDescription, FraudRequest, FraudResults, FraudScore, Health, Limits,
                                    Prediction, TaskDescription, TasksResponse)


@dataclass(frozen=True)
class ServeLimits:
    max_batch: int = 64  # items (or transactions) per request, and per model call
    max_text_chars: int = 2000  # per text; the model truncates to its own token limit anyway
    max_body_bytes: int = 1_000_000
    batch_window_ms: float = 5.0  # how long the first waiting item waits for others to join its batch

    def problems(self) -> list[str]:
        problems = [f"--{name.replace('_', '-')} must be a positive integer, not {value!r}"
                    for name, value in (("max_batch", self.max_batch), ("max_text_chars", self.max_text_chars),
                                        ("max_body_bytes", self.max_body_bytes)) if value < 1]
        if not 0 <= self.batch_window_ms <= 1000:
            problems.append(f"--batch-window-ms must be between 0 and 1000, not {self.batch_window_ms!r}")
        return problems


ERROR_RESPONSES = {status: {"model": ErrorResponse, "description": text} for status, text in (
    (400, "malformed JSON"), (404, "not served here"), (413, "request body too large"), (415, "the body is not JSON"),
    (422, "invalid request: the error names the field"))}


def create_app(registry=None, fraud=None, limits: ServeLimits = ServeLimits()) -> FastAPI:
    tasks = {task.name: task for task in registry.tasks()} if registry is not None else {}
    batcher = (MicroBatcher(registry.classify, max_batch=limits.max_batch,
                            window_seconds=limits.batch_window_ms / 1000) if registry is not None else None)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if batcher is not None:
            batcher.start()
        try:
            yield
        finally:
            if batcher is not None:
                await batcher.stop()

    app = FastAPI(title="adaptlab", version=__version__, lifespan=lifespan,
                  description="Text classification with task adapters on one frozen base model, "
                              "and fraud scoring with a model saved by `adaptlab fraud run`.")
    app.state.batcher = batcher
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=limits.max_body_bytes)

    @app.get("/healthz", response_model=Health)
    async def healthz():
        return Health(status="ok", tasks=len(tasks), fraud=fraud is not None)

    @app.get("/v1/tasks", response_model=TasksResponse)
    async def list_tasks():
        return TasksResponse(
            base_model=registry.base_model if registry is not None else None,
            tasks=[TaskDescription(name=t.name, labels=list(t.labels), input=t.input, base_model=t.base_model)
                   for t in tasks.values()],
            fraud=(FraudDescription(available=True, features=fraud.features, threshold=fraud.threshold,
                                    leaky=fraud.warning is not None) if fraud is not None
                   else FraudDescription(available=False)),
            limits=Limits(max_batch=limits.max_batch, max_text_chars=limits.max_text_chars,
                          max_body_bytes=limits.max_body_bytes))

    @app.post("/v1/classify", response_model=ClassifyResults | Prediction, responses=ERROR_RESPONSES,
              summary="Classify one item, or a batch of items for any mix of tasks")
    async def classify(body: ClassifyRequest):
        batch = isinstance(body, ClassifyBatch)
        items = body.items if batch else [body]
        _check_count(len(items), "items" if batch else None, limits.max_batch)
        checked = [_check_item(item, f"items[{i}]." if batch else "", tasks, limits.max_text_chars)
                   for i, item in enumerate(items)]
        predictions = [Prediction(task=p.task, label=p.label,
                                  probabilities={k: float(v) for k, v in p.probabilities.items()})
                       for p in await batcher.submit(checked)]
        return ClassifyResults(results=predictions) if batch else predictions[0]

    @app.post("/v1/fraud/score", response_model=FraudResults, responses=ERROR_RESPONSES,
              summary="Fraud probability and decision (at the model's saved threshold) per transaction")
    async def score_fraud(body: FraudRequest):
        if fraud is None:
            raise ApiError(404, None, "fraud scoring is not served here (start the server with --fraud-model)")
        _check_count(len(body.transactions), "transactions", limits.max_batch)
        rows = np.array([[getattr(t, name) for name in fraud.features] for t in body.transactions],
                        dtype=np.float64)
        standardised, unscorable = fraud.standardise(rows)
        if unscorable.size:
            raise ApiError(422, f"transactions[{unscorable[0]}]",
                           "features too large for the model: they overflow after standardising")
        probability, decision = await asyncio.to_thread(fraud.score_standardised, standardised)
        return FraudResults(threshold=fraud.threshold, warning=fraud.warning,
                            results=[FraudScore(probability=float(p), fraud=bool(d))
                                     for p, d in zip(probability, decision)])

    return app


def _check_count(count: int, field: str | None, max_batch: int) -> None:
    if count == 0:
        raise ApiError(422, field, "must hold at least one item")
    if count > max_batch:
        raise ApiError(422, field, f"{count} items is over this server's limit of {max_batch} per request; "
                                   "split the batch")


def _check_item(item: ClassifyItem, prefix: str, tasks: dict, max_chars: int) -> tuple[str, str, str | None]:
    """The registry's ``(task, text, text_pair)`` for a schema-valid item, or an ApiError naming the field."""
    task = tasks.get(item.task)
    if task is None:
        served = ", ".join(sorted(tasks)) or "none (the server was started without --adapters)"
        raise ApiError(422, f"{prefix}task", f"unknown task {item.task!r}; tasks served: {served}")
    for name, value in (("text", item.text), ("text_pair", item.text_pair)):
        if value is None:
            continue
        if not value.strip():
            raise ApiError(422, prefix + name, "must not be empty or blank")
        if len(value) > max_chars:
            raise ApiError(422, prefix + name, f"is {len(value):,} characters; the limit is {max_chars:,}")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate escape such as "\ud800" is valid JSON, not valid text
            raise ApiError(422, prefix + name, "must be valid Unicode text (it holds a lone surrogate)") from None
    if task.input == "pair" and item.text_pair is None:
        raise ApiError(422, f"{prefix}text_pair", f"task {task.name!r} classifies text pairs: give text and "
                                                  "text_pair")
    if task.input != "pair" and item.text_pair is not None:
        raise ApiError(422, f"{prefix}text_pair", f"task {task.name!r} classifies single texts: leave out "
                                                  "text_pair")
    return item.task, item.text, item.text_pair
