"""`meetgate sandbox env`: the exports and the combined CA bundle that make clients trust the sandbox.

The real clients are exercised too where this machine has them: Python's ssl, curl (CURL_CA_BUNDLE),
Node (NODE_EXTRA_CA_CERTS) and Java (a copy of the JDK's trust store with the CA imported), each
reaching a running sandbox through nothing but what the command printed or the docs say.
"""

from __future__ import annotations

import json
import os
import shutil
import ssl
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from meetgate import certificates
from meetgate.cli.main import app
from meetgate_sandbox.server import SandboxOptions, SandboxServer
from meetgate_sandbox.trust import BUNDLE_NAME, render, system_bundle

CA_EXPORTS = ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "CURL_CA_BUNDLE", "NODE_EXTRA_CA_CERTS")
URL_EXPORTS = ("AZURE_AUTHORITY_HOST", "MEETGATE_SANDBOX_AUTHORITY_URL", "MEETGATE_SANDBOX_GRAPH_URL")


def _pem_count(path: Path | str) -> int:
    return Path(path).read_text(encoding="utf-8", errors="replace").count("-----BEGIN CERTIFICATE-----")


def _state_with_ca(state: Path) -> Path:
    """A state folder as `meetgate sandbox serve` leaves it once stopped: tls/ca.pem, no sandbox.json."""
    ca = certificates.generate_ca()
    path = state / "tls" / "ca.pem"
    certificates.write_public_file(path, certificates.certificate_pem(ca.certificate))
    return path


def _env(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["sandbox", "env", *args])
    return result.exit_code, result.stdout, result.output


def _exports(sh_text: str) -> dict[str, str]:
    """What a POSIX shell sees after eval-ing the text (quoting included)."""
    script = sh_text + "\nenv -0\n"
    out = subprocess.run(
        ["sh", "-c", script], capture_output=True, check=True, env={"PATH": os.environ["PATH"]}
    )
    pairs = (item.split(b"=", 1) for item in out.stdout.split(b"\0") if b"=" in item)
    return {k.decode(): v.decode() for k, v in pairs}


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    """A sandbox with a state folder, so that it writes sandbox.json as `serve` does."""
    state = tmp_path_factory.mktemp("env-state")
    with SandboxServer(SandboxOptions(state_dir=state, users=2)) as server:
        yield state, server.info


def test_a_stopped_sandbox_gives_the_ca_exports_and_a_combined_bundle(tmp_path):
    ca = _state_with_ca(tmp_path)
    code, out, _ = _env("--state", str(tmp_path), "--json")
    assert code == 0, out
    data = json.loads(out)
    assert data["running"] is False
    assert set(data["env"]) == {*CA_EXPORTS, "MEETGATE_SANDBOX_CA"}  # no URLs: they change with each run
    bundle = Path(data["combined_bundle"])
    assert bundle == tmp_path.resolve() / "tls" / BUNDLE_NAME
    for name in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "CURL_CA_BUNDLE"):
        assert data["env"][name] == str(bundle)
    assert data["env"]["NODE_EXTRA_CA_CERTS"] == str(ca.resolve())  # Node adds it to its own roots

    # the system's store, then the sandbox CA: both are trusted
    system = Path(data["system_bundle"])
    assert _pem_count(bundle) == _pem_count(system) + 1
    text = bundle.read_text()
    assert text.index(system.read_text().strip().splitlines()[-1]) < text.index(ca.read_text().strip())
    context = ssl.create_default_context(cafile=str(bundle))
    ca_cert = certificates.load_certificate(ca)
    subjects = [dict(x[0] for x in c["subject"]) for c in context.get_ca_certs()]
    assert {"commonName": ca_cert.subject.rfc4514_string().removeprefix("CN=")} in subjects
    assert len(subjects) > 10  # the system's roots came along
    # certificates only, public: 0644 (the CA's key stays 0600 in ca.key.pem)
    assert stat.S_IMODE(bundle.stat().st_mode) == 0o644
    assert "PRIVATE KEY" not in text


