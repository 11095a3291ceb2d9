"""RealCheck upload page: verdicts with their score, Grad-CAM heatmaps, a batch table and its CSV.

Start it with `realcheck app --model DIR`, or `streamlit run streamlit_app/app.py -- --model DIR`, or with
$REALCHECK_MODEL naming the artifact folder.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import streamlit as st
from PIL import Image

from realcheck.model.data.imaging import fit_to_input, open_rgb
from realcheck.model.errors import RealCheckError
from realcheck.model.scoring.decision import CONDITION_WORDS, describe_rules, measured_accuracy
from realcheck.model.scoring.gradcam import GradCam, overlay
from realcheck.model.scoring.inference import Detector, Prediction, load_detector
from realcheck.model.scoring.provenance import Provenance, ProvenanceReader
from realcheck.streamlit_app.analysis import (
    MODEL_ENV,
    UPLOAD_TYPES,
    Upload,
    analyse,
    max_upload_bytes,
    parse_app_args,
    resolve_model_path,
    result_rows,
    results_csv,
)
from realcheck.streamlit_app.feedback import show_feedback

DISPLAY_SIZE = 640  # longest side of the pictures shown; the model sees its own input size regardless
MAX_GRADCAM_IMAGES = 24  # Grad-CAM costs a forward and a backward pass per image: cap it per page
VERDICTS = {
    "ai": ("AI-generated", "red"),
    "real": ("No AI signs found", "gray"),  # not a certificate: pixels alone never prove a photo real
    "uncertain": ("Uncertain", "orange"),
}
GRADCAM_EXPLANATION = """
**What the heatmap shows.** Grad-CAM colours the parts of the image whose features pushed the score
towards the model's leaning (towards *AI-generated* when P(AI) is at or above its threshold, towards
*real* below it): red is strong, blue is none. It is read from the network's last convolutional block,
a coarse grid ({grid}), and laid over the picture the model saw.

**What it does not show.** It says where the model looked, not why, and not that a red region was
generated or edited. Artefacts spread evenly over the whole image (noise, upsampling patterns) can give
a diffuse or empty map even for a confident score. The verdict comes from the score alone; the heatmap
is a hint for a human to look closer, not evidence.
"""


@st.cache_resource(show_spinner="Loading the model...")
def load_model(path: str) -> Detector:
    """The artifact at `path` as a Detector, loaded once per process (shared by every session): its shipped
    ONNX file when it has one, so the first page comes without TensorFlow."""
    return load_detector(path, provenance=ProvenanceReader())


@st.cache_resource(show_spinner="Loading the network for the heatmaps...")
def load_explainer(path: str) -> GradCam:
    """Grad-CAM on the artifact's Keras model, loaded only when a heatmap is first asked for."""
    return GradCam(load_detector(path, runtime="keras").runtime.model)


@st.cache_data(max_entries=64, show_spinner="Scoring...")
def score_uploads(
    path: str, keys: tuple[tuple[str, str], ...], max_bytes: int, _uploads: Sequence[Upload]
) -> list[Prediction]:
    """Results for a batch, cached by (model, file names and hashes) so toggling Grad-CAM does not rescore."""
    return analyse(load_model(path), _uploads, max_bytes)


@st.cache_data(max_entries=256, show_spinner=False)
def explain(path: str, sha256: str, target: str, _data: bytes) -> np.ndarray:
    """The Grad-CAM map of one file (cached by content) on the model's prepared input."""
    detector = load_model(path)
    return load_explainer(path).heatmap(detector.pixels(_data), target)


def show_no_model() -> None:
    """Say how to name a model: the bundled default is missing from this installation."""
    st.warning(
        "**No model loaded.** The default model bundled with RealCheck is missing from this installation; "
        "reinstall RealCheck or name a model artifact folder (made by `realcheck train`). "
        "Start the app with one:\n\n"
        "```\nrealcheck app --model runs/realcheck-resnet50-.../\n```\n\n"
        "or `streamlit run streamlit_app/app.py -- --model DIR`, or set the environment variable "
        f"`{MODEL_ENV}=DIR`."
    )


