"""Throwaway certificates for TLS tests, made with the openssl command: a CA, a broker certificate
it signed for 127.0.0.1 (and one for another name), and a client certificate for mutual TLS."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Certificates:
    ca: Path
    server_cert: Path
    server_key: Path
    # Signed by the same CA for a name the tests never connect to.
    elsewhere_cert: Path
    elsewhere_key: Path
    client_cert: Path
    client_key: Path
    # Another CA, which signed nothing the tests meet.
    other_ca: Path


def _openssl(*arguments: str | Path) -> None:
    subprocess.run(["openssl", *map(str, arguments)], check=True, capture_output=True)


def _key(path: Path) -> Path:
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", path)
    return path


def _ca(directory: Path, name: str) -> tuple[Path, Path]:
    key = _key(directory / f"{name}.key")
    cert = directory / f"{name}.pem"
    _openssl(
        "req", "-x509", "-new", "-key", key, "-out", cert, "-days", "2", "-subj", f"/CN={name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    return cert, key


def _signed(directory: Path, name: str, ca: tuple[Path, Path], extensions: str) -> tuple[Path, Path]:
    key = _key(directory / f"{name}.key")
    request = directory / f"{name}.csr"
    _openssl("req", "-new", "-key", key, "-out", request, "-subj", f"/CN={name}")
    extension_file = directory / f"{name}.ext"
    extension_file.write_text(
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
        f"authorityKeyIdentifier=keyid\n{extensions}\n"
    )
    cert = directory / f"{name}.pem"
    _openssl(
        "x509", "-req", "-in", request, "-CA", ca[0], "-CAkey", ca[1], "-CAcreateserial",
        "-out", cert, "-days", "2", "-extfile", extension_file,
    )  # fmt: skip
    return cert, key


def make_certificates(directory: Path) -> Certificates:
    ca = _ca(directory, "csm-test-ca")
    server = _signed(
        directory, "broker", ca, "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost"
    )
    elsewhere = _signed(
        directory, "elsewhere", ca, "extendedKeyUsage=serverAuth\nsubjectAltName=DNS:broker.elsewhere.test"
    )
    client = _signed(directory, "csm-customer", ca, "extendedKeyUsage=clientAuth")
    other_ca, _ = _ca(directory, "another-ca")
    return Certificates(
        ca=ca[0],
        server_cert=server[0],
        server_key=server[1],
        elsewhere_cert=elsewhere[0],
        elsewhere_key=elsewhere[1],
        client_cert=client[0],
        client_key=client[1],
        other_ca=other_ca,
    )
