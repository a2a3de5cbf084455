"""Certificates and service-account keys of a throwaway test cluster, made with the ``openssl`` CLI.

Everything is generated fresh per cluster in its data directory and lives two days:
two certificate authorities (the cluster CA, and the front-proxy CA with which the API
server proves itself to the aggregated metrics API), serving certificates for the API
server, metrics-server and kwok (each valid for ``127.0.0.1`` and ``localhost`` only,
plus the API server's in-cluster names), the admin client certificate
(``O=system:masters``) every component uses, and an EC key pair that signs
service-account tokens. Keys are P-256; files are mode 0600.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..errors import ToolError

DAYS = "2"


@dataclass(frozen=True)
class Pki:
    directory: Path

    def path(self, name: str) -> Path:
        return self.directory / name

    @property
    def ca(self) -> Path:
        return self.path("ca.crt")

    @property
    def ca_key(self) -> Path:
        return self.path("ca.key")

    @property
    def front_proxy_ca(self) -> Path:
        return self.path("front-proxy-ca.crt")

    def cert(self, name: str) -> Path:
        return self.path(f"{name}.crt")

    def key(self, name: str) -> Path:
        return self.path(f"{name}.key")

    @property
    def service_account_key(self) -> Path:
        return self.path("sa.key")

    @property
    def service_account_pub(self) -> Path:
        return self.path("sa.pub")


def _openssl() -> str:
    found = shutil.which("openssl")
    if not found:
        raise ToolError("openssl: not found on PATH; the e2e harness makes its certificates with it "
                        "(Debian: `apt-get install openssl`)")
    return found


def _run(*args: str, cwd: Path) -> None:
    proc = subprocess.run([_openssl(), *args], cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise ToolError(f"openssl {args[0]} failed (exit {proc.returncode}) in {cwd}: {proc.stderr.strip()[-800:]}")


def _config(directory: Path, name: str, subject: dict[str, str], extensions: list[str]) -> Path:
    """A minimal openssl config: no distribution defaults (Debian's add CA:TRUE to -x509)."""
    lines = ["[req]", "prompt = no", "distinguished_name = dn", "", "[dn]"]
    lines += [f"{k} = {v}" for k, v in subject.items()]
    lines += ["", "[ext]", *extensions, ""]
    path = directory / f"{name}.cnf"
    path.write_text("\n".join(lines))
    return path


def _key_args(name: str) -> list[str]:
    return ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", f"{name}.key"]


def _authority(directory: Path, name: str, common_name: str) -> None:
    config = _config(directory, name, {"CN": common_name}, [
        "basicConstraints = critical, CA:TRUE",
        "keyUsage = critical, keyCertSign, cRLSign, digitalSignature",
        "subjectKeyIdentifier = hash",
    ])
    _run("req", "-x509", "-new", *_key_args(name), "-out", f"{name}.crt", "-days", DAYS,
         "-config", str(config), "-extensions", "ext", cwd=directory)


def _leaf(directory: Path, name: str, ca: str, subject: dict[str, str], *, server: bool,
          dns: tuple[str, ...] = (), ips: tuple[str, ...] = ()) -> None:
    extensions = [
        "basicConstraints = critical, CA:FALSE",
        "keyUsage = critical, digitalSignature, keyEncipherment",
        f"extendedKeyUsage = {'serverAuth' if server else 'clientAuth'}",
        "authorityKeyIdentifier = keyid",
    ]
    alt = [f"DNS:{d}" for d in dns] + [f"IP:{i}" for i in ips]
    if alt:
        extensions.append("subjectAltName = " + ", ".join(alt))
    config = _config(directory, name, subject, extensions)
    _run("req", "-x509", "-new", *_key_args(name), "-out", f"{name}.crt", "-days", DAYS,
         "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key", "-set_serial", str(secrets.randbits(63)),
         "-config", str(config), "-extensions", "ext", cwd=directory)


LOOPBACK_NAMES = ("localhost",)
LOOPBACK_IPS = ("127.0.0.1",)
API_SERVER_NAMES = ("kubernetes", "kubernetes.default", "kubernetes.default.svc",
                    "kubernetes.default.svc.cluster.local")


def make_pki(directory: Path) -> Pki:
    """Generate every certificate and key the cluster needs into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    old_umask = os.umask(0o077)
    try:
        _authority(directory, "ca", "dox-e2e-ca")
        _authority(directory, "front-proxy-ca", "dox-e2e-front-proxy-ca")
        _leaf(directory, "apiserver", "ca", {"CN": "kube-apiserver"}, server=True,
              dns=LOOPBACK_NAMES + API_SERVER_NAMES, ips=LOOPBACK_IPS)
        _leaf(directory, "admin", "ca", {"O": "system:masters", "CN": "dox-e2e-admin"}, server=False)
        _leaf(directory, "front-proxy-client", "front-proxy-ca", {"CN": "front-proxy-client"}, server=False)
        _leaf(directory, "metrics-server", "ca", {"CN": "metrics-server"}, server=True,
              dns=("metrics-server.kube-system.svc",) + LOOPBACK_NAMES, ips=LOOPBACK_IPS)
        _leaf(directory, "kwok", "ca", {"CN": "kwok"}, server=True, dns=LOOPBACK_NAMES, ips=LOOPBACK_IPS)
        _run("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-out", "sa.key",
             cwd=directory)
        _run("pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=directory)
    finally:
        os.umask(old_umask)
    return Pki(directory)