def show_sidebar(detector: Detector, path: Path) -> None:
    """Which model is loaded: name, version, decision rule, training data and test metrics."""
    meta = detector.metadata
    sidebar = st.sidebar
    sidebar.header("Model")
    sidebar.markdown(f"**{_escape(meta['name'])}**  \nversion `{meta['version']}`")
    sidebar.caption(
        f"{meta.get('backbone', '?')} backbone, {meta['input_size']} px input "
        f"({meta['input_mode']}), created {meta.get('created_at', 'unknown')}"
    )
    sidebar.markdown(f"**Scores:** {describe_rules(meta)}")
    sidebar.subheader("Training data")
    sidebar.markdown(_training_summary(meta.get("training_data") or {}))
    metrics = (meta.get("metrics") or {}).get("test") or {}
    if metrics:
        sidebar.subheader("On its own test split")
        names = ("accuracy", "balanced_accuracy", "precision", "recall", "f1", "roc_auc")
        lines = ["| metric | value |", "|---|---|"]
        lines += [
            f"| {n.replace('_', ' ')} | {metrics[n]:.3f} |" for n in names if metrics.get(n) is not None
        ]
        lines.append(f"| images | {metrics.get('n', '?')} |")
        sidebar.markdown("\n".join(lines))
    card = path / "README.md"
    if card.is_file():
        with sidebar.expander("Model card"):
            # The card's plot images are relative links that do not resolve here.
            text = "\n".join(
                line for line in card.read_text(encoding="utf-8").splitlines() if not line.startswith("![")
            )
            st.markdown(text)
    sidebar.caption(f"Loaded from `{path}`")


def _training_summary(data: dict) -> str:
    if not data or not data.get("n"):
        return "No training data recorded (an untrained or hand-made artifact)."
    lines = [
        f"- {data.get('n')} images: {data.get('real', '?')} real, {data.get('ai', '?')} ai "
        f"({data.get('layout', 'unknown')} layout)"
    ]
    for split, counts in (data.get("splits") or {}).items():
        lines.append(f"- {split}: {counts.get('n')} ({counts.get('real')} real, {counts.get('ai')} ai)")
    for source, counts in (data.get("by_generator") or {}).items():
        lines.append(f"- source `{source}`: {counts.get('real')} real, {counts.get('ai')} ai")
    return "\n".join(lines)


def upload_files() -> list[Upload]:
    """The file picker: any number of images at once."""
    files = st.file_uploader(
        "Images to check",
        type=list(UPLOAD_TYPES),
        accept_multiple_files=True,
        help="JPEG, PNG, WebP, GIF (first frame), BMP or TIFF. Files stay in this session's memory only.",
    )
    return [Upload(file.name, file.getvalue()) for file in files or []]


def gradcam_toggle(grid: str) -> bool:
    """The Grad-CAM switch with its explanation next to it."""
    enabled = st.toggle(
        "Show Grad-CAM heatmaps", value=True, help="Where in the image the evidence was found"
    )
    with st.expander("What the Grad-CAM heatmap means, and what it does not"):
        st.markdown(GRADCAM_EXPLANATION.format(grid=grid))
    return enabled


def show_summary(results: Sequence[Prediction]) -> None:
    """Counts per verdict across the batch."""
    counts = {key: sum(r.verdict == key for r in results) for key in VERDICTS}
    errors = sum(not r.ok for r in results)
    columns = st.columns(4)
    for column, (key, (label, _)) in zip(columns, VERDICTS.items()):
        column.metric(label, counts[key])
    columns[3].metric("Could not check", errors)


def show_table(rows: list[dict]) -> None:
    """The batch as a table and as a CSV download."""
    st.subheader("Results")
    st.dataframe(
        rows,
        hide_index=True,
        column_order=("file", "result", "basis", "score", "provenance", "error"),
        column_config={
            "result": st.column_config.TextColumn("verdict"),
            "score": st.column_config.ProgressColumn("P(AI)", min_value=0.0, max_value=1.0, format="%.3f"),
            "provenance": st.column_config.TextColumn("provenance", width="medium"),
            "error": st.column_config.TextColumn("why it could not be checked", width="large"),
        },
    )
    st.download_button(
        "Download results as CSV",
        data=results_csv(rows),
        file_name="realcheck-results.csv",
        mime="text/csv",
        icon=":material/download:",
    )


