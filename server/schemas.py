"""Every request and response shape of the API, declared once as pydantic models.

The OpenAPI document (server/openapi.py) takes its component schemas from these declarations, and the
request bodies are validated by them (`PredictRequest` in server/uploads.py, `FeedbackRequest` in
server/feedback/routes.py, `FeedbackFields` for every report in server/feedback/store.py, the app's too), so what
the document says is what the server checks. The metadata of a model is the
one exception: its fields are declared in the metadata table (realcheck.model.artifacts.metadata), which types every
artifact's metadata.json.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError
from pydantic.json_schema import models_json_schema

from realcheck.model.scoring.provenance import C2PA_STATES

MAX_NOTE_CHARS = 1000
MAX_MODEL_NAME_CHARS = 200
MAX_MODEL_VERSION_CHARS = 100
# A program's name, never a person: letters, digits and . _ / - only.
CLIENT_PATTERN = "^[A-Za-z0-9._/-]{1,40}$"

Verdict = Literal["ai", "real", "uncertain"]
Sha256 = Annotated[str, Field(description="SHA-256 of the image bytes (hex)")]
C2paState = Literal[C2PA_STATES]  # type: ignore[valid-type]  # the tuple's values, as one enum
REF = "#/components/schemas/{model}"


class ErrorDetail(BaseModel):
    code: str = Field(examples=["invalid_image"])
    message: str


class Error(BaseModel):
    error: ErrorDetail


class Instance(BaseModel):
    b64: str = Field(description="base64 image bytes", json_schema_extra={"format": "byte"})
    name: Any = Field(None, description="echoed back as filename (when a string)")


class PredictRequest(BaseModel):
    """`{"instances": [{"b64": ...}]}`: at least one (none is a 400 no_images), at most --max-images."""

    instances: list[Instance]


# The three ranges every face shows beside a score, and the sentence of how far verdicts go: the same in
# predict answers (each prediction and the decision) and in /v1/models.
RealBelow = Annotated[
    float, Field(description="the model calls a score below this `real` (shown as no AI signs found)")
]
AiAbove = Annotated[
    float, Field(description="the model calls a score above this `ai`; between the two, `uncertain`")
]
AccuracyStatement = Annotated[
    str,
    Field(
        description="one plain sentence of how good the model is, from the verdict rates its metadata measured "
        "on held-out data (or that they were not measured)"
    ),
]


class Evidence(BaseModel):
    kind: Literal["c2pa", "digital_source_type", "generator", "camera"]
    says: Literal["ai", "capture", "edited", "unknown", "hint"]
    trust: Literal[(*C2PA_STATES, "declared", "hint")]  # type: ignore[valid-type]
    source: str
    detail: str


class C2paAction(BaseModel):
    action: str | None = None
    digital_source_type: str | None = None
    software_agent: str | None = None


class C2paManifest(BaseModel):
    """The active C2PA manifest."""

    state: C2paState  # pyright: ignore[reportInvalidTypeForm]  (an enum of C2PA_STATES)
    claim_generator: str | None = None
    signer: str | None = None
    issuer: str | None = None
    signed_at: str | None = None
    actions: list[C2paAction] = []
    ingredients: list[str] = []
    ingredient_source_types: list[str] = Field(
        [], description="digital source types the ingredients' own manifests declare"
    )
    failures: list[str] = Field([], description="C2PA validation failure codes")
    remote_url: str | None = Field(None, description="a remote manifest's address, not fetched")
    message: str | None = None


class Provenance(BaseModel):
    """What the image's own bytes declare about its origin (never fetched from elsewhere)."""

    declares_ai: bool = Field(description="the evidence that decides `ai`")
    signed_capture: bool = Field(
        description="an intact C2PA manifest says a camera captured it (shown, never decisive)"
    )
    summary: str = Field(description="one line: the strongest finding and its trust")
    explanation: str = Field(
        description="what the file says about its origin and how far that goes, in plain sentences"
    )
    evidence: list[Evidence]
    c2pa: C2paManifest | None = Field(description="the active C2PA manifest; null when the file carries none")


class Prediction(BaseModel):
    score: float = Field(ge=0, le=1, description="P(AI) from the pixels (the model's, whatever the basis)")
    verdict: Verdict = Field(description="the decision, resting on `basis`")
    basis: Literal["model", "provenance"] = Field(
        description="`provenance` when an intact C2PA manifest or an explicit metadata declaration says the "
        "image is AI-generated; otherwise `model`"
    )
    model_verdict: Verdict
    provenance: Provenance
    threshold: float
    real_below: RealBelow
    ai_above: AiAbove
    image_rule: Literal["main", "small_image", "compressed_image"] = Field(
        description="the rule whose threshold and ranges gave `model_verdict`: the model's rule for the image's "
        "condition (`small_image`: small for the model's window; `compressed_image`: a JPEG saved at a low "
        "quality) where the model has one, else `main`"
    )
    sha256: Sha256
    cached: bool
    time_ms: float = Field(description="decode, queue and model time")
    filename: str | None = None


