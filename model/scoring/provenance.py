"""Provenance beside pixels: what an image's own bytes declare about where it came from.

The model's score is a guess from pixels; a declaration in the file is evidence of another kind, and the
two are kept apart. Read here, from the bytes only and never from the network:

- C2PA Content Credentials (through `c2pa-python`): the active manifest's claim generator, signer and
  issuer, validation state, actions with their digital source type, and ingredients. A manifest kept at a
  remote URL is reported, never fetched (fetching would let any uploaded file make the server call a URL
  of its choice).
- IPTC DigitalSourceType in XMP (`trainedAlgorithmicMedia` and its kin).
- Generator settings that Stable Diffusion front ends write (AUTOMATIC1111 `parameters`, ComfyUI
  `prompt`/`workflow`, InvokeAI, NovelAI) in PNG text chunks or EXIF, and EXIF/XMP software fields that
  name a generator.
- Camera make and model from EXIF, as a hint only: anyone can write them.

`Provenance.declares_ai` is all the verdict takes from here (`realcheck.model.scoring.decision.decide`): an intact
manifest or an explicit metadata declaration that the image is AI-generated makes it `ai`; nothing else
overrides the model, and missing metadata is never evidence of anything.
"""

from __future__ import annotations

import io
import json
import re
import struct
from dataclasses import asdict, dataclass, field
from pathlib import Path

from PIL import Image

from realcheck.model.errors import RealCheckError

IPTC_SOURCE_TYPE_PREFIX = "http://cv.iptc.org/newscodes/digitalsourcetype/"
# Made by an algorithm, not captured: `trainedAlgorithmicData` is C2PA's older name for the first.
GENERATED_SOURCE_TYPES = frozenset(
    {
        "trainedAlgorithmicMedia",
        "compositeWithTrainedAlgorithmicMedia",
        "algorithmicMedia",
        "trainedAlgorithmicData",
    }
)
CAPTURE_SOURCE_TYPES = frozenset(
    {"digitalCapture", "computationalCapture", "negativeFilm", "positiveFilm", "print", "compositeCapture"}
)
# C2PA states, from the most to the least trustworthy. `trusted`: intact and signed by a certificate that
# chains to a configured trust anchor; `valid`: intact, signer not on any configured list; `tampered`: the
# image or the manifest changed after signing; `remote`: the manifest is elsewhere (not fetched);
# `unreadable`: present but malformed.
C2PA_STATES = ("trusted", "valid", "tampered", "remote", "unreadable")
INTACT_C2PA_STATES = frozenset({"trusted", "valid"})
# Trust levels of evidence that may decide a verdict: an intact manifest, or a declaration in metadata.
DECISIVE_TRUST = frozenset({"trusted", "valid", "declared"})