def score_bar(score: float, threshold: float, band: tuple[float, float]) -> str:
    """HTML for the score on a 0..1 scale: real on the left, AI on the right, band shaded, threshold marked."""
    low, high = (min(max(v, 0.0), 1.0) * 100 for v in band)
    position, mark = min(max(score, 0.0), 1.0) * 100, min(max(threshold, 0.0), 1.0) * 100
    return (
        '<div class="realcheck-score" style="margin:0.4rem 0 0.2rem 0">'
        '<div style="position:relative;height:16px;border-radius:8px;'
        'background:linear-gradient(to right,#2e7d32,#9e9d24 45%,#ef6c00 55%,#c62828)">'
        f'<div title="uncertain band" style="position:absolute;left:{low:.2f}%;width:{high - low:.2f}%;'
        "top:0;bottom:0;background:repeating-linear-gradient(45deg,rgba(255,255,255,.55) 0 4px,"
        'rgba(255,255,255,.15) 4px 8px)"></div>'
        f'<div title="threshold" style="position:absolute;left:calc({mark:.2f}% - 1px);top:-4px;bottom:-4px;'
        'width:2px;background:#111"></div>'
        f'<div title="score" style="position:absolute;left:calc({position:.2f}% - 8px);top:-5px;width:16px;'
        'height:26px;border-radius:5px;background:#fff;border:3px solid #111;box-sizing:border-box"></div>'
        "</div>"
        '<div style="display:flex;justify-content:space-between;font-size:0.8rem;opacity:0.75;margin-top:6px">'
        "<span>0 · real</span><span>1 · AI-generated</span></div></div>"
    )


def show_verdict(result: Prediction, detector: Detector) -> None:
    """Verdict badge, the score as a bar, and the numbers behind it."""
    label, colour = VERDICTS[result.verdict]
    st.badge(label, color=colour)
    if result.basis == "provenance":
        st.markdown(f"Verdict: **{label}**, decided by the file's provenance")
        st.markdown(f"The model alone says **{VERDICTS[result.model_verdict][0]}**:")
    else:
        st.markdown(f"Verdict: **{label}**")
    rule = result.rule or detector.rule
    st.markdown(score_bar(result.score, rule.threshold, rule.band), unsafe_allow_html=True)
    st.markdown(f"P(AI) = **{result.score:.3f}** · {rule.describe()}")
    if result.image_rule in detector.rules.by_condition:
        words, applies_to = CONDITION_WORDS[result.image_rule], detector.rules.applies_to[result.image_rule]
        st.caption(
            f"A {words} ({applies_to}): the model scores these differently, so they have ranges of their own."
        )


def show_provenance(provenance: Provenance) -> None:
    """What the file itself declares: plain sentences first, each piece of evidence and the C2PA manifest
    under technical details."""
    st.markdown("**Provenance**")
    if provenance.signed_capture:
        st.badge("Signed capture", icon=":material/photo_camera:", color="blue")
    if not provenance.evidence:
        st.caption(provenance.explanation)
        return
    st.markdown(_escape(provenance.explanation))
    lines = [f"- {_escape(provenance.summary)}"]
    lines += [
        f"- {_escape(item.source)}: {_escape(item.detail)} (says *{item.says}*, trust *{item.trust}*)"
        for item in provenance.evidence
    ]
    manifest = provenance.c2pa
    if manifest is not None:
        for action in manifest.actions:
            what = ", ".join(
                _escape(part) for part in (action.digital_source_type, action.software_agent) if part
            )
            lines.append(f"- C2PA action {_escape(action.action)}" + (f": {what}" if what else ""))
        if manifest.ingredients:
            lines.append("- C2PA ingredients: " + ", ".join(_escape(name) for name in manifest.ingredients))
        if manifest.failures:
            lines.append("- C2PA validation: " + ", ".join(_escape(code) for code in manifest.failures))
    with st.expander("Technical details"):
        st.markdown("\n".join(lines))