def test_shell_output_sh_fish_powershell(tmp_path):
    _state_with_ca(tmp_path)
    code, sh, _ = _env("--state", str(tmp_path))
    assert code == 0
    lines = [line for line in sh.splitlines() if not line.startswith("#")]
    assert [line.split("=", 1)[0] for line in lines] == [
        f"export {name}" for name in (*CA_EXPORTS, "MEETGATE_SANDBOX_CA")
    ]
    assert "not running" in sh.splitlines()[0]
    assert f'eval "$(meetgate sandbox env --state {tmp_path})"' in sh
    exported = _exports(sh)
    assert exported["SSL_CERT_FILE"] == str(tmp_path.resolve() / "tls" / BUNDLE_NAME)

    code, fish, _ = _env("--state", str(tmp_path), "--shell", "fish")
    assert code == 0
    assert f"set -gx SSL_CERT_FILE '{exported['SSL_CERT_FILE']}'" in fish.splitlines()
    assert "| source" in fish

    code, pwsh, _ = _env("--state", str(tmp_path), "--shell", "powershell")
    assert code == 0
    assert f"$Env:CURL_CA_BUNDLE = '{exported['CURL_CA_BUNDLE']}'" in pwsh.splitlines()
    assert "Invoke-Expression" in pwsh

    code, _, output = _env("--state", str(tmp_path), "--shell", "cmd")
    assert code == 2
    assert "sh, fish, powershell" in output


def test_values_with_quotes_survive_each_shells_quoting():
    value = '/tmp/it\'s a \\ "path" $HOME'
    assert _exports(render({"X": value}, "sh"))["X"] == value
    assert render({"X": value}, "fish") == "set -gx X '/tmp/it\\'s a \\\\ \"path\" $HOME'\n"
    assert render({"X": value}, "powershell") == "$Env:X = '/tmp/it''s a \\ \"path\" $HOME'\n"
    with pytest.raises(ValueError, match="unknown shell"):
        render({"X": value}, "cmd")


def test_a_running_sandbox_adds_its_urls(running):
    state, info = running
    code, out, _ = _env("--state", str(state), "--json")
    assert code == 0, out
    data = json.loads(out)
    assert data["running"] is True
    env = data["env"]
    assert env["AZURE_AUTHORITY_HOST"] == env["MEETGATE_SANDBOX_AUTHORITY_URL"] == info.authority_url
    assert env["MEETGATE_SANDBOX_GRAPH_URL"] == info.graph_url
    assert env["MEETGATE_SANDBOX_CONTROL_URL"] == info.control_url
    assert env["MEETGATE_SANDBOX_TENANT_ID"] == info.tenant_id
    assert env["NODE_EXTRA_CA_CERTS"] == env["MEETGATE_SANDBOX_CA"] == str(info.ca_bundle)
    code, sh, _ = _env("--state", str(state))
    assert sh.splitlines()[0].endswith(": running")
    assert {*CA_EXPORTS, *URL_EXPORTS} <= set(_exports(sh))

    # the bundle verifies the sandbox's certificate, as SSL_CERT_FILE makes httpx (and OpenSSL) do
    with httpx.Client(verify=ssl.create_default_context(cafile=env["SSL_CERT_FILE"])) as client:
        assert client.get(f"{info.control_url}/health").json()["status"] == "ok"
    # and the system store alone does not
    with (
        httpx.Client(verify=ssl.create_default_context(cafile=data["system_bundle"])) as client,
        pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"),
    ):
        client.get(f"{info.control_url}/health")


def test_running_it_again_never_nests_the_bundle_in_itself(tmp_path, monkeypatch):
    _state_with_ca(tmp_path)
    first = json.loads(_env("--state", str(tmp_path), "--json")[1])
    bundle = first["combined_bundle"]
    count = _pem_count(bundle)
    # as after eval "$(meetgate sandbox env)"
    for name in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.setenv(name, bundle)
    again = json.loads(_env("--state", str(tmp_path), "--json")[1])
    assert again["system_bundle"] == first["system_bundle"] != bundle
    assert _pem_count(bundle) == count
    assert system_bundle(avoid=Path(bundle)) != Path(bundle)


def test_system_bundle_option_combines_with_a_given_bundle(tmp_path):
    _state_with_ca(tmp_path / "state")
    company = tmp_path / "company.pem"
    certificates.write_public_file(
        company, certificates.certificate_pem(certificates.generate_ca("Corp").certificate)
    )
    data = json.loads(_env("--state", str(tmp_path / "state"), "--system-bundle", str(company), "--json")[1])
    assert data["system_bundle"] == str(company)
    assert _pem_count(data["combined_bundle"]) == 2
    code, _, output = _env("--state", str(tmp_path / "state"), "--system-bundle", data["combined_bundle"])
    assert code != 0
    assert "combined bundle itself" in output