# Software names that only a generator writes into EXIF Software or XMP CreatorTool (matched as words,
# case-insensitively). Conservative on purpose: calling a real photo AI is the costliest mistake, so
# editors (Photoshop, GIMP) and phone makers are not here even where they offer generative tools.
GENERATOR_SOFTWARE = (
    "Stable Diffusion",
    "AUTOMATIC1111",
    "ComfyUI",
    "InvokeAI",
    "NovelAI",
    "Midjourney",
    "DALL-E",
    "DALL·E",
    "Adobe Firefly",
    "DreamStudio",
    "Leonardo.Ai",
    "Ideogram",
    "Craiyon",
    "NightCafe",
    "Bing Image Creator",
)
_GENERATOR_PATTERN = re.compile(
    r"(?<![\w])(" + "|".join(re.escape(name) for name in GENERATOR_SOFTWARE) + r")(?![\w])", re.IGNORECASE
)
# PNG text keys a generator front end writes, and what they mean.
GENERATOR_TEXT_KEYS = {
    "parameters": "Stable Diffusion settings (AUTOMATIC1111 / Forge format)",
    "prompt": "ComfyUI prompt graph",
    "workflow": "ComfyUI workflow",
    "invokeai_metadata": "InvokeAI settings",
    "sd-metadata": "InvokeAI settings",
    "Dream": "InvokeAI settings",
}
# Text longer than this is not looked into (a hostile file can carry megabytes of "metadata").
MAX_TEXT_CHARS = 1_000_000
MAX_DETAIL_CHARS = 200
# The C2PA library's reading time grows faster than the number of boxes in a store (10,000 assertions: 17 s
# of CPU); real manifests hold tens. Beyond this the store is reported unreadable and the model decides.
MAX_C2PA_BOXES = 1000
EXIF_MAKE, EXIF_MODEL, EXIF_SOFTWARE, EXIF_IFD, EXIF_USER_COMMENT = 0x010F, 0x0110, 0x0131, 0x8769, 0x9286
TIFF_C2PA_TAG = 52545
_SOURCE_TYPE_IN_XMP = re.compile(
    r"DigitalSourceType\s*(?:=\s*[\"']|>\s*|[^>]{0,200}?rdf:resource\s*=\s*[\"'])([^\"'<\s]{1,300})"
)
_CHECKPOINT_IN_SETTINGS = re.compile(r"(?:^|[,\n]\s*)Model:\s*([^,\n]{1,100})")
_CREATOR_TOOL_IN_XMP = re.compile(r"CreatorTool\s*(?:=\s*[\"']|>\s*)([^\"'<]{1,300})")
_C2PA_MIME = {
    "JPEG": "image/jpeg",
    "MPO": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "TIFF": "image/tiff",
    "GIF": "image/gif",
}


@dataclass(frozen=True)
class Evidence:
    """One finding: what kind, what it says (ai, capture, edited, unknown, hint), how far to trust it."""

    kind: str  # "c2pa", "digital_source_type", "generator", "camera"
    says: str
    trust: str  # a C2PA state, "declared" (unsigned metadata) or "hint"
    source: str  # where in the file it was found
    detail: str


@dataclass(frozen=True)
class C2paAction:
    action: str
    digital_source_type: str | None = None
    software_agent: str | None = None


@dataclass(frozen=True)
class C2paManifest:
    """The active C2PA manifest as far as it could be read, with its validation state."""

    state: str
    claim_generator: str | None = None
    signer: str | None = None
    issuer: str | None = None
    signed_at: str | None = None
    actions: tuple[C2paAction, ...] = ()
    ingredients: tuple[str, ...] = ()
    # Digital source types that the ingredients' own manifests declare (an edit of a generated image).
    ingredient_source_types: tuple[str, ...] = ()
    failures: tuple[str, ...] = ()
    remote_url: str | None = None
    message: str | None = None

    @property
    def source_types(self) -> set[str]:
        """The digital source types this manifest's actions and its ingredients' manifests declare."""
        own = {action.digital_source_type for action in self.actions if action.digital_source_type}
        return own | set(self.ingredient_source_types)


