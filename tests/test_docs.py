"""README's first screen says what RealCheck is and how good the bundled model is, in the numbers its metadata
recorded; every relative link in README and docs/ leads to a file that exists."""

from __future__ import annotations

import re
from pathlib import Path

from realcheck.model.artifacts.artifact import bundled_model_dir, read_metadata

ROOT = Path(__file__).resolve().parents[1]
FIRST_SCREEN_LINES = 15


def first_screen() -> list[str]:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    end = next(i for i, line in enumerate(lines) if line.startswith("## "))
    return lines[:end]


def test_the_first_screen_is_short_and_gives_the_two_commands():
    screen = first_screen()
    assert len(screen) <= FIRST_SCREEN_LINES + 1, len(screen)  # + the blank line before the first heading
    text = "\n".join(screen)
    assert "bash scripts/setup.sh && .venv/bin/realcheck serve" in text and "bash scripts/test.sh" in text


def test_the_first_screen_states_the_bundled_models_measured_rates():
    measured = read_metadata(bundled_model_dir())["operating_point"]["measured"]
    clean, thumbnail = measured["clean"], measured["web_256_q75"]
    text = " ".join(first_screen())
    for rate, digits in [
        (clean["ai_caught"], 1),
        (clean["real_called_ai"], 1),
        (clean["worst_real_source_called_ai"], 1),
        (clean["uncertain"], 0),
        (thumbnail["ai_caught"], 1),
    ]:
        assert f"{rate * 100:.{digits}f}%" in text, (rate, text)


def test_relative_links_lead_somewhere():
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    for page in pages:
        text = page.read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue
            path, _, anchor = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            assert linked.exists(), f"{page.name}: {target}"
            if anchor and linked.suffix == ".md":
                headings = re.findall(r"^#+ (.+)$", linked.read_text(encoding="utf-8"), re.MULTILINE)
                slugs = {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-") for h in headings}
                assert anchor in slugs, f"{page.name}: {target}"
