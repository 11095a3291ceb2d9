"""The provenance reader: C2PA manifests signed in the test, metadata declarations, hostile metadata."""

from __future__ import annotations

import io
import json
import random
import time

import provenancegen as gen
import pytest
from PIL import PngImagePlugin

from realcheck.model.errors import RealCheckError
from realcheck.model.scoring.decision import decide
from realcheck.model.scoring.provenance import (
    CAPTURE_SOURCE_TYPES,
    GENERATED_SOURCE_TYPES,
    NO_PROVENANCE,
    ProvenanceReader,
)


@pytest.fixture(scope="module")
def reader():
    return ProvenanceReader()


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_an_intact_manifest_declaring_ai_decides_the_verdict(reader, fmt):
    provenance = reader.read(gen.signed("trainedAlgorithmicMedia", fmt=fmt))
    manifest = provenance.c2pa
    assert manifest.state == "valid"  # intact; the test root is on no trust list
    assert "signingCredential.untrusted" in manifest.failures
    assert manifest.signer == "Test Generator" and manifest.issuer == "RealCheck Tests"
    assert manifest.claim_generator == "RealCheck test builder 1.0"
    assert [(a.action, a.digital_source_type, a.software_agent) for a in manifest.actions] == [
        ("c2pa.created", "trainedAlgorithmicMedia", "Imaginary Diffusion 3")
    ]
    assert provenance.declares_ai and not provenance.signed_capture
    assert decide("real", provenance).verdict == "ai" and decide("real", provenance).basis == "provenance"
    summary = provenance.summary
    assert summary.startswith("AI · Content Credentials: Imaginary Diffusion 3, signed by Test Generator")
    assert provenance.explanation == (
        "The file says it was made by an AI tool (Imaginary Diffusion 3). The signature is intact, but the "
        "signer is not on your trust list."
    )


def test_a_signer_under_a_configured_trust_anchor_is_trusted(tmp_path):
    anchors = tmp_path / "anchors.pem"
    anchors.write_text(gen.authority().root_pem)
    provenance = ProvenanceReader.from_trust_anchors_file(anchors).read(gen.signed())
    assert provenance.c2pa.state == "trusted" and provenance.c2pa.failures == ()
    assert "[signer trusted]" in provenance.summary
    assert provenance.explanation.endswith("The signature is intact, and the signer is on your trust list.")


def test_a_bad_trust_anchors_file_is_one_clear_error(tmp_path):
    with pytest.raises(RealCheckError, match="cannot read C2PA trust anchors"):
        ProvenanceReader.from_trust_anchors_file(tmp_path / "missing.pem")
    text = tmp_path / "not.pem"
    text.write_text("hello")
    with pytest.raises(RealCheckError, match="holds no PEM certificate"):
        ProvenanceReader.from_trust_anchors_file(text)


def test_an_edit_of_a_generated_image_declares_ai_through_its_ingredient(reader):
    edit = reader.read(gen.edited_from(gen.signed("trainedAlgorithmicMedia")))
    assert edit.c2pa.state == "valid" and edit.c2pa.ingredients == ("parent.jpg",)
    assert edit.c2pa.ingredient_source_types == ("trainedAlgorithmicMedia",)
    assert edit.declares_ai and "(edited from an AI-generated ingredient)" in edit.summary
    of_a_capture = reader.read(gen.edited_from(gen.signed("digitalCapture")))
    assert not of_a_capture.declares_ai and not of_a_capture.signed_capture
    assert of_a_capture.evidence[0].says == "edited"


def test_deeply_nested_and_huge_assertions_read_cleanly(reader):
    nested = json.loads('{"a":' * 120 + "1" + "}" * 120)
    assertions = [
        {"label": "org.realcheck.deep", "data": nested},
        {"label": "org.realcheck.huge", "data": {"blob": "x" * 1_000_000}},
    ]
    started = time.perf_counter()
    provenance = reader.read(gen.edited_from(gen.signed(), assertions))
    assert time.perf_counter() - started < 5.0
    assert provenance.c2pa.state == "valid" and provenance.declares_ai