@dataclass(frozen=True)
class Provenance:
    """Everything the file declares about its origin; empty when it declares nothing."""

    evidence: tuple[Evidence, ...] = ()
    c2pa: C2paManifest | None = None

    @property
    def declares_ai(self) -> bool:
        """An intact manifest or a metadata declaration says the image was generated."""
        return any(item.says == "ai" and item.trust in DECISIVE_TRUST for item in self.evidence)

    @property
    def signed_capture(self) -> bool:
        """An intact C2PA manifest says a camera captured it (shown, never a verdict by itself)."""
        return any(
            item.kind == "c2pa" and item.says == "capture" and item.trust in INTACT_C2PA_STATES
            for item in self.evidence
        )

    @property
    def summary(self) -> str:
        """One line for people: the strongest finding, or that the file declares nothing."""
        strongest = self._strongest()
        return "no provenance metadata" if strongest is None else _describe(strongest, self.c2pa)

    @property
    def explanation(self) -> str:
        """What the file says about its origin, in plain sentences, before any code or trust label."""
        strongest = self._strongest()
        return NOTHING_DECLARED if strongest is None else _explain(strongest, self.c2pa)

    def _strongest(self) -> Evidence | None:
        """The finding people are told of first: a decisive AI declaration, else the C2PA manifest, else any."""
        if not self.evidence:
            return None
        decisive = [item for item in self.evidence if item.says == "ai" and item.trust in DECISIVE_TRUST]
        return (decisive or [item for item in self.evidence if item.kind == "c2pa"] or self.evidence)[0]

    def to_dict(self) -> dict:
        """The JSON form the API, `check --json` and `scan` share."""
        return {
            "declares_ai": self.declares_ai,
            "signed_capture": self.signed_capture,
            "summary": self.summary,
            "explanation": self.explanation,
            "evidence": [asdict(item) for item in self.evidence],
            "c2pa": None if self.c2pa is None else asdict(self.c2pa),
        }


NO_PROVENANCE = Provenance()


@dataclass
class ProvenanceReader:
    """Reads provenance from image bytes; `trust_anchors_pem` makes signers under those roots `trusted`.

    Never raises for a damaged or hostile file: what cannot be read is reported as such.
    """

    trust_anchors_pem: str | None = None
    _settings: dict = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # Remote manifests and OCSP would make the reader fetch URLs that the uploaded file chooses.
        verify = {"remote_manifest_fetch": False, "ocsp_fetch": False}
        self._settings = {"verify": verify}
        if self.trust_anchors_pem:
            self._settings["trust"] = {"trust_anchors": self.trust_anchors_pem}

    @classmethod
    def from_trust_anchors_file(cls, path: str | Path | None) -> ProvenanceReader:
        """A reader trusting the root certificates in the PEM file at `path` (none when `path` is None)."""
        if path is None:
            return cls()
        try:
            text = Path(path).read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as error:
            raise RealCheckError(f"cannot read C2PA trust anchors from {path}: {error}") from None
        if "-----BEGIN CERTIFICATE-----" not in text:
            raise RealCheckError(f"{path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)")
        return cls(text)

    def read(self, data: bytes) -> Provenance:
        """The provenance of one image's bytes (empty for non-images and files that declare nothing)."""
        # No warnings.catch_warnings here: it swaps process-wide filters, which races in the server's request
        # threads. Callers read provenance after the decode path accepted the image, so its header is sane.
        try:
            image = Image.open(io.BytesIO(data))  # the header only: no pixel is decoded here
            return self._read(data, image)
        except Exception:  # an undecodable file has no provenance; the decode path reports why
            return NO_PROVENANCE

    def _read(self, data: bytes, image: Image.Image) -> Provenance:
        xmp = _xmp_text(image)
        evidence: list[Evidence] = []
        manifest = None
        if _may_carry_c2pa(data, image, xmp):
            boxes = data.count(b"jumd")  # one JUMBF description box per manifest, assertion or ingredient
            if boxes > MAX_C2PA_BOXES:
                manifest = C2paManifest(
                    "unreadable",
                    message=f"Content Credentials too large to read: {boxes:,} parts, over the {MAX_C2PA_BOXES:,} "
                    "RealCheck reads",
                )
            else:
                manifest = self._read_c2pa(data, image.format)
            if manifest is not None:
                evidence.append(_c2pa_evidence(manifest))
        evidence += _xmp_evidence(xmp)
        exif = _exif(image)
        evidence += _generator_evidence(image, exif)
        evidence += _camera_evidence(exif)
        return Provenance(tuple(evidence), manifest)

    def _read_c2pa(self, data: bytes, image_format: str | None) -> C2paManifest | None:
        import c2pa

        mime = _C2PA_MIME.get(image_format or "")
        if mime is None:
            return None
        try:
            context = c2pa.Context(c2pa.Settings.from_dict(self._settings))
            reader = c2pa.Reader.try_create(mime, io.BytesIO(data), context=context)
        except Exception as error:
            return _c2pa_failure(str(error))
        if reader is None:
            return None
        try:
            return _manifest_from_reader(reader)
        except Exception as error:
            return C2paManifest("unreadable", message=_bounded(str(error)))
        finally:
            reader.close()


