"""Every rule triggered by really doing the thing in the sandbox — and a quiet day raising nothing.

Each test is one tenant: the integration app signs in and creates meetings through the gateway,
an admin automation changes the app registration, the policy is granted through Teams' cmdlets
(the pwsh stand-in); then ``Monitor.run`` collects the sandbox's logs and evaluates the rules.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import sys
import time

import pytest
from monitor_kit import ALL_DAY, Deployment, new_certificate

from meetgate.admin.monitoring.model import CertificateStatus, tighten
from meetgate.graph.errors import AuthenticationError

STANDIN = (sys.executable, "-m", "meetgate_sandbox.pwsh")


def _since(mark: dt.datetime) -> dt.timedelta:
    return dt.datetime.now(dt.UTC) - mark


def _mark() -> dt.datetime:
    time.sleep(0.01)  # the sandbox stamps records to the millisecond
    mark = dt.datetime.now(dt.UTC)
    time.sleep(0.01)
    return mark


def _policy_snapshot(deployment, world, approved_ids):
    """Read the tenant's grants as `meetgate policy` does (Teams cmdlets, here the pwsh stand-in)."""
    from meetgate.admin.policy.powershell import PowerShellBackend, PwshConnection, SubprocessPwshRunner

    env = {
        "MEETGATE_SANDBOX_CONTROL_URL": world.app.control.control_url,
        "MEETGATE_SANDBOX_CA_BUNDLE": str(world.app.ca_bundle),
        "MEETGATE_SANDBOX_AUTHORITY_URL": world.app.authority_url,
    }
    profile = world.profile
    backend = PowerShellBackend(
        PwshConnection(
            world.app.tenant_id, world.app.client_id, profile.certificate_path, profile.private_key_path
        ),
        SubprocessPwshRunner(STANDIN, timeout_seconds=60, extra_env=env),
    )
    state = backend.read_state("Tag:TeamsMeetingsIntegration")
    return deployment.monitor.collector.snapshot_policy(state, approved_ids)


def test_quiet_normal_day_raises_nothing(deployment, world):
    world.sign_in(2)
    with deployment.gateway() as gw:
        assert [gw.create("booking", u.upn) for u in world.app.pilot_users] == [201, 201]
        assert gw.create("crm", world.app.pilot_users[0].upn) == 201
    snapshot = _policy_snapshot(deployment, world, {u.id for u in world.app.pilot_users})
    assert set(snapshot.holders) == {u.id for u in world.app.pilot_users}
    result = deployment.run(dt.timedelta(hours=24))
    assert result.collected.new_sign_ins >= 3 and result.alerts == []
    report = deployment.monitor.report(result)
    assert report["gateway"]["meetingsCreated"] == 3 and report["policy"]["holding"] == 2


def test_burst_of_creations(world):
    th = dataclasses.replace(ALL_DAY, creations_per_hour=8, baseline_min_creations=6)
    deployment = Deployment(world, th)
    try:
        with deployment.gateway() as gw:
            statuses = [gw.create("booking", world.app.pilot_users[1].upn) for _ in range(9)]
        assert statuses == [201] * 9
        assert deployment.rules() == ["creations_absolute", "creations_consumer", "creations_organizer"]
    finally:
        deployment.close()


def test_sign_ins_with_a_wrong_certificate(deployment, world, tmp_path):
    key, cert, _ = new_certificate(tmp_path, "stolen-laptop")
    wrong = dataclasses.replace(world.profile, private_key_path=key, certificate_path=cert)
    for _ in range(3):
        with pytest.raises(AuthenticationError), world.client(wrong) as client:
            client.tokens.get_token()
    result = deployment.run()
    (alert,) = result.alerts
    assert alert.rule == "sign_in_failures" and "AADSTS700027" in alert.title
    assert all("AADSTS700027" in line for line in alert.evidence) and len(alert.evidence) == 3


def test_sign_in_from_a_new_ip_and_country(deployment, world):
    world.sign_in(2)
    deployment.run()  # the history: this app signs in from 127.0.0.1
    mark = _mark()
    world.sign_in(1, forwarded_for="203.0.113.50")
    alerts = deployment.run(_since(mark)).alerts
    assert sorted(a.rule for a in alerts) == ["sign_in_new_ip", "sign_in_new_location"]
    assert {a.subject for a in alerts} == {"203.0.113.50", "Sydney, AU"}


def test_client_secret_added_and_used(deployment, world):
    world.sign_in(1)
    deployment.run()
    mark = _mark()
    with world.client(world.admin) as admin:
        secret = admin.http.post(
            f"/applications/{world.app.object_id}/addPassword",
            json={"passwordCredential": {"displayName": "tmp"}},
        )["secretText"]
    from meetgate.composition import graph_settings_from_profile
    from meetgate.graph.client import GraphClient
    from meetgate.graph.credentials import ClientSecretCredential

    settings = dataclasses.replace(
        graph_settings_from_profile(world.profile), credential=ClientSecretCredential(secret)
    )
    with GraphClient(settings) as with_secret:
        with_secret.tokens.get_token()
    alerts = deployment.run(_since(mark)).alerts
    assert sorted(a.rule for a in alerts) == ["new_client_secret", "sign_in_new_key"]
    assert all(secret not in repr(a.to_dict()) for a in alerts)


