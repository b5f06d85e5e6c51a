"""Request and response bodies of the HTTP API, as pydantic models: FastAPI validates requests against them
and publishes them in the OpenAPI document (/openapi.json, /docs).

Every request model forbids unknown fields and is strict: a number given as a string, a text given as a
number or a boolean given as a number is refused instead of silently converted, and non-finite numbers
(NaN/Infinity, which Python's JSON parser accepts) are refused too. Limits that the operator configures
(text length, batch size) and checks that need the loaded models (known task, single text or pair) are
applied by the routes, which name the offending field the same way.
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, create_model

from adaptlab.fraud.data import FEATURES

REQUEST_CONFIG = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class ClassifyItem(BaseModel):
    """One text (or text pair) for one task."""

    model_config = REQUEST_CONFIG
    task: str = Field(description="a task name listed by GET /v1/tasks")
    text: str = Field(description="the text, or the first text of a pair (e.g. an NLI premise)")
    text_pair: str | None = Field(default=None, description="the second text, for pair tasks only "
                                                            "(e.g. an NLI hypothesis)")


class ClassifyBatch(BaseModel):
    """Several items, for one task or a mix of tasks, answered in order."""

    model_config = REQUEST_CONFIG
    items: list[ClassifyItem] = Field(description="the items; at most the server's max_batch")


def _classify_shape(body) -> str:
    # A body with "items" is a batch, anything else is one item: each shape then reports its own field
    # errors, instead of a union reporting why the body fits neither shape.
    return "batch" if isinstance(body, dict) and "items" in body else "item"


ClassifyRequest = Annotated[
    Union[Annotated[ClassifyBatch, Tag("batch")], Annotated[ClassifyItem, Tag("item")]],
    Discriminator(_classify_shape),
]
# The tags name the shapes, not fields: left out of an error's field path.
SHAPE_TAGS = ("batch", "item")


class Prediction(BaseModel):
    task: str
    label: str = Field(description="the most probable label")
    probabilities: dict[str, float] = Field(description="every label of the task with its probability")


class ClassifyResults(BaseModel):
    results: list[Prediction] = Field(description="one per item, in the order of the request")


# One transaction: every model feature, each a required finite number, nothing else.
Transaction = create_model(
    "Transaction",
    __config__=REQUEST_CONFIG,
    **{name: (float, Field(description="seconds since the first transaction" if name == "Time" else None))
       for name in FEATURES},
)


class FraudRequest(BaseModel):
    model_config = REQUEST_CONFIG
    transactions: list[Transaction] = Field(description="the transactions to score; at most max_batch")


class FraudScore(BaseModel):
    probability: float = Field(description="the model's fraud probability")
    fraud: bool = Field(description="probability >= the model's saved threshold")


class FraudResults(BaseModel):
    threshold: float = Field(description="the decision threshold saved with the model")
    results: list[FraudScore] = Field(description="one per transaction, in the order of the request")
    warning: str | None = Field(default=None, description="set when the model is LEAKY (served only because "
                                                          "the operator allowed it)")


class TaskDescription(BaseModel):
    name: str
    labels: list[str]
    input: Literal["single", "pair"] = Field(description="single: give text; pair: give text and text_pair")
    base_model: str


class FraudDescription(BaseModel):
    available: bool
    features: list[str] = Field(default_factory=list)
    threshold: float | None = None
    leaky: bool = False


class Limits(BaseModel):
    max_batch: int
    max_text_chars: int
    max_body_bytes: int


class TasksResponse(BaseModel):
    base_model: str | None = Field(description="the frozen base every adapter runs on (null: no adapters)")
    tasks: list[TaskDescription]
    fraud: FraudDescription
    limits: Limits


class Health(BaseModel):
    status: Literal["ok"]
    tasks: int
    fraud: bool


class ErrorDetail(BaseModel):
    field: str | None = Field(description="where in the request the problem is, e.g. items[3].text "
                                          "(null: the request as a whole)")
    message: str


class ErrorResponse(BaseModel):
    error: ErrorDetail