def _c2pa_failure(message: str) -> C2paManifest:
    remote = re.search(r"remote manifests? from url (\S+)", message)
    if remote:
        return C2paManifest(
            "remote", remote_url=_bounded(remote.group(1)), message="remote manifest not fetched"
        )
    return C2paManifest("unreadable", message=_bounded(message))


def _manifest_from_reader(reader) -> C2paManifest:
    store = json.loads(reader.json())
    manifests = store.get("manifests") if isinstance(store.get("manifests"), dict) else {}
    active = manifests.get(store.get("active_manifest")) or {}
    results = (reader.get_validation_results() or {}).get("activeManifest") or {}
    failures = tuple(str(item.get("code")) for item in results.get("failure", []) if isinstance(item, dict))
    state = {"Trusted": "trusted", "Valid": "valid"}.get(str(reader.get_validation_state()), "tampered")
    signature = active.get("signature_info") or {}
    return C2paManifest(
        state=state,
        claim_generator=_claim_generator(active),
        signer=_bounded(signature.get("common_name")),
        issuer=_bounded(signature.get("issuer")),
        signed_at=_bounded(signature.get("time")),
        actions=tuple(_actions(active)),
        ingredients=tuple(
            _bounded(str(item.get("title") or "untitled"))
            for item in active.get("ingredients", [])[:20]
            if isinstance(item, dict)
        ),
        ingredient_source_types=tuple(sorted(_ingredient_source_types(active, manifests))),
        failures=failures[:20],
    )


def _ingredient_source_types(manifest: dict, manifests: dict, depth: int = 0) -> set[str]:
    """Source types declared along the ingredient chain (bounded: a store may nest or loop its references)."""
    found: set[str] = set()
    if depth >= 8:
        return found
    for item in manifest.get("ingredients", [])[:20]:
        parent = manifests.get(item.get("active_manifest")) if isinstance(item, dict) else None
        if isinstance(parent, dict) and parent is not manifest:
            found |= {action.digital_source_type for action in _actions(parent) if action.digital_source_type}
            found |= _ingredient_source_types(parent, manifests, depth + 1)
    return found


def _claim_generator(manifest: dict) -> str | None:
    infos = manifest.get("claim_generator_info")
    if isinstance(infos, list) and infos and isinstance(infos[0], dict) and infos[0].get("name"):
        first = infos[0]
        return _bounded(" ".join(str(part) for part in (first.get("name"), first.get("version")) if part))
    return _bounded(manifest.get("claim_generator"))


def _actions(manifest: dict):
    for assertion in manifest.get("assertions", [])[:50]:
        if not isinstance(assertion, dict) or not str(assertion.get("label", "")).startswith("c2pa.actions"):
            continue
        for action in (assertion.get("data") or {}).get("actions", [])[:50]:
            if not isinstance(action, dict):
                continue
            agent = action.get("softwareAgent")
            if isinstance(agent, dict):
                agent = " ".join(str(part) for part in (agent.get("name"), agent.get("version")) if part)
            yield C2paAction(
                action=_bounded(str(action.get("action", "unknown"))),
                digital_source_type=_source_type_name(action.get("digitalSourceType")),
                software_agent=_bounded(agent),
            )