def test_a_stale_sandbox_json_counts_as_not_running(tmp_path):
    ca = _state_with_ca(tmp_path)
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    info = {"authority_url": "https://127.0.0.1:1", "graph_url": "https://127.0.0.1:1",
            "control_url": "https://127.0.0.1:1/_sandbox", "ca_bundle": str(ca), "tenant_id": "t",
            "tenant_domain": "d", "users": [], "pid": int(gone.stdout)}  # fmt: skip
    (tmp_path / "sandbox.json").write_text(json.dumps(info))
    data = json.loads(_env("--state", str(tmp_path), "--json")[1])
    assert data["running"] is False
    assert "AZURE_AUTHORITY_HOST" not in data["env"]


def test_no_ca_says_what_to_do(tmp_path):
    code, _, output = _env("--state", str(tmp_path))
    assert code != 0
    assert "meetgate sandbox serve --state" in output


# --- other clients, as docs/sandbox.md tells them to -------------------------------------------------


def _client_env(running) -> dict[str, str]:
    state, _ = running
    data = json.loads(_env("--state", str(state), "--json")[1])
    env = {k: v for k, v in os.environ.items() if k not in CA_EXPORTS}
    return env | data["env"]


@pytest.mark.skipif(shutil.which("curl") is None, reason="no curl on this machine")
def test_curl_trusts_the_sandbox_through_curl_ca_bundle(running):
    env = _client_env(running)
    url = f"{env['MEETGATE_SANDBOX_CONTROL_URL']}/health"
    ok = subprocess.run(
        ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", url], env=env, capture_output=True, text=True
    )
    assert ok.stdout == "200", ok.stderr
    # Debian's curl (and others built with a fixed CA path) does not read SSL_CERT_FILE
    without = {k: v for k, v in env.items() if k != "CURL_CA_BUNDLE"}
    refused = subprocess.run(
        ["curl", "-sS", "-o", "/dev/null", url], env=without, capture_output=True, text=True
    )
    if refused.returncode == 0:
        pytest.skip("this curl reads SSL_CERT_FILE too")
    assert refused.returncode == 60  # peer certificate cannot be authenticated


