"""Report buttons under each verdict: only its opposite ("Wrong? It's real" under AI, "Wrong? It's AI" under
no AI signs), both when the model was unsure. A report goes to the feedback database.

The same store and checks as the server's `POST /v1/feedback` (server.feedback.store). The image itself is
stored only when the user ticks the box for that image; the user's report then stands for the image in this
session, shown as theirs next to what the model said.
"""

from __future__ import annotations

import streamlit as st

from realcheck.model.errors import RealCheckError
from realcheck.server.feedback.store import FeedbackReport, FeedbackStore
from realcheck.streamlit_app.analysis import max_upload_bytes

CLIENT = "app"
WORDS = {"ai": "AI-generated", "real": "a real photograph"}
ICONS = {"ai": ":material/smart_toy:", "real": ":material/photo_camera:"}
SAID = {"ai": "AI-generated", "real": "no AI signs found", "uncertain": "unsure"}


def report_choices(verdict: str) -> dict[str, str]:
    """The labels a user can report, with their button text: only the opposite of a firm verdict."""
    if verdict == "ai":
        return {"real": "Wrong? It's real"}
    if verdict == "real":
        return {"ai": "Wrong? It's AI"}
    return {"real": "I know it's real", "ai": "I know it's AI"}  # the model was unsure: either is news


@st.cache_resource(show_spinner=False)
def feedback_store(location: str | None) -> FeedbackStore:
    """One store per database for the whole process (it opens the database on the first report)."""
    return FeedbackStore(location)


def show_feedback(location: str | None, result, data: bytes, model: dict) -> None:
    """The report buttons for one scored image (`result` is its realcheck.model.scoring.inference.Prediction)."""
    key = f"feedback-{result.sha256}"
    reported = st.session_state.get(key)
    if reported:
        st.badge(f"Your report: {WORDS[reported]}", color="violet", icon=":material/person:")
        st.caption(f"You said this image is {WORDS[reported]}; the model said {SAID[result.verdict]}.")
    share = st.checkbox(
        "Share this image with the report",
        value=False,
        key=f"{key}-share",
        help="Off: only the image's SHA-256, your label, the model's name, version and score (and your note) "
        "are stored. On: the image file too, so it can be used to retrain the model.",
    )
    note = st.text_input("Note (optional)", key=f"{key}-note", max_chars=1000)
    label = None
    offered = report_choices(result.verdict)
    for column, (choice, text) in zip(st.columns(len(offered)), offered.items()):
        if column.button(text, key=f"{key}-{choice}", icon=ICONS[choice]):
            label = choice
    if label is None:
        return
    report = FeedbackReport(
        sha256=result.sha256,
        label=label,
        model_name=model["name"],
        model_version=model["version"],
        score=result.score,
        verdict=result.verdict,
        note=note or None,
        client=CLIENT,
        image=data if share else None,
    )
    try:
        feedback_store(location).add(report.checked(max_image_bytes=max_upload_bytes()))
    except RealCheckError as error:
        st.error(f"Your report could not be stored: {error}")
        return
    st.session_state[key] = label
    st.rerun()