def _c2pa_evidence(manifest: C2paManifest) -> Evidence:
    own = {action.digital_source_type for action in manifest.actions}
    # Generated anywhere in the chain makes it AI; a capture counts only as this manifest's own action (an
    # edit of a signed capture is an edit, not a capture).
    if manifest.source_types & GENERATED_SOURCE_TYPES:
        says = "ai"
    elif own & CAPTURE_SOURCE_TYPES:
        says = "capture"
    elif manifest.actions:
        says = "edited"
    else:
        says = "unknown"
    detail = manifest.claim_generator or manifest.remote_url or manifest.message or "C2PA manifest"
    return Evidence("c2pa", says, manifest.state, "C2PA manifest", detail)


def _xmp_evidence(xmp: str) -> list[Evidence]:
    found = []
    for match in _SOURCE_TYPE_IN_XMP.finditer(xmp):
        name = _source_type_name(match.group(1))
        if name in GENERATED_SOURCE_TYPES:
            found.append(
                Evidence("digital_source_type", "ai", "declared", "XMP (IPTC DigitalSourceType)", name)
            )
        elif name in CAPTURE_SOURCE_TYPES:
            found.append(
                Evidence("digital_source_type", "capture", "hint", "XMP (IPTC DigitalSourceType)", name)
            )
        break  # one declaration per file; a second one would be a contradiction, not more evidence
    tool = _CREATOR_TOOL_IN_XMP.search(xmp)
    if tool and _GENERATOR_PATTERN.search(tool.group(1)):
        found.append(Evidence("generator", "ai", "declared", "XMP CreatorTool", _bounded(tool.group(1))))
    return found


def _generator_evidence(image: Image.Image, exif) -> list[Evidence]:
    found = []
    # `info`, not Pillow's `text` property: that one decodes the pixels to find chunks after the data.
    text = image.info if image.format == "PNG" else None
    for key, meaning in GENERATOR_TEXT_KEYS.items():
        value = (text or {}).get(key)
        if isinstance(value, str) and _looks_like_generator_text(key, value):
            found.append(
                Evidence("generator", "ai", "declared", f"PNG text '{key}'", _settings_detail(meaning, value))
            )
    png_software = (text or {}).get("Software")
    for source, value in (("EXIF Software", exif.get(EXIF_SOFTWARE)), ("PNG text 'Software'", png_software)):
        if isinstance(value, str) and _GENERATOR_PATTERN.search(value[:MAX_TEXT_CHARS]):
            found.append(Evidence("generator", "ai", "declared", source, _bounded(value)))
    comment = _user_comment(exif)
    if comment and _looks_like_generator_text("parameters", comment):
        found.append(
            Evidence(
                "generator",
                "ai",
                "declared",
                "EXIF UserComment",
                _settings_detail(GENERATOR_TEXT_KEYS["parameters"], comment),
            )
        )
    return found


def _settings_detail(meaning: str, text: str) -> str:
    """What the settings are and, when they name it, the checkpoint (not the prompt: it says nothing more)."""
    checkpoint = _CHECKPOINT_IN_SETTINGS.search(text[:MAX_TEXT_CHARS])
    return _bounded(meaning + (f", model {checkpoint.group(1)}" if checkpoint else ""))


def _looks_like_generator_text(key: str, value: str) -> bool:
    """Not every `prompt` or `parameters` chunk is a generator's: require its own markers."""
    if len(value) > MAX_TEXT_CHARS:
        return False
    if key == "parameters":
        return "Steps:" in value and ("Sampler:" in value or "CFG scale:" in value or "Seed:" in value)
    if key in {"prompt", "workflow"}:
        return '"class_type"' in value or '"nodes"' in value
    return bool(value.strip())


def _camera_evidence(exif) -> list[Evidence]:
    make, model = (exif.get(tag) for tag in (EXIF_MAKE, EXIF_MODEL))
    parts = [
        str(part).strip("\x00 ") for part in (make, model) if isinstance(part, str) and part.strip("\x00 ")
    ]
    if not parts:
        return []
    if len(parts) == 2 and parts[1].lower().startswith(parts[0].lower()):
        parts = parts[1:]  # "Canon" + "Canon EOS R5": the model name already says the make
    return [Evidence("camera", "hint", "hint", "EXIF Make/Model", _bounded(" ".join(parts)))]


