"""The label contract shared by every part: class 1 is AI-generated, class 0 a real photograph.

Folder names are mapped explicitly, never by alphabetical order (`fake/` sorts before `real/`).
"""

from __future__ import annotations

REAL = 0
AI = 1
LABEL_NAMES = {REAL: "real", AI: "ai"}
UNCERTAIN = "uncertain"

# Folder names seen in public real-vs-AI data sets (CIFAKE, GenImage, CNNDetection, DeepGuardDB...).
REAL_FOLDER_NAMES = frozenset(
    {
        "real",
        "0_real",
        "reals",
        "human",
        "nature",
        "natural",
        "authentic",
        "genuine",
        "photo",
        "photos",
        "real_images",
        "realimages",
        "original",
        "camera",
    }
)
AI_FOLDER_NAMES = frozenset(
    {
        "fake",
        "1_fake",
        "fakes",
        "ai",
        "ai_generated",
        "ai-generated",
        "aigenerated",
        "artificial",
        "generated",
        "synthetic",
        "fake_images",
        "fakeimages",
        "gen",
        "diffusion",
    }
)


def label_for_folder(name: str) -> int | None:
    """The class of a folder name (case-insensitive), or None when the name is not a class name."""
    key = name.strip().lower()
    if key in REAL_FOLDER_NAMES:
        return REAL
    if key in AI_FOLDER_NAMES:
        return AI
    return None