def test_permission_granted_to_the_app(deployment, world):
    from meetgate.graph.applications import ApplicationsService

    with world.client(world.admin) as admin:
        apps = ApplicationsService(admin.http)
        graph_sp = apps.graph_service_principal()
        role = next(r for r in graph_sp.app_roles if r.value == "Directory.ReadWrite.All")
        apps.grant_app_role(
            resource_id=graph_sp.id, principal_id=world.app.service_principal_id, app_role_id=role.id
        )
    (alert,) = deployment.run().alerts
    assert alert.rule == "permission_change" and "granted" in alert.title


def test_policy_granted_globally_and_beyond_the_approved_list(deployment, world):
    control, tid = world.app.control, world.app.tenant_id
    control.grant_policy(tid, "TeamsMeetingsIntegration", global_=True)
    control.grant_policy(tid, "TeamsMeetingsIntegration", user=world.app.other_users[0].id)
    _policy_snapshot(deployment, world, {u.id for u in world.app.pilot_users})
    alerts = {a.rule: a for a in deployment.run().alerts}
    assert set(alerts) == {"policy_global", "policy_beyond_approved"}
    assert world.app.other_users[0].upn in alerts["policy_beyond_approved"].evidence[0]


def test_consumer_overreach_and_failure_spikes(deployment, world):
    other = world.app.other_users[0].upn  # on crm's allowlist, not granted the policy
    with deployment.gateway() as gw:
        assert gw.create("booking", other) == 403  # outside booking's allowlist
        assert [gw.create("crm", other) for _ in range(3)] == [403] * 3  # Graph's policy 403
        gw.keys["crm"] = "mg_wrong"
        assert [gw.create("crm", other) for _ in range(5)] == [401] * 5
    alerts = {a.rule: a for a in deployment.run().alerts}
    assert set(alerts) == {"consumer_overreach", "failures_auth_401", "failures_policy_403"}
    assert other in alerts["consumer_overreach"].remedy


def test_activity_at_unusual_hours(world):
    hour = dt.datetime.now(dt.UTC).hour
    th = dataclasses.replace(ALL_DAY, active_hours=((hour + 1) % 24, (hour + 2) % 24 or 24))
    deployment = Deployment(world, th)
    try:
        with deployment.gateway() as gw:
            assert gw.create("booking", world.app.pilot_users[0].upn) == 201
        (alert,) = deployment.run().alerts
        assert alert.rule == "unusual_hours" and len(alert.evidence) >= 2  # the creation and the sign-in
    finally:
        deployment.close()


def test_certificate_expiry_approaching(deployment, world, tmp_path):
    from meetgate.graph.credentials import CertificateCredential

    key, cert, _ = new_certificate(tmp_path, "short", valid_days=5)
    short = CertificateCredential.from_pem_files(key, cert)
    deployment.monitor.certificates = [CertificateStatus(short.thumbprint_sha1, short.not_after, str(cert))]
    (alert,) = deployment.run().alerts
    assert alert.rule == "certificate_expiry" and alert.severity == "critical"


def test_hypercare_window_tightens_thresholds(deployment, world, tmp_path):
    from meetgate.store.runs import RunRepository

    key, cert, _ = new_certificate(tmp_path, "old")
    wrong = dataclasses.replace(world.profile, private_key_path=key, certificate_path=cert)
    with pytest.raises(AuthenticationError), world.client(wrong) as client:
        client.tokens.get_token()
    assert deployment.rules() == []  # one failure is below the normal threshold (3)
    # what `meetgate golive --start` records
    now = dt.datetime.now(dt.UTC)
    RunRepository(deployment.store).record_golive(
        tenant_id=world.app.tenant_id,
        client_id=world.app.client_id,
        verdict="GO",
        hypercare_until=now + dt.timedelta(days=7),
        report=None,
        at=now - dt.timedelta(hours=1),
    )
    deployment.monitor.hypercare_thresholds = tighten(ALL_DAY)
    result = deployment.run()
    assert result.hypercare and [a.rule for a in result.alerts] == ["sign_in_failures"]


def test_watch_sends_each_alert_once(deployment, world, tmp_path):
    key, cert, _ = new_certificate(tmp_path, "wrong")
    wrong = dataclasses.replace(world.profile, private_key_path=key, certificate_path=cert)
    for _ in range(3):
        with pytest.raises(AuthenticationError), world.client(wrong) as client:
            client.tokens.get_token()
    first = deployment.run()
    second = deployment.run()
    assert [a.rule for a in first.new_alerts] == ["sign_in_failures"]
    assert second.new_alerts == [] and [a.rule for a in second.alerts] == ["sign_in_failures"]
    (stored,) = deployment.monitor.repo.alerts()
    assert stored["occurrences"] == 2