def _exif(image: Image.Image):
    try:
        return image.getexif()
    except Exception:
        return {}


def _user_comment(exif) -> str | None:
    try:
        raw = exif.get_ifd(EXIF_IFD).get(EXIF_USER_COMMENT)
    except Exception:
        return None
    if isinstance(raw, str):
        return raw
    if not isinstance(raw, bytes) or len(raw) < 8:
        return None
    prefix, body = raw[:8], raw[8 : 8 + 2 * MAX_TEXT_CHARS]
    # EXIF's 8-byte character-code prefix; AUTOMATIC1111 writes UNICODE (UTF-16, big-endian as it saves).
    encoding = "utf-16-be" if prefix.startswith(b"UNICODE") else "latin-1"
    return body.decode(encoding, errors="replace")


def _xmp_text(image: Image.Image) -> str:
    raw = image.info.get("xmp") or image.info.get("XML:com.adobe.xmp")
    if raw is None and image.format == "TIFF":
        raw = getattr(image, "tag_v2", {}).get(700)
    if isinstance(raw, bytes):
        raw = raw[:MAX_TEXT_CHARS].decode("utf-8", errors="replace")
    return raw[:MAX_TEXT_CHARS] if isinstance(raw, str) else ""


def _may_carry_c2pa(data: bytes, image: Image.Image, xmp: str) -> bool:
    """A cheap look at the container for a C2PA store, so files without one never reach the C2PA library.

    JPEG: an APP11 (JUMBF) segment; PNG: a caBX chunk; WebP: a C2PA chunk; TIFF: the C2PA tag. XMP's
    dcterms:provenance points to a remote manifest. Only the headers are walked, never the pixel data.
    """
    if "provenance" in xmp:
        return True
    if image.format in {"JPEG", "MPO"}:
        return any(marker == "APP11" and body[:2] == b"JP" for marker, body in getattr(image, "applist", []))
    if image.format == "PNG":
        return _has_chunk(data, 8, b"caBX", big_endian=True)
    if image.format == "WEBP":
        return _has_chunk(data, 12, b"C2PA", big_endian=False)
    if image.format == "TIFF":
        return TIFF_C2PA_TAG in getattr(image, "tag_v2", {})
    return image.format == "GIF" and b"c2pa" in data


def _has_chunk(data: bytes, offset: int, wanted: bytes, big_endian: bool) -> bool:
    """Walk PNG (length, type) or RIFF (type, length) chunk headers looking for `wanted`."""
    view = memoryview(data)
    while offset + 8 <= len(view):
        if big_endian:
            length, kind = struct.unpack_from(">I", view, offset)[0], bytes(view[offset + 4 : offset + 8])
            offset += 12 + length  # length, type, data, CRC
        else:
            kind, length = bytes(view[offset : offset + 4]), struct.unpack_from("<I", view, offset + 4)[0]
            offset += 8 + length + (length & 1)  # RIFF chunks are padded to even sizes
        if kind == wanted:
            return True
    return False


def _source_type_name(value) -> str | None:
    """`http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia` -> `trainedAlgorithmicMedia`."""
    if not isinstance(value, str) or not value:
        return None
    name = value.rstrip("/").rsplit("/", 1)[-1]
    return _bounded(name.split(".")[-1] if name.startswith("c2pa.") else name)


NOTHING_DECLARED = (
    "The file says nothing about where it came from. That is no evidence either way: most sites remove it."
)
_SIGNATURE = {
    "trusted": "The signature is intact, and the signer is on your trust list.",
    "valid": "The signature is intact, but the signer is not on your trust list.",
    "tampered": "But the picture or its record changed after signing, so the record proves nothing.",
}


