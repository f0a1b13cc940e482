"""What a client needs to trust the sandbox's CA: a combined CA bundle and the variables pointing at it.

``meetgate sandbox env`` prints these. Most clients take *one* CA file and trust nothing else once it
is set (``REQUESTS_CA_BUNDLE``, ``SSL_CERT_FILE``, ``CURL_CA_BUNDLE``), so pointing them at the sandbox
CA alone would break every other HTTPS call of the same process (PyPI, a package feed, a webhook).
The combined bundle is the system's CA store followed by the sandbox CA. Node adds
``NODE_EXTRA_CA_CERTS`` to its built-in roots, so it gets the sandbox CA alone.

The bundle holds certificates only (public: the CA's private key stays in ``tls/ca.key.pem``, 0600),
so it is written 0644 beside the CA, ``DIR/tls/trust-bundle.pem``, and rewritten on every call: the
system store may have changed, and a state folder that was removed gets a new CA.
"""

from __future__ import annotations

import json
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meetgate.errors import MeetgateError

BUNDLE_NAME = "trust-bundle.pem"
SHELLS = ("sh", "fish", "powershell")
PEM_BEGIN = "-----BEGIN CERTIFICATE-----"

#: where Linux distributions, the BSDs and macOS keep the system's CA store as one PEM file
SYSTEM_BUNDLES = (
    "/etc/ssl/certs/ca-certificates.crt",  # Debian, Ubuntu, Alpine, Arch, Gentoo
    "/etc/pki/tls/certs/ca-bundle.crt",  # Fedora, RHEL, CentOS
    "/etc/ssl/ca-bundle.pem",  # openSUSE
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",  # RHEL 7+
    "/etc/ssl/cert.pem",  # macOS, Alpine, OpenBSD
    "/usr/local/share/certs/ca-root-nss.crt",  # FreeBSD
)


class TrustError(MeetgateError, RuntimeError):
    """No sandbox CA, or no system CA store to combine it with; the message says what to do."""


@dataclass(frozen=True)
class TrustEnv:
    """The variables to export, and the files they point at."""

    state_dir: Path
    sandbox_ca: Path
    #: the system's CA store followed by the sandbox CA
    combined_bundle: Path
    #: the system CA store the combined bundle starts with
    system_bundle: Path
    #: True when a live ``meetgate sandbox serve`` was found (its URLs are among the variables)
    running: bool
    variables: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "env": dict(self.variables),
            "combined_bundle": str(self.combined_bundle),
            "sandbox_ca": str(self.sandbox_ca),
            "system_bundle": str(self.system_bundle),
            "state_dir": str(self.state_dir),
            "running": self.running,
        }


def _has_certificates(path: Path) -> bool:
    try:
        with path.open("r", encoding="ascii", errors="replace") as handle:
            return PEM_BEGIN in handle.read(1 << 20)
    except OSError:
        return False


def system_bundle(avoid: Path | None = None) -> Path:
    """The system's CA store as one PEM file: OpenSSL's compiled-in file, a distribution's usual
    place, else certifi's. Environment variables are not consulted (after ``eval "$(meetgate sandbox
    env)"`` they name the combined bundle itself), and neither is ``avoid``."""
    candidates: list[str] = [ssl.get_default_verify_paths().openssl_cafile, *SYSTEM_BUNDLES]
    try:
        import certifi

        candidates.append(certifi.where())
    except ImportError:  # pragma: no cover - certifi comes with httpx
        pass
    avoided = avoid.resolve() if avoid is not None else None
    for candidate in candidates:
        path = Path(candidate)
        if path.is_file() and path.resolve() != avoided and _has_certificates(path):
            return path
    raise TrustError(
        "found no system CA store (" + ", ".join(candidates) + "); pass one with --system-bundle"
    )


