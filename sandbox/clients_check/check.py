"""Microsoft's own clients against the sandbox: msgraph-sdk's ``GraphServiceClient`` over
azure-identity's ``CertificateCredential``, unmodified but for base URL, authority and CA.

``make clients-check`` runs it; by hand::

    .venv/bin/python sandbox/clients_check/check.py [--venv .venv-clients]

One file, two halves, two interpreters:

- **the driver** (meetgate's venv): builds ``--venv`` (default ``.venv-clients``) from
  ``requirements.txt`` beside this file when it is missing or the requirements changed, starts a
  sandbox (``SandboxServer``, state in a private temporary folder), registers an app with a new
  certificate, creates an application access policy granted to one organizer, asks
  ``meetgate sandbox env --json`` for the trust exports, then runs this file under the clients' venv
  with ``--client`` twice: once trusting the sandbox CA through the **environment** (the exports),
  once through **transport configuration** (``connection_verify=`` and an ``httpx.AsyncClient(verify=)``)
  with this machine's own ``REQUESTS_CA_BUNDLE`` / ``SSL_CERT_FILE`` left in place;
- **the client** (``--client CONFIG``): imports only msgraph-sdk, azure-identity and what they bring.
  It creates an online meeting, calls createOrGet twice with one externalId (one meeting), gets,
  patches and deletes, lists every user page by page, and expects the 403 "No application access
  policy found for this app" for an organizer the policy is not granted to.

Each step prints ``ok`` or ``FAIL`` with what it saw. Exit status: 0 all passed, 1 a step failed,
3 the clients' venv could not be built (PyPI out of reach, say).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
REQUIREMENTS = HERE / "requirements.txt"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"
ROLES = ("OnlineMeetings.ReadWrite.All", "User.Read.All")
POLICY = "Tag:ClientsCheck"
#: the variables through which this machine (or a developer's) may already pin a CA file
CA_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR")
EXIT_STEP_FAILED = 1
EXIT_NO_VENV = 3


# --- the driver (meetgate's venv) ------------------------------------------------------------------


def _venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _requirements_stamp() -> str:
    digest = hashlib.sha256(REQUIREMENTS.read_bytes())
    digest.update(sys.version.encode())
    return digest.hexdigest()


def ensure_venv(venv: Path) -> bool:
    """Build ``venv`` from requirements.txt unless it was built from the same file; True when built."""
    stamp = venv / ".clients-check-requirements"
    python = _venv_python(venv)
    wanted = _requirements_stamp()
    if python.exists() and stamp.exists() and stamp.read_text().strip() == wanted:
        return False
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "-qq", "--disable-pip-version-check", "-r", str(REQUIREMENTS)],
        check=True,
    )
    stamp.write_text(wanted + "\n")
    return True


def _meetgate_env(state_dir: Path) -> dict[str, Any]:
    """What ``meetgate sandbox env --json`` says (run as an integrator would)."""
    out = subprocess.run(
        [sys.executable, "-m", "meetgate", "sandbox", "env", "--state", str(state_dir), "--json"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, Any] = json.loads(out)
    return result


def _set_up(state_dir: Path, work: Path) -> tuple[Any, dict[str, Any]]:
    """A sandbox with an app, its certificate, a policy and an approved organizer."""
    from meetgate import certificates
    from meetgate_sandbox.control import SandboxControl
    from meetgate_sandbox.server import SandboxOptions, SandboxServer

    server = SandboxServer(SandboxOptions(state_dir=state_dir, users=12))
    info = server.start()
    try:
        control = SandboxControl(info.control_url, info.ca_bundle)
        tenant = info.tenant_id
        pair = certificates.generate_self_signed("meetgate clients check")
        cert_pem = certificates.certificate_pem(pair.certificate)
        # CertificateCredential reads one PEM file holding the private key and the certificate
        credential_file = work / "app.pem"
        certificates.write_secret_file(
            credential_file, certificates.private_key_pem(pair.private_key) + cert_pem
        )
        app = control.register_app(tenant, "Clients check", certificate_pem=cert_pem, roles=ROLES)
        directory = control.tenant(tenant)
        users = [u for u in directory["users"] if u["accountEnabled"]]
        approved, unapproved = users[0], users[1]
        control.create_policy(tenant, POLICY, [app["appId"]], "meetgate clients check")
        control.grant_policy(tenant, POLICY.removeprefix("Tag:"), user=approved["id"])
        config = {
            "tenant_id": tenant,
            "client_id": app["appId"],
            "certificate_path": str(credential_file),
            "authority_url": info.authority_url,
            "graph_url": info.graph_url,
            "sandbox_ca": str(info.ca_bundle),
            "approved_organizer": approved["id"],
            "unapproved_organizer": unapproved["id"],
            # Graph's /users lists the seeded users and the tenant's admin
            "user_count": len({u["userPrincipalName"] for u in directory["users"]} | {directory["adminUpn"]}),
        }
    except BaseException:
        server.stop()
        raise
    return server, {"control": control, **config}


def _client_env(mode: str, exports: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)  # the clients' venv must not see meetgate's sources
    env.pop("AZURE_AUTHORITY_HOST", None)
    if mode == "env":
        env |= exports
    return env


def drive(venv: Path) -> int:
    started = time.monotonic()
    venv = venv.absolute()
    try:
        built = ensure_venv(venv)
    except (subprocess.CalledProcessError, OSError) as exc:
        print(f"FAIL clients venv {venv}: {exc}", file=sys.stderr)
        return EXIT_NO_VENV
    print(f"clients venv {venv}: {'built' if built else 'up to date'} in {time.monotonic() - started:.1f} s")
    versions = subprocess.run(
        [str(_venv_python(venv)), "-m", "pip", "list", "--format=freeze", "--disable-pip-version-check"],
        check=True, capture_output=True, text=True,
    ).stdout.split()  # fmt: skip
    wanted = ("msgraph-sdk", "msgraph-core", "azure-identity", "azure-core", "msal", "httpx", "requests")
    print("versions: " + ", ".join(v for v in versions if v.split("==")[0].lower() in wanted))
    failures = 0
    with tempfile.TemporaryDirectory(prefix="meetgate-clients-check-") as tmp:  # 0700
        work = Path(tmp)
        server, config = _set_up(work / "sandbox", work)
        control = config.pop("control")
        try:
            trust = _meetgate_env(work / "sandbox")
            exports: dict[str, str] = trust["env"]
            config["combined_bundle"] = trust["combined_bundle"]
            shown = ", ".join(f"{k}={v}" for k, v in exports.items() if k != "MEETGATE_SANDBOX_TENANT_ID")
            print(f"meetgate sandbox env: {shown}")
            for mode in ("env", "transport"):
                config_file = work / f"client-{mode}.json"
                config_file.write_text(json.dumps({**config, "mode": mode}))
                print(
                    f"\n== trust through {'the environment' if mode == 'env' else 'transport configuration'}"
                )
                before = len(control.request_log(config["tenant_id"]))
                run = subprocess.run(
                    [str(_venv_python(venv)), str(Path(__file__).resolve()), "--client", str(config_file)],
                    env=_client_env(mode, exports),
                    cwd=work,
                    timeout=300,
                )
                if run.returncode != 0:
                    failures += 1
                log = control.request_log(config["tenant_id"])[before:]
                agents = sorted({r["userAgent"] for r in log if r["path"].startswith("/v1.0/")})
                statuses = sorted({str(r["status"]) for r in log})
                print(
                    f"   sandbox saw {len(log)} requests (statuses {', '.join(statuses)}); Graph user agents: {agents}"
                )
                # the SDK hides status codes; the sandbox's log shows Graph's: 201 Created, then 200 OK
                answers = [r["status"] for r in log if r["path"].endswith("/onlineMeetings/createOrGet")]
                verdict = "ok  " if answers == [201, 200] else "FAIL"
                print(
                    f"{verdict} createOrGet answers in the sandbox's log: {answers} (201 new, then 200 the same)"
                )
                failures += verdict == "FAIL"
            tokens = control.token_log(config["tenant_id"], app_id=config["client_id"])
            kinds = sorted(
                {f"{t['credentialType']}:{'issued' if t['success'] else t['errorCode']}" for t in tokens}
            )
            print(f"token endpoint: {len(tokens)} requests, {kinds}")
        finally:
            control.close()
            server.stop()
    elapsed = time.monotonic() - started
    print(f"\nclients check {'FAILED' if failures else 'passed'} in {elapsed:.1f} s")
    return EXIT_STEP_FAILED if failures else 0


# --- the client (the clients' venv: msgraph-sdk and azure-identity only) ---------------------------


class StepFailed(AssertionError):
    pass


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise StepFailed(message)


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return claims


def _odata_error(exc: BaseException) -> str:
    error = getattr(exc, "error", None)
    code = getattr(error, "code", None)
    message = getattr(error, "message", None) or str(exc)
    return f"{getattr(exc, 'response_status_code', '?')} {code}: {message}"


def _build(config: dict[str, Any]) -> tuple[Any, Any]:
    """The credential and the Graph client, as an integrator would write them."""
    from azure.identity import CertificateCredential
    from msgraph import GraphServiceClient

    if config["mode"] == "env":
        # trust: REQUESTS_CA_BUNDLE (azure-core's requests transport) and SSL_CERT_FILE (httpx) name
        # the combined bundle; authority: AZURE_AUTHORITY_HOST
        credential = CertificateCredential(
            config["tenant_id"],
            config["client_id"],
            certificate_path=config["certificate_path"],
            disable_instance_discovery=True,  # the sandbox is not one of Microsoft's clouds
        )
        client = GraphServiceClient(credentials=credential, scopes=[GRAPH_SCOPE])
    else:
        import ssl

        import httpx
        from kiota_authentication_azure.azure_identity_authentication_provider import (
            AzureIdentityAuthenticationProvider,
        )
        from msgraph.graph_request_adapter import GraphRequestAdapter, options
        from msgraph_core import GraphClientFactory

        credential = CertificateCredential(
            config["tenant_id"],
            config["client_id"],
            certificate_path=config["certificate_path"],
            authority=config["authority_url"],
            disable_instance_discovery=True,
            # azure-core hands this to requests per request, so REQUESTS_CA_BUNDLE cannot override it
            connection_verify=config["sandbox_ca"],
        )
        http = GraphClientFactory.create_with_default_middleware(
            client=httpx.AsyncClient(
                verify=ssl.create_default_context(cafile=config["sandbox_ca"]),
                timeout=httpx.Timeout(100, connect=30),
                http2=True,
            ),
            options=options,
        )
        adapter = GraphRequestAdapter(
            AzureIdentityAuthenticationProvider(credential, scopes=[GRAPH_SCOPE]), http
        )
        client = GraphServiceClient(request_adapter=adapter)
    client.request_adapter.base_url = f"{config['graph_url']}/v1.0"
    return credential, client


async def _steps(config: dict[str, Any]) -> list[tuple[str, Callable[[], Awaitable[str]]]]:
    from datetime import UTC, datetime, timedelta

    from msgraph.generated.models.o_data_errors.o_data_error import ODataError
    from msgraph.generated.models.online_meeting import OnlineMeeting
    from msgraph.generated.users.item.online_meetings.create_or_get.create_or_get_post_request_body import (
        CreateOrGetPostRequestBody,
    )
    from msgraph.generated.users.users_request_builder import UsersRequestBuilder
    from msgraph_core.tasks.page_iterator import PageIterator

    credential, client = _build(config)
    organizer = client.users.by_user_id(config["approved_organizer"])
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    end = start + timedelta(minutes=30)
    external_id = f"clients-check-{os.getpid()}"
    seen: dict[str, str] = {}

    async def untrusted() -> str:
        import logging

        from azure.core.exceptions import ClientAuthenticationError, ServiceRequestError
        from azure.identity import CertificateCredential

        bare = CertificateCredential(
            config["tenant_id"],
            config["client_id"],
            certificate_path=config["certificate_path"],
            authority=config["authority_url"],
            disable_instance_discovery=True,
            retry_total=0,  # a certificate error does not heal: no need for azure-core's 3 retries
        )
        logging.getLogger("azure.identity").setLevel(logging.ERROR)  # its warning repeats the error
        try:
            bare.get_token(GRAPH_SCOPE)
        except (ClientAuthenticationError, ServiceRequestError) as exc:
            text = str(exc)
            _check("CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text, text[:300])
            return "refused as expected: CERTIFICATE_VERIFY_FAILED"
        raise StepFailed(
            "a token came back although nothing trusts the sandbox CA: the check would prove nothing"
        )

    async def token() -> str:
        access = credential.get_token(GRAPH_SCOPE)
        claims = _claims(access.token)
        _check(claims.get("tid") == config["tenant_id"], f"tid {claims.get('tid')}")
        _check(set(ROLES) <= set(claims.get("roles", [])), f"roles {claims.get('roles')}")
        _check(claims.get("appidacr") == "2", f"appidacr {claims.get('appidacr')} (2 = certificate)")
        return f"roles {sorted(claims['roles'])}, appidacr 2 (certificate), expires in {access.expires_on - int(time.time())} s"

    async def token_aio() -> str:
        # azure.identity.aio goes through azure-core's aiohttp transport: SSL_CERT_FILE, not
        # REQUESTS_CA_BUNDLE, or connection_verify=
        from azure.identity.aio import CertificateCredential as AsyncCertificateCredential

        kwargs: dict[str, Any] = {"disable_instance_discovery": True}
        if config["mode"] == "transport":
            kwargs |= {"authority": config["authority_url"], "connection_verify": config["sandbox_ca"]}
        async with AsyncCertificateCredential(
            config["tenant_id"], config["client_id"], certificate_path=config["certificate_path"], **kwargs
        ) as aio:
            access = await aio.get_token(GRAPH_SCOPE)
        _check(_claims(access.token).get("tid") == config["tenant_id"], "another tenant's token")
        return "azure.identity.aio (aiohttp transport) got one too"

    async def create() -> str:
        meeting = await organizer.online_meetings.post(
            OnlineMeeting(subject="Clients check: create", start_date_time=start, end_date_time=end)
        )
        _check(meeting is not None and bool(meeting.id), "no meeting id")
        _check(
            str(meeting.join_web_url).startswith("https://teams.microsoft.com/l/meetup-join/"),
            str(meeting.join_web_url),
        )
        seen["created"] = meeting.id
        return f"id {meeting.id[:24]}..., joinWebUrl {meeting.join_web_url[:48]}..."

    async def create_or_get(which: str) -> str:
        body = CreateOrGetPostRequestBody(
            external_id=external_id,
            subject="Clients check: createOrGet",
            start_date_time=start,
            end_date_time=end,
        )
        meeting = await organizer.online_meetings.create_or_get.post(body)
        _check(meeting is not None and bool(meeting.id), "no meeting id")
        _check(meeting.external_id == external_id, f"externalId {meeting.external_id}")
        if which == "first":
            seen["external"] = meeting.id
            return f"externalId {external_id} -> {meeting.id[:24]}..."
        _check(meeting.id == seen["external"], f"a second meeting {meeting.id} for one externalId")
        return "same meeting as the first call"

    async def get() -> str:
        meeting = await organizer.online_meetings.by_online_meeting_id(seen["created"]).get()
        _check(
            meeting is not None and meeting.subject == "Clients check: create",
            f"subject {meeting and meeting.subject}",
        )
        _check(meeting.start_date_time == start, f"start {meeting.start_date_time} != {start}")
        return f"subject {meeting.subject!r}, start {meeting.start_date_time.isoformat()}"

    async def patch() -> str:
        item = organizer.online_meetings.by_online_meeting_id(seen["created"])
        updated = await item.patch(OnlineMeeting(subject="Clients check: patched"))
        _check(
            updated is not None and updated.subject == "Clients check: patched",
            f"answer {updated and updated.subject}",
        )
        again = await item.get()
        _check(
            again is not None and again.subject == "Clients check: patched",
            f"read back {again and again.subject}",
        )
        return "subject 'Clients check: patched' (answer and read back)"

    async def delete() -> str:
        item = organizer.online_meetings.by_online_meeting_id(seen["created"])
        await item.delete()
        try:
            await item.get()
        except ODataError as exc:
            _check(exc.response_status_code == 404, _odata_error(exc))
            return f"deleted; a get after it: {_odata_error(exc)}"
        raise StepFailed("the meeting is still there after DELETE")

    async def list_users() -> str:
        query = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
            top=5, select=["id", "userPrincipalName"]
        )
        config_ = UsersRequestBuilder.UsersRequestBuilderGetRequestConfiguration(query_parameters=query)
        first = await client.users.get(request_configuration=config_)
        _check(
            first is not None and len(first.value or []) == 5,
            f"first page {first and len(first.value or [])}",
        )
        _check(bool(first.odata_next_link), "no @odata.nextLink on a first page of 5")
        upns: list[str] = []

        def collect(user: Any) -> bool:
            upns.append(user.user_principal_name)
            return True

        iterator = PageIterator(first, client.request_adapter)
        await iterator.iterate(collect)
        _check(
            len(upns) == config["user_count"],
            f"{len(upns)} users paged, the tenant has {config['user_count']}",
        )
        _check(len(set(upns)) == len(upns), "a user came twice")
        return f"{len(upns)} users in pages of 5 via @odata.nextLink (PageIterator)"

    async def no_policy() -> str:
        other = client.users.by_user_id(config["unapproved_organizer"])
        try:
            await other.online_meetings.post(
                OnlineMeeting(subject="must be refused", start_date_time=start, end_date_time=end)
            )
        except ODataError as exc:
            _check(exc.response_status_code == 403, _odata_error(exc))
            _check(exc.error is not None and exc.error.code == "Forbidden", _odata_error(exc))
            _check(
                "No application access policy found for this app" in (exc.error.message or ""),
                _odata_error(exc),
            )
            return _odata_error(exc)
        raise StepFailed("a meeting was created for an organizer the policy is not granted to")

    steps: list[tuple[str, Callable[[], Awaitable[str]]]] = []
    if config["mode"] == "transport":
        # this machine's own CA variables are in place: prove that they do not suffice
        steps.append(("untrusted", untrusted))
    steps += [
        ("token", token),
        ("token (aio)", token_aio),
        ("create", create),
        ("createOrGet 1", lambda: create_or_get("first")),
        ("createOrGet 2", lambda: create_or_get("second")),
        ("get", get),
        ("patch", patch),
        ("delete", delete),
        ("list users", list_users),
        ("no policy 403", no_policy),
    ]
    return steps


async def _run_client(config: dict[str, Any]) -> int:
    failed = 0
    for name, step in await _steps(config):
        began = time.monotonic()
        try:
            detail = await step()
        except StepFailed as exc:
            failed += 1
            print(f"FAIL {name}: {exc}", flush=True)
            continue
        except Exception as exc:
            failed += 1
            shown = _odata_error(exc) if hasattr(exc, "response_status_code") else repr(exc)
            print(f"FAIL {name}: {type(exc).__name__}: {shown}", flush=True)
            continue
        print(f"ok   {name:<14} {detail} ({(time.monotonic() - began) * 1000:.0f} ms)", flush=True)
    return EXIT_STEP_FAILED if failed else 0


def client(config_file: Path) -> int:
    config = json.loads(config_file.read_text())
    if config["mode"] == "env":
        trusted = {
            name: os.environ.get(name)
            for name in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "AZURE_AUTHORITY_HOST")
        }
        print("   " + ", ".join(f"{k}={v}" for k, v in trusted.items()))
    else:
        pinned = {name: os.environ[name] for name in CA_VARIABLES if name in os.environ}
        print(f"   this machine's CA variables stay set: {pinned or 'none'}")
    return asyncio.run(_run_client(config))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--venv", type=Path, default=REPO / ".venv-clients", help="the clients' venv (built when needed)"
    )
    parser.add_argument("--client", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.client is not None:
        return client(args.client)
    return drive(args.venv)


if __name__ == "__main__":
    sys.exit(main())