def _explain(item: Evidence, manifest: C2paManifest | None) -> str:
    if item.kind == "c2pa" and manifest is not None:
        return _explain_c2pa(item, manifest)
    if item.kind == "digital_source_type":
        if item.says == "ai":
            return (
                "The file's metadata says it was made by an AI tool. It is not signed: whoever wrote the file "
                "could have written that."
            )
        return "The file's metadata says it is a capture. It is not signed, so it is only a hint."
    if item.kind == "generator":
        return (
            f"The file holds an AI generator's record ({item.detail}). It is not signed, but it is rarely "
            "written by anything else."
        )
    return f"The file names a camera ({item.detail}). Anyone can write that, so it is only a hint."


def _explain_c2pa(item: Evidence, manifest: C2paManifest) -> str:
    if manifest.state == "remote":
        return (
            "The file points to Content Credentials kept online. RealCheck never fetches them, so they "
            "decide nothing here."
        )
    if manifest.state == "unreadable":
        return "The file carries Content Credentials that cannot be read, so they decide nothing."
    what = {
        "ai": "The file says it was made by an AI tool",
        "capture": "The file says a camera took it",
        "edited": "The file says it was edited",
    }.get(item.says, "The file carries Content Credentials")
    generator = next((a.software_agent for a in manifest.actions if a.software_agent), None)
    name = generator or manifest.claim_generator
    sentence = f"{what}{f' ({name})' if name else ''}."
    if item.says == "ai" and not {a.digital_source_type for a in manifest.actions} & GENERATED_SOURCE_TYPES:
        sentence = f"The file says it was edited from an AI-generated picture{f' ({name})' if name else ''}."
    if item.says == "capture" and manifest.state in INTACT_C2PA_STATES:
        sentence += " That tells where it came from, not that the scene is real."
    return f"{sentence} {_SIGNATURE[manifest.state]}"


def _describe(item: Evidence, manifest: C2paManifest | None) -> str:
    if item.kind == "c2pa" and manifest is not None:
        return _describe_c2pa(item, manifest)
    if item.kind == "digital_source_type":
        return f"{'AI' if item.says == 'ai' else 'Capture'} · declared in XMP: {item.detail} (unsigned)"
    if item.kind == "generator":
        return f"AI · generator metadata ({item.source}): {item.detail} (unsigned)"
    return f"Camera named in EXIF: {item.detail} (a hint; anyone can write it)"


def _describe_c2pa(item: Evidence, manifest: C2paManifest) -> str:
    lead = {"ai": "AI · ", "capture": "Capture · ", "edited": "Edited · "}.get(item.says, "")
    if manifest.state == "remote":
        return f"Content Credentials kept at a remote address, not fetched: {manifest.remote_url}"
    if manifest.state == "unreadable":
        return f"Content Credentials present but unreadable ({manifest.message})"
    generator = next((a.software_agent for a in manifest.actions if a.software_agent), None)
    text = f"{lead}Content Credentials: {generator or manifest.claim_generator or 'unknown generator'}"
    own = {action.digital_source_type for action in manifest.actions}
    if item.says == "ai" and not own & GENERATED_SOURCE_TYPES:
        text += " (edited from an AI-generated ingredient)"
    if manifest.signer:
        text += f", signed by {manifest.signer}" + (f" ({manifest.issuer})" if manifest.issuer else "")
    trust = {
        "trusted": "signer trusted",
        "valid": "intact; signer not on the trust list",
        "tampered": "TAMPERED: the image or manifest changed after signing",
    }[manifest.state]
    return f"{text} [{trust}]"


def _bounded(value) -> str | None:
    if value is None:
        return None
    text = " ".join(str(value).replace("\x00", "").split())  # one line, whatever the file holds
    return text if len(text) <= MAX_DETAIL_CHARS else text[: MAX_DETAIL_CHARS - 1] + "…"