class ImageError(BaseModel):
    """An image of a multi-image request that could not be decoded."""

    error: ErrorDetail
    sha256: Sha256
    filename: str | None = None


class ModelRef(BaseModel):
    name: str
    version: str


class ImageRule(BaseModel):
    threshold: float
    uncertainty_band: list[float]
    real_below: RealBelow
    ai_above: AiAbove
    applies_to: str = Field(description="the images it decides, in words")


class Decision(BaseModel):
    threshold: float | None = None
    uncertainty_band: list[float] | None = None
    real_below: RealBelow | None = None
    ai_above: AiAbove | None = None
    small_image_rule: ImageRule | None = Field(
        default=None, description="the rule for images small for the model's window, where the model has one"
    )
    compressed_image_rule: ImageRule | None = Field(
        default=None, description="the rule for heavily compressed JPEG files, where the model has one"
    )
    accuracy_statement: AccuracyStatement | None = None


class PredictResponse(BaseModel):
    model: ModelRef
    decision: Decision | None = None
    predictions: list[Prediction | ImageError] = Field(
        description="one entry per image, in request order; in a request of several images, one that cannot "
        "be decoded gets an ImageError and the others are scored"
    )
    time_ms: float | None = None


class UploadLimits(BaseModel):
    """What /v1/predict accepts (larger requests are refused with a 413)."""

    max_image_bytes: int = Field(ge=1, description="per image")
    max_request_bytes: int = Field(ge=1, description="per request body")
    max_images_per_request: int = Field(ge=1)


class ModelList(BaseModel):
    # `Model` is the metadata table's schema (server/openapi.py): referenced here, declared there.
    models: list[dict] = Field(json_schema_extra={"items": {"$ref": REF.format(model="Model")}})
    limits: UploadLimits


class Status(BaseModel):
    status: str
    model: ModelRef | None = None
    runtime: dict | None = None
    message: str | None = None


# Text is measured without the spaces around it, which are dropped.
ModelName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_MODEL_NAME_CHARS)
]
ModelVersion = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_MODEL_VERSION_CHARS)
]
Note = Annotated[str, StringConstraints(strip_whitespace=True, max_length=MAX_NOTE_CHARS)]
Sha256Hex = Annotated[str, StringConstraints(strip_whitespace=True, pattern="^[0-9a-fA-F]{64}$")]


class ReportedModel(BaseModel):
    """The model as the prediction named it."""

    model_config = ConfigDict(extra="forbid")

    name: ModelName
    version: ModelVersion


class FeedbackFields(BaseModel):
    """What a report says, however it arrives (the API's JSON, the app)."""

    sha256: Sha256Hex = Field(description="SHA-256 of the image bytes (hex)")
    label: Literal["ai", "real"] = Field(description="what the user says the image is")
    model: ReportedModel
    # Strict: true and "0.5" are not scores.
    score: float = Field(ge=0, le=1, strict=True, allow_inf_nan=False, description="the P(AI) the user saw")
    verdict: Verdict | None = None
    note: Note | None = None
    client: str | None = Field(None, pattern=CLIENT_PATTERN)


class FeedbackRequest(FeedbackFields):
    """A report of a wrong verdict; fields it does not name are refused."""

    model_config = ConfigDict(extra="forbid")

    image_b64: str | None = Field(
        None,
        description="the image bytes, base64 (at most the server's --max-image-mb decoded); only when the user "
        "agreed to share them",
        json_schema_extra={"format": "byte"},
    )


class FeedbackReport(FeedbackFields):
    id: int
    created_at: datetime
    image_shared: bool = Field(description="this report came with the image bytes")


class FeedbackCreated(BaseModel):
    report: FeedbackReport


class FeedbackList(BaseModel):
    reports: list[FeedbackReport]
    total: int = Field(description="reports stored in all")
    next_after: int | None = Field(description="pass as after for the next page; null on the last page")


# Which field's declaration a report failed: the error code a client can act on.
FIELD_CODES = {
    "sha256": "invalid_sha256",
    "label": "invalid_label",
    "model": "invalid_model",
    "score": "invalid_score",
    "verdict": "invalid_verdict",
    "note": "invalid_note",
    "client": "invalid_client",
    "image_b64": "invalid_base64",
}


def report_error(error: ValidationError) -> tuple[str, str]:
    """(message, code) of the first field a report got wrong."""
    first = error.errors(include_url=False, include_input=False)[0]
    field = str(first["loc"][0])
    if field == "note" and first["type"] == "string_too_long":
        return f"note is over {MAX_NOTE_CHARS} characters", "note_too_long"
    return f"{'.'.join(str(part) for part in first['loc'])}: {first['msg']}", FIELD_CODES[field]


COMPONENTS = (
    Error,
    PredictRequest,
    PredictResponse,
    ModelList,
    Status,
    FeedbackRequest,
    FeedbackCreated,
    FeedbackList,
)


def component_schemas() -> dict[str, dict]:
    """The OpenAPI 3.1 component schemas of every declared shape (and the shapes they use)."""
    _, document = models_json_schema([(model, "validation") for model in COMPONENTS], ref_template=REF)
    return document["$defs"]