def test_a_store_of_too_many_parts_is_not_read_and_the_model_decides(reader):
    from realcheck.model.scoring.provenance import MAX_C2PA_BOXES

    many = [
        {"label": f"org.realcheck.part{index}", "data": {"i": index}} for index in range(MAX_C2PA_BOXES + 50)
    ]
    provenance = reader.read(gen.edited_from(gen.signed(), many))
    assert provenance.c2pa.state == "unreadable" and "too large to read" in provenance.c2pa.message
    assert not provenance.declares_ai and decide("real", provenance).basis == "model"
    assert "cannot be read, so they decide nothing" in provenance.explanation


def test_a_tampered_copy_is_reported_and_decides_nothing(reader):
    provenance = reader.read(gen.tampered(gen.signed()))
    assert provenance.c2pa.state == "tampered"
    assert any("mismatch" in code for code in provenance.c2pa.failures)
    assert not provenance.declares_ai
    assert decide("real", provenance).basis == "model"
    assert "TAMPERED" in provenance.summary
    assert provenance.explanation.endswith("changed after signing, so the record proves nothing.")


def test_a_signed_capture_is_shown_but_never_makes_an_image_real(reader):
    provenance = reader.read(gen.signed("digitalCapture", agent="Test Camera"))
    assert provenance.signed_capture and not provenance.declares_ai
    assert decide("ai", provenance).verdict == "ai"  # the model's verdict stands
    assert decide("ai", provenance).basis == "model"
    assert provenance.summary.startswith("Capture · Content Credentials: Test Camera")
    assert provenance.explanation.startswith(
        "The file says a camera took it (Test Camera). That tells where it came from, not that the scene is real."
    )


def test_a_remote_manifest_is_reported_and_never_fetched(reader, listener):
    import c2pa

    url = f"http://127.0.0.1:{listener.port}/manifest.c2pa"
    data = gen.signed(remote_url=url)
    provenance = reader.read(data)
    assert provenance.c2pa.state == "remote" and provenance.c2pa.remote_url == url
    assert not provenance.declares_ai
    assert "not fetched" in provenance.summary
    assert "RealCheck never fetches them" in provenance.explanation
    time.sleep(0.3)
    assert listener.connections == 0
    # The control: the library with its default settings does connect, so the count above means something.
    with pytest.raises(c2pa.C2paError):
        c2pa.Reader("image/jpeg", io.BytesIO(data))
    deadline = time.monotonic() + 5
    while listener.connections == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert listener.connections >= 1


def test_generator_settings_in_png_text_declare_ai(reader):
    a1111 = reader.read(gen.png_with_text(parameters=gen.A1111_PARAMETERS))
    assert a1111.declares_ai and a1111.c2pa is None
    [item] = a1111.evidence
    assert (item.kind, item.trust, item.source) == ("generator", "declared", "PNG text 'parameters'")
    assert "model sd_xl_base_1.0" in item.detail and "lighthouse" not in item.detail  # no prompt echoed
    assert a1111.explanation.startswith("The file holds an AI generator's record (Stable Diffusion settings")
    comfy = reader.read(gen.png_with_text(prompt=gen.COMFYUI_PROMPT, workflow='{"nodes": []}'))
    assert comfy.declares_ai and {item.source for item in comfy.evidence} == {
        "PNG text 'prompt'",
        "PNG text 'workflow'",
    }


def test_text_chunks_that_are_not_a_generators_declare_nothing(reader):
    provenance = reader.read(gen.png_with_text(parameters="exposure=1/200", prompt="a caption", Comment="hi"))
    assert provenance == NO_PROVENANCE and not provenance.declares_ai


def test_automatic1111_settings_in_jpeg_exif_declare_ai(reader):
    comment = b"UNICODE\x00" + gen.A1111_PARAMETERS.encode("utf-16-be")
    provenance = reader.read(gen.with_exif(user_comment=comment))
    assert provenance.declares_ai and provenance.evidence[0].source == "EXIF UserComment"


@pytest.mark.parametrize("software, declares", [("Adobe Firefly", True), ("Adobe Photoshop 25.0", False)])
def test_exif_software_declares_ai_only_for_a_generator(reader, software, declares):
    assert reader.read(gen.with_exif(software=software)).declares_ai is declares


