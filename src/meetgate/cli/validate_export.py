"""``meetgate validate --export DIR``: runbook step 6's manual tests as Postman/newman and PowerShell files.

Resolves the test users (object ids: a UPN in the path may 404), signs a short-lived client
assertion with the app's key, renders the kit (:mod:`meetgate.admin.manual_tests`) and writes it:
the environment file 0600, the folder 0700.
"""

from __future__ import annotations

import datetime as dt
import stat
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from meetgate.cli._common import EXIT_USAGE, console, err_console, fail, print_json

if TYPE_CHECKING:
    from meetgate.admin.manual_tests import KitCredential, KitFile, TestUser
    from meetgate.config import Profile
    from meetgate.graph.client import GraphClient


def export_manual_tests(
    profile: Profile,
    client: GraphClient,
    directory: Path,
    *,
    pilots: list[str],
    negatives: list[str],
    assertion_minutes: int,
    force: bool,
    as_json: bool,
) -> None:
    """Write the kit for ``profile`` (signed in as ``client``) into ``directory``."""
    from meetgate import __version__
    from meetgate.admin.manual_tests import KitSpec, build_kit

    _check_directory(directory, force)
    pilot = _resolve(client, pilots, "--pilot")
    negative = _resolve(client, negatives, "--negative") if negatives else None
    settings = client.settings
    now = time.time()
    spec = KitSpec(
        tenant_id=settings.tenant_id,
        client_id=settings.client_id,
        authority_url=settings.authority_url,
        graph_url=settings.graph_url,
        graph_scope=settings.graph_scope,
        policy_name=profile.policy_name,
        pilot=pilot,
        negative=negative,
        credential=_credential(settings, assertion_minutes, now),
        thumbprint=getattr(settings.credential, "thumbprint_sha1", None),
        generated_at=dt.datetime.fromtimestamp(now, dt.UTC),
        meetgate_version=__version__,
    )
    files = build_kit(spec)
    written = [_write(directory / f.name, f, force) for f in files]
    expires = spec.credential.expires_at
    if as_json:
        print_json(
            {
                "directory": str(directory),
                "files": [
                    {"name": f.name, "path": str(p), "secret": f.secret}
                    for f, p in zip(files, written, strict=True)
                ],
                "credential": spec.credential.kind,
                "assertion_expires_at": expires.isoformat() if expires else None,
                "pilot": {"id": pilot.id, "upn": pilot.upn},
                "negative": {"id": negative.id, "upn": negative.upn} if negative else None,
            }
        )
        return
    out = console()
    for f, path in zip(files, written, strict=True):
        note = "  [yellow](credential, 0600)[/]" if f.secret else ""
        out.print(f"wrote {path}{note}", soft_wrap=True)
    if expires is not None:
        out.print(f"the client assertion in the environment is valid until {expires:%Y-%m-%d %H:%M:%S} UTC")
    else:
        out.print("[yellow]the environment holds the client secret itself: delete it after the test[/]")
    extra_ca = f" --ssl-extra-ca-certs {profile.ca_bundle}" if profile.ca_bundle else ""
    out.print(
        f"run it: npx newman run {directory / files[0].name} -e {directory / files[1].name}{extra_ca}  "
        f"(how-to: {directory / 'README.md'})",
        soft_wrap=True,
    )


def _check_directory(directory: Path, force: bool) -> None:
    """The folder exists private (0700) or is created so; existing kit files need ``--force``."""
    from meetgate.admin.manual_tests import COLLECTION_FILE, ENVIRONMENT_FILE
    from meetgate.private_files import make_private_folder, readable_by_others

    if directory.exists():
        if not directory.is_dir():
            fail(f"--export {directory} is not a folder", "name a folder (it is created if missing)")
        if readable_by_others(directory):
            mode = stat.S_IMODE(directory.stat().st_mode)
            fail(
                f"--export {directory} can be read by other users (mode {mode:04o}), and the environment "
                "file holds a credential",
                f"name a new folder (meetgate creates it 0700), or `chmod 700 {directory}`",
            )
        existing = [n for n in (COLLECTION_FILE, ENVIRONMENT_FILE) if (directory / n).exists()]
        if existing and not force:
            fail(f"{directory / existing[0]} exists", "pass --force to replace the earlier export")
        return
    try:
        make_private_folder(directory)
    except OSError as exc:
        fail(f"cannot create {directory}: {exc.strerror}", "choose a writable path", code=EXIT_USAGE)


def _resolve(client: Any, refs: list[str], option: str) -> TestUser:
    """The first of ``refs`` as (object id, UPN), looked up in the directory."""
    from meetgate.admin.manual_tests import TestUser
    from meetgate.graph.errors import GraphError

    if not refs:
        fail(
            "no pilot organizer to test with",
            "pass --pilot UPN (an organizer the policy covers), or list organizers in the policy file",
        )
    ref = refs[0]
    if len(refs) > 1:
        err_console().print(f"[dim]{option}: the manual tests use the first one, {ref}[/]")
    try:
        user = client.directory.get_user(ref)
    except GraphError as exc:
        fail(f"{option} {ref}: {exc.message}", exc.remedy or "check the UPN or object id")
    return TestUser(id=user.id, upn=user.user_principal_name or ref)


def _credential(settings: Any, assertion_minutes: int, now: float) -> KitCredential:
    from meetgate.admin.manual_tests import KitCredential
    from meetgate.graph.credentials import CertificateCredential

    credential = settings.credential
    if isinstance(credential, CertificateCredential):
        token_url = f"{settings.authority}/oauth2/v2.0/token"
        lifetime = assertion_minutes * 60
        assertion = credential.client_assertion(
            token_url, settings.client_id, lifetime_seconds=lifetime, now=now
        )
        return KitCredential("assertion", assertion, dt.datetime.fromtimestamp(int(now) + lifetime, dt.UTC))
    return KitCredential("secret", credential.msal_credential())


def _write(path: Path, file: KitFile, force: bool) -> Path:
    from meetgate.certificates import CertificateError, write_public_file, write_secret_file

    data = file.text.encode("utf-8")
    try:
        if file.secret:
            write_secret_file(path, data, force=force)
        else:
            write_public_file(path, data, force=True)
    except (OSError, CertificateError) as exc:
        fail(f"cannot write {path}: {exc}", "choose a writable folder", code=EXIT_USAGE)
    return path
