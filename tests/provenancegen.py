"""Provenance evidence built by the tests: C2PA-signed images (certificates made here), generator metadata,
XMP declarations and camera EXIF, over the synthetic pictures of `imagegen`.
"""

from __future__ import annotations

import datetime
import io
import socket
import threading
from dataclasses import dataclass
from functools import cache

import imagegen
from PIL import Image, PngImagePlugin

IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"
EXIF_IFD, MAKE, MODEL, SOFTWARE, USER_COMMENT = 0x8769, 0x010F, 0x0110, 0x0131, 0x9286
A1111_PARAMETERS = (
    "a lighthouse at dusk, oil painting\nNegative prompt: blurry\n"
    "Steps: 30, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 1234, Size: 512x512, Model: sd_xl_base_1.0"
)
COMFYUI_PROMPT = '{"3": {"class_type": "KSampler", "inputs": {"seed": 5, "steps": 20}}}'


@dataclass(frozen=True)
class TestAuthority:
    """A root CA and a signing certificate under it, both made for one test run."""

    root_pem: str
    chain_pem: str
    key_pem: str
    signer_name: str


@cache
def authority(signer_name: str = "Test Generator") -> TestAuthority:
    """An EC P-256 root and an end-entity certificate with the key usages C2PA signers need."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    def name(common_name):
        return x509.Name(
            [
                x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "RealCheck Tests"),
            ]
        )

    def usage(**granted):
        flags = dict.fromkeys(
            (
                "digital_signature",
                "content_commitment",
                "key_encipherment",
                "data_encipherment",
                "key_agreement",
                "key_cert_sign",
                "crl_sign",
                "encipher_only",
                "decipher_only",
            ),
            False,
        )
        return x509.KeyUsage(**(flags | granted))

    now = datetime.datetime.now(datetime.timezone.utc)
    root_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())

    def certificate(subject, public_key, ca: bool):
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(name("RealCheck Test Root"))
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=7))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        )
        if ca:
            builder = builder.add_extension(usage(key_cert_sign=True, crl_sign=True), critical=True)
        else:
            builder = builder.add_extension(usage(digital_signature=True), critical=True)
            builder = builder.add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False
            )
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False
            )
        return builder.sign(root_key, hashes.SHA256())

    def pem(cert):
        return cert.public_bytes(serialization.Encoding.PEM).decode()

    root = certificate(name("RealCheck Test Root"), root_key.public_key(), ca=True)
    leaf = certificate(name(signer_name), leaf_key.public_key(), ca=False)
    key = leaf_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return TestAuthority(pem(root), pem(leaf) + pem(root), key, signer_name)


def picture(fmt: str = "JPEG", label: str = "real", size: int = 64, seed: int = 3, **save) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(imagegen.make_array(label, size, seed)).save(buffer, format=fmt, **save)
    return buffer.getvalue()


def signed(
    source_type: str = "trainedAlgorithmicMedia",
    fmt: str = "JPEG",
    agent: str = "Imaginary Diffusion 3",
    remote_url: str | None = None,
    action: str = "c2pa.created",
    size: int = 64,
) -> bytes:
    """A picture with a C2PA manifest whose action declares `source_type`, signed by the test authority.

    With `remote_url` the manifest is not embedded: the file only points at that address.
    """
    import c2pa

    issuer = authority()
    mime = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}[fmt]
    manifest = {
        "claim_generator_info": [{"name": "RealCheck test builder", "version": "1.0"}],
        "title": f"picture.{fmt.lower()}",
        "assertions": [
            {
                "label": "c2pa.actions",
                "data": {
                    "actions": [
                        {
                            "action": action,
                            "softwareAgent": {"name": agent},
                            "digitalSourceType": IPTC + source_type,
                        }
                    ]
                },
            }
        ],
    }
    info = c2pa.C2paSignerInfo(
        c2pa.C2paSigningAlg.ES256, issuer.chain_pem.encode(), issuer.key_pem.encode(), None
    )
    context = c2pa.Context(c2pa.Settings.from_dict({"builder": {"thumbnail": {"enabled": False}}}))
    with c2pa.Signer.from_info(info) as signer, c2pa.Builder(manifest, context=context) as builder:
        if remote_url:
            builder.set_no_embed()
            builder.set_remote_url(remote_url)
        out = io.BytesIO()
        builder.sign(signer, mime, io.BytesIO(picture(fmt, size=size)), out)
    return out.getvalue()


def edited_from(parent: bytes, extra_assertions: list | None = None) -> bytes:
    """A new picture whose manifest records an edit of `parent` (its manifest kept as the ingredient's)."""
    import c2pa

    issuer = authority()
    manifest = {
        "claim_generator_info": [{"name": "RealCheck test editor", "version": "2.0"}],
        "title": "edit.jpg",
        "assertions": [
            {
                "label": "c2pa.actions",
                "data": {
                    "actions": [
                        {"action": "c2pa.opened", "parameters": {"ingredientIds": ["parent-1"]}},
                        {"action": "c2pa.edited", "softwareAgent": {"name": "Test Editor"}},
                    ]
                },
            },
            *(extra_assertions or []),
        ],
    }
    info = c2pa.C2paSignerInfo(
        c2pa.C2paSigningAlg.ES256, issuer.chain_pem.encode(), issuer.key_pem.encode(), None
    )
    context = c2pa.Context(c2pa.Settings.from_dict({"builder": {"thumbnail": {"enabled": False}}}))
    with c2pa.Signer.from_info(info) as signer, c2pa.Builder(manifest, context=context) as builder:
        ingredient = {"title": "parent.jpg", "relationship": "parentOf", "label": "parent-1"}
        builder.add_ingredient(ingredient, "image/jpeg", io.BytesIO(parent))
        out = io.BytesIO()
        builder.sign(signer, "image/jpeg", io.BytesIO(picture(seed=9)), out)
    return out.getvalue()


def tampered(data: bytes) -> bytes:
    """The signed file with one byte of its pixel data changed: the manifest no longer matches."""
    changed = bytearray(data)
    changed[-200] ^= 0x5A
    return bytes(changed)


def png_with_text(**chunks: str) -> bytes:
    info = PngImagePlugin.PngInfo()
    for key, value in chunks.items():
        info.add_text(key, value)
    return picture("PNG", label="ai", pnginfo=info)


def with_xmp(xmp: str, fmt: str = "JPEG") -> bytes:
    if fmt == "PNG":
        info = PngImagePlugin.PngInfo()
        info.add_itxt("XML:com.adobe.xmp", xmp)
        return picture("PNG", pnginfo=info)
    return picture(fmt, xmp=xmp.encode())


def xmp_source_type(source_type: str, attribute: bool = True) -> str:
    """An XMP packet declaring an IPTC digital source type, as attribute or element (both are seen)."""
    value = IPTC + source_type
    body = (
        f'<rdf:Description Iptc4xmpExt:DigitalSourceType="{value}"/>'
        if attribute
        else f"<rdf:Description><Iptc4xmpExt:DigitalSourceType>{value}</Iptc4xmpExt:DigitalSourceType>"
        "</rdf:Description>"
    )
    return (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
        'xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/">'
        f"{body}</rdf:RDF></x:xmpmeta>"
    )


def with_exif(fmt: str = "JPEG", user_comment: bytes | None = None, **tags: str) -> bytes:
    """A picture with EXIF tags given by name: make, model, software."""
    exif = Image.Exif()
    for name, value in tags.items():
        exif[{"make": MAKE, "model": MODEL, "software": SOFTWARE}[name]] = value
    if user_comment is not None:
        exif.get_ifd(EXIF_IFD)[USER_COMMENT] = user_comment
    return picture(fmt, exif=exif.tobytes())


class ConnectionCounter:
    """A TCP listener on 127.0.0.1 that counts the connections made to it."""

    def __init__(self):
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.socket.settimeout(0.2)
        self.port = self.socket.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        while not self._stop.is_set():
            try:
                connection, _ = self.socket.accept()
            except OSError:
                continue
            self.connections += 1
            connection.close()

    def close(self):
        self._stop.set()
        self._thread.join()
        self.socket.close()