@pytest.mark.skipif(shutil.which("node") is None, reason="no node on this machine")
def test_node_trusts_the_sandbox_through_node_extra_ca_certs(running):
    env = _client_env(running)
    script = (
        "require('https').get(process.env.MEETGATE_SANDBOX_CONTROL_URL + '/health',"
        " r => { console.log(r.statusCode); process.exit(0) })"  # not wait for the keep-alive connection
        ".on('error', e => { console.log(e.code); process.exit(1) })"
    )
    ok = subprocess.run(["node", "-e", script], env=env, capture_output=True, text=True, timeout=60)
    assert ok.stdout.strip() == "200", ok.stdout + ok.stderr
    without = {k: v for k, v in env.items() if k != "NODE_EXTRA_CA_CERTS"}
    refused = subprocess.run(["node", "-e", script], env=without, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1
    assert refused.stdout.strip() in {"UNABLE_TO_VERIFY_LEAF_SIGNATURE", "UNABLE_TO_GET_ISSUER_CERT_LOCALLY"}


JAVA_FETCH = """
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;

public class Fetch {
    public static void main(String[] args) throws Exception {
        HttpResponse<String> r = HttpClient.newHttpClient().send(
            HttpRequest.newBuilder(URI.create(args[0])).build(), HttpResponse.BodyHandlers.ofString());
        System.out.println(r.statusCode());
    }
}
"""


def _java_cacerts() -> Path | None:
    java = shutil.which("java")
    if java is None or shutil.which("keytool") is None:
        return None
    store = Path(java).resolve().parent.parent / "lib" / "security" / "cacerts"
    return store if store.exists() else None


@pytest.mark.slow
@pytest.mark.skipif(_java_cacerts() is None, reason="no JDK with keytool on this machine")
def test_java_trusts_the_sandbox_through_a_trust_store_copy(running, tmp_path):
    env = _client_env(running)
    cacerts = _java_cacerts()
    assert cacerts is not None
    store = tmp_path / "sandbox-cacerts"
    shutil.copyfile(cacerts, store)  # the docs' command: a copy, so every public root stays trusted
    subprocess.run(
        ["keytool", "-importcert", "-noprompt", "-alias", "meetgate-sandbox", "-file", env["MEETGATE_SANDBOX_CA"],
         "-keystore", str(store), "-storepass", "changeit"],
        check=True, capture_output=True,
    )  # fmt: skip
    (tmp_path / "Fetch.java").write_text(JAVA_FETCH)
    url = f"{env['MEETGATE_SANDBOX_CONTROL_URL']}/health"
    ok = subprocess.run(
        ["java", f"-Djavax.net.ssl.trustStore={store}", "-Djavax.net.ssl.trustStorePassword=changeit",
         str(tmp_path / "Fetch.java"), url],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert ok.stdout.strip() == "200", ok.stderr[-2000:]
    refused = subprocess.run(
        ["java", str(tmp_path / "Fetch.java"), url], capture_output=True, text=True, timeout=120
    )
    assert "PKIX path building failed" in refused.stderr


# --- Python clients and the variables' precedence, as the docs' table says ---------------------------


@pytest.fixture(scope="module")
def app_credential(running):
    """An app with a certificate in the running sandbox's default tenant."""
    from meetgate_sandbox.control import SandboxControl

    _, info = running
    pair = certificates.generate_self_signed("env tests")
    with SandboxControl(info.control_url, info.ca_bundle) as control:
        app_ = control.register_app(
            info.tenant_id, "env tests", certificate_pem=certificates.certificate_pem(pair.certificate)
        )
    key = certificates.private_key_pem(pair.private_key).decode()
    return app_["appId"], {"private_key": key, "thumbprint": pair.thumbprint_sha1}


@pytest.fixture
def trust(running, monkeypatch) -> dict[str, str]:
    """The combined bundle, the system's store and the sandbox CA; no CA variable set yet."""
    state, _ = running
    data = json.loads(_env("--state", str(state), "--json")[1])
    for name in (*CA_EXPORTS, "SSL_CERT_DIR"):
        monkeypatch.delenv(name, raising=False)
    return {"combined": data["combined_bundle"], "system": data["system_bundle"], "ca": data["sandbox_ca"]}


def _msal_token(info, app_credential, **kwargs) -> dict:
    import msal

    client_id, credential = app_credential
    application = msal.ConfidentialClientApplication(
        client_id,
        client_credential=credential,
        authority=f"{info.authority_url}/{info.tenant_id}",
        instance_discovery=False,
        **kwargs,
    )
    return application.acquire_token_for_client(["https://graph.microsoft.com/.default"])


def test_msal_python_verify_loses_to_requests_ca_bundle(running, app_credential, trust, monkeypatch):
    import requests

    _, info = running
    assert "access_token" in _msal_token(info, app_credential, verify=trust["ca"])
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", trust["system"])  # as on a machine that sets it
    with pytest.raises(requests.exceptions.SSLError):
        _msal_token(info, app_credential, verify=trust["ca"])
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", trust["combined"])  # after eval "$(meetgate sandbox env)"
    assert "access_token" in _msal_token(info, app_credential)


def test_requests_reads_requests_ca_bundle_then_curl_ca_bundle_not_ssl_cert_file(running, trust, monkeypatch):
    import requests

    _, info = running
    url = f"{info.control_url}/health"
    monkeypatch.setenv("SSL_CERT_FILE", trust["combined"])
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(url, timeout=10)
    monkeypatch.setenv("CURL_CA_BUNDLE", trust["combined"])
    assert requests.get(url, timeout=10).status_code == 200
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", trust["system"])  # first in line
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(url, timeout=10)
    assert requests.get(url, timeout=10, verify=trust["ca"]).status_code == 200  # per request: wins
    session = requests.Session()
    session.verify = trust["ca"]  # per session: the variable wins
    with pytest.raises(requests.exceptions.SSLError):
        session.get(url, timeout=10)


def test_httpx_reads_ssl_cert_file(running, trust, monkeypatch):
    _, info = running
    url = f"{info.control_url}/health"
    with httpx.Client() as client, pytest.raises(httpx.ConnectError):
        client.get(url)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", trust["combined"])  # not for httpx
    with httpx.Client() as client, pytest.raises(httpx.ConnectError):
        client.get(url)
    monkeypatch.setenv("SSL_CERT_FILE", trust["combined"])
    with httpx.Client() as client:
        assert client.get(url).status_code == 200