@pytest.mark.parametrize(
    "source_type", sorted(GENERATED_SOURCE_TYPES | CAPTURE_SOURCE_TYPES | {"digitalArt"})
)
@pytest.mark.parametrize("fmt, attribute", [("JPEG", True), ("PNG", False), ("WEBP", True)])
def test_each_xmp_digital_source_type(reader, source_type, fmt, attribute):
    provenance = reader.read(gen.with_xmp(gen.xmp_source_type(source_type, attribute), fmt))
    assert provenance.declares_ai is (source_type in GENERATED_SOURCE_TYPES)
    if source_type in GENERATED_SOURCE_TYPES:
        assert provenance.evidence[0].detail == source_type and provenance.evidence[0].trust == "declared"
        assert provenance.explanation.startswith("The file's metadata says it was made by an AI tool.")
    elif source_type in CAPTURE_SOURCE_TYPES:
        assert provenance.evidence[0].says == "capture" and provenance.evidence[0].trust == "hint"
    else:
        assert provenance.evidence == ()


def test_camera_exif_is_a_hint_only(reader):
    provenance = reader.read(gen.with_exif(make="Canon", model="EOS R5"))
    [item] = provenance.evidence
    assert (item.kind, item.says, item.detail) == ("camera", "hint", "Canon EOS R5")
    assert not provenance.declares_ai and not provenance.signed_capture
    assert decide("ai", provenance).verdict == "ai"
    assert (
        provenance.explanation
        == "The file names a camera (Canon EOS R5). Anyone can write that, so it is only a hint."
    )


def test_a_file_without_metadata_is_no_evidence_of_anything(reader):
    for fmt in ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF"):
        provenance = reader.read(gen.picture(fmt))
        assert provenance == NO_PROVENANCE, fmt
        assert decide("real", provenance).verdict == "real"
    assert NO_PROVENANCE.summary == "no provenance metadata"
    assert NO_PROVENANCE.explanation.startswith("The file says nothing about where it came from.")


@pytest.mark.parametrize(
    "data",
    [b"", b"not an image", b"\xff\xd8\xff\xeb\x00\x10JP" + b"\x00" * 12, b"\x89PNG\r\n\x1a\n" + b"\xff" * 40],
    ids=["empty", "text", "jpeg-with-only-a-jumbf-header", "png-garbage"],
)
def test_non_images_have_no_provenance(reader, data):
    assert reader.read(data) == NO_PROVENANCE


def test_damaged_manifests_give_a_clear_result_never_an_exception(reader):
    """Seeded mutations of a signed file's manifest bytes: every one reads as a state, quickly."""
    signed = gen.signed()
    manifest_end = signed.find(b"\xff\xdb")  # the manifest segments come before the quantisation tables
    rng = random.Random(7)
    states = set()
    for _ in range(300):
        damaged = bytearray(signed)
        for _ in range(rng.randint(1, 6)):
            damaged[rng.randrange(20, manifest_end)] = rng.randrange(256)
        if rng.random() < 0.2:
            damaged = damaged[: rng.randrange(len(damaged))]
        started = time.perf_counter()
        provenance = reader.read(bytes(damaged))
        assert time.perf_counter() - started < 2.0
        assert not provenance.declares_ai or provenance.c2pa.state in {"valid", "trusted"}
        states.add(provenance.c2pa.state if provenance.c2pa else None)
    assert {"tampered", "unreadable"} <= states


def test_huge_and_deeply_nested_metadata_is_bounded(reader):
    nested = "<a>" * 200_000 + "</a>" * 200_000
    xmp = gen.xmp_source_type("trainedAlgorithmicMedia").replace("</rdf:RDF>", nested + "</rdf:RDF>")
    started = time.perf_counter()
    assert reader.read(gen.with_xmp(xmp, "PNG")).declares_ai  # one regex pass, no XML parser to blow up
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "Steps: 1, Sampler: x, " + "y" * 900_000, zip=True)
    big = reader.read(gen.picture("PNG", pnginfo=info))
    assert (
        big.evidence[0].detail.startswith("Stable Diffusion settings") and len(big.evidence[0].detail) <= 200
    )
    assert time.perf_counter() - started < 5.0
    many_actions = reader.read(gen.signed(agent="x" * 5000))
    assert len(many_actions.c2pa.actions[0].software_agent) <= 200


def test_concurrent_reads_give_the_same_answers(reader):
    """The server reads provenance in its request threads: the C2PA library must hold up to that."""
    from concurrent.futures import ThreadPoolExecutor

    files = [gen.signed(), gen.tampered(gen.signed()), gen.signed("digitalCapture"), gen.picture()]
    expected = [reader.read(data) for data in files]
    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(reader.read, files * 50))
    assert answers == expected * 50