def heatmap_picture(
    path: str, detector: Detector, result: Prediction, data: bytes, picture: Image.Image
) -> tuple[Image.Image, str]:
    """The Grad-CAM overlay on what the model saw (`picture` is the decoded upload), and its caption."""
    target = "ai" if result.score >= (result.rule or detector.rule).threshold else "real"
    heat = explain(path, result.sha256, target, data)
    caption = f"Grad-CAM: where the model saw signs of {'AI' if target == 'ai' else 'a real photo'}"
    if result.model_verdict == "uncertain":
        caption += "; it is unsure overall"
    if result.basis == "provenance":
        caption += "; the verdict rests on the file's provenance, not on this map"
    if detector.spec.mode == "resize":
        # The model saw the whole picture resized, so its map stretches back over the whole picture.
        seen = "whole image"
        picture = _shrunk(picture)
    else:
        seen = "centre crop the model saw"
        picture = fit_to_input(picture, detector.spec)
        picture = picture.resize((DISPLAY_SIZE // 2, DISPLAY_SIZE // 2), Image.Resampling.BILINEAR)
    return overlay(picture, heat), f"{caption} ({seen})"


def show_result(
    path: str,
    detector: Detector,
    upload: Upload,
    result: Prediction,
    with_heatmap: bool,
    feedback_db: str | None,
) -> None:
    """One image: picture, optional heatmap, verdict; or why it could not be checked."""
    data = upload.data
    with st.container(border=True):
        st.markdown(f"**{_escape(upload.name)}**")
        if not result.ok:
            st.error(f"Could not check this file: {result.error}")
            return
        columns = st.columns([2, 2, 3] if with_heatmap else [2, 3])
        # Decoded once, exactly as the inference path decodes it (orientation, colour mode, first frame).
        picture = open_rgb(data, detector.max_pixels)
        columns[0].image(_shrunk(picture), caption="uploaded image", width="stretch")
        if with_heatmap:
            with columns[1], st.spinner("Grad-CAM..."):
                image, caption = heatmap_picture(path, detector, result, data, picture)
                st.image(image, caption=caption, width="stretch")
        with columns[-1]:
            show_verdict(result, detector)
            show_provenance(result.provenance)
            show_feedback(feedback_db, result, data, detector.metadata)


def grid_words(input_size: int) -> str:
    """The heatmap's resolution in words: every backbone here ends at stride 32."""
    cells = max(1, input_size // 32)
    return f"{cells}x{cells} cells for a {input_size} px input"


def _shrunk(picture: Image.Image) -> Image.Image:
    small = picture.copy()
    small.thumbnail((DISPLAY_SIZE, DISPLAY_SIZE))
    return small


def main() -> None:
    """The page: model from --model / $REALCHECK_MODEL, uploads, results, heatmaps, sidebar."""
    st.set_page_config(page_title="RealCheck", page_icon=":mag:", layout="wide")
    st.title("RealCheck")
    st.caption(
        "Real photograph or AI-generated? Upload images to get a verdict, a score and where the model looked."
    )
    model_path = resolve_model_path(sys.argv[1:])
    if model_path is None:
        show_no_model()
        return
    try:
        detector = load_model(str(model_path))
    except RealCheckError as error:
        st.error(f"Cannot load the model from `{model_path}`: {error}")
        show_no_model()
        return
    show_sidebar(detector, model_path)
    st.info(measured_accuracy(detector.metadata))  # above the uploader: how far a verdict can be trusted

    uploads = upload_files()
    with_heatmaps = gradcam_toggle(grid_words(detector.spec.size))
    if not uploads:
        st.info("Upload one or more images to check them.")
        return

    keys = tuple((upload.name, upload.sha256) for upload in uploads)
    results = score_uploads(str(model_path), keys, max_upload_bytes(), uploads)
    show_summary(results)
    show_table(
        [
            row | {"result": VERDICTS.get(row["verdict"], ("",))[0]}
            for row in result_rows(uploads, results, detector.metadata)
        ]
    )
    st.subheader("Images")
    if with_heatmaps and sum(r.ok for r in results) > MAX_GRADCAM_IMAGES:
        st.caption(f"Grad-CAM is shown for the first {MAX_GRADCAM_IMAGES} images that could be checked.")
    feedback_db = parse_app_args(sys.argv[1:]).feedback_db  # read once per run, not once per image
    explained = 0
    for result, upload in zip(results, uploads):
        heatmap = with_heatmaps and result.ok and explained < MAX_GRADCAM_IMAGES
        explained += int(heatmap)
        show_result(str(model_path), detector, upload, result, heatmap, feedback_db)


def _escape(text: str) -> str:
    """A file name shown as plain text inside Markdown."""
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|<>~])", r"\\\1", text)


if __name__ == "__main__":
    main()