def write_combined_bundle(sandbox_ca: Path, system: Path, destination: Path) -> Path:
    """``system`` then ``sandbox_ca`` into ``destination`` (0644, atomically: a client reading it
    meanwhile sees the old or the new file, never half of one)."""
    ca_text = sandbox_ca.read_text(encoding="ascii")
    if PEM_BEGIN not in ca_text:
        raise TrustError(f"{sandbox_ca} holds no PEM certificate")
    system_text = system.read_text(encoding="utf-8", errors="replace")
    if PEM_BEGIN not in system_text:
        raise TrustError(f"{system} holds no PEM certificate")
    if not system_text.endswith("\n"):
        system_text += "\n"
    text = (
        f"# CA bundle written by `meetgate sandbox env`: the system's CA store ({system})\n"
        f"# followed by the meetgate sandbox CA ({sandbox_ca}). Certificates only: public.\n"
        f"{system_text}\n# meetgate sandbox CA\n{ca_text.strip()}\n"
    )
    destination.parent.mkdir(parents=True, exist_ok=True)
    tmp = destination.with_name(f".{destination.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.chmod(0o644)
    tmp.replace(destination)
    return destination


def _alive(pid: int | None) -> bool:
    if pid is None:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def _running_info(state_dir: Path) -> dict[str, Any] | None:
    """The live server's ``sandbox.json``; None when there is none or its process is gone."""
    try:
        data: dict[str, Any] = json.loads((state_dir / "sandbox.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not _alive(data.get("pid")):
        return None
    return data


def trust_env(state_dir: Path, *, system: Path | None = None) -> TrustEnv:
    """Write the combined bundle for ``state_dir``'s sandbox CA and say what to export.

    The CA is the running server's (``sandbox.json``) or, when none runs, the one the state folder
    keeps for its next run (``tls/ca.pem``); only a running server adds its URLs."""
    state_dir = state_dir.resolve()
    info = _running_info(state_dir)
    sandbox_ca = Path(info["ca_bundle"]) if info and info.get("ca_bundle") else state_dir / "tls" / "ca.pem"
    if not sandbox_ca.is_file():
        raise TrustError(
            f"no sandbox CA in {state_dir}: start the sandbox once with "
            f"`meetgate sandbox serve --state {state_dir}`"
        )
    destination = sandbox_ca.parent / BUNDLE_NAME
    base = system or system_bundle(avoid=destination)
    if base.resolve() == destination.resolve():
        raise TrustError(f"--system-bundle {base} is the combined bundle itself; name the system's CA store")
    bundle = write_combined_bundle(sandbox_ca, base, destination)
    variables = {
        "REQUESTS_CA_BUNDLE": str(bundle),
        "SSL_CERT_FILE": str(bundle),
        "CURL_CA_BUNDLE": str(bundle),
        "NODE_EXTRA_CA_CERTS": str(sandbox_ca),
    }
    if info is not None:
        variables |= {
            "AZURE_AUTHORITY_HOST": str(info["authority_url"]),
            "MEETGATE_SANDBOX_AUTHORITY_URL": str(info["authority_url"]),
            "MEETGATE_SANDBOX_GRAPH_URL": str(info["graph_url"]),
            "MEETGATE_SANDBOX_CONTROL_URL": str(info["control_url"]),
            "MEETGATE_SANDBOX_TENANT_ID": str(info["tenant_id"]),
        }
    variables["MEETGATE_SANDBOX_CA"] = str(sandbox_ca)
    return TrustEnv(
        state_dir=state_dir,
        sandbox_ca=sandbox_ca,
        combined_bundle=bundle,
        system_bundle=base,
        running=info is not None,
        variables=variables,
    )


def _quote_sh(value: str) -> str:
    return "'" + value.replace("'", "'\"'\"'") + "'"


def _quote_fish(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _quote_powershell(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def render(variables: Mapping[str, str], shell: str = "sh", comment: str | None = None) -> str:
    """The lines that set ``variables`` in ``shell`` (sh, fish or powershell); each shell takes ``#``
    comments, so ``comment`` lines are kept as such."""
    if shell == "sh":
        lines = [f"export {name}={_quote_sh(value)}" for name, value in variables.items()]
    elif shell == "fish":
        lines = [f"set -gx {name} {_quote_fish(value)}" for name, value in variables.items()]
    elif shell == "powershell":
        lines = [f"$Env:{name} = {_quote_powershell(value)}" for name, value in variables.items()]
    else:
        raise ValueError(f"unknown shell {shell!r}; one of {', '.join(SHELLS)}")
    if comment:
        lines = [f"# {line}" for line in comment.splitlines()] + lines
    return "\n".join(lines) + "\n"
