"""The sandbox's sign-in and directory audit APIs, read through the Graph client's audit service."""

from __future__ import annotations

import httpx
import pytest

from meetgate.graph.audit import AuditLogService, RequestPacer
from meetgate.graph.errors import AuthenticationError, AuthorizationError


def _tls(world):
    import ssl

    return ssl.create_default_context(cafile=str(world.app.ca_bundle))


def _bearer(world, profile) -> dict[str, str]:
    with world.client(profile) as client:
        return {"Authorization": f"Bearer {client.tokens.get_token().token}"}


def test_sign_ins_are_generated_from_token_requests(world):
    world.sign_in(3)
    world.sign_in(1, forwarded_for="203.0.113.7")
    with world.client(world.reader) as client:
        logs = AuditLogService(client.http, page_size=2)
        items = list(logs.service_principal_sign_ins(world.app.client_id))
        assert logs.requests == 2  # 4 records in pages of 2
    assert len(items) == 4
    assert [i["createdDateTime"] for i in items] == sorted(
        (i["createdDateTime"] for i in items), reverse=True
    )
    newest = items[0]
    assert newest["ipAddress"] == "203.0.113.7" and newest["location"]["countryOrRegion"] == "AU"
    assert {i["appId"] for i in items} == {world.app.client_id}
    assert {i["servicePrincipalId"] for i in items} == {world.app.service_principal_id}
    assert {i["clientCredentialType"] for i in items} == {"certificate"}
    assert all(i["status"]["errorCode"] == 0 and i["servicePrincipalCredentialKeyId"] for i in items)


def test_failed_sign_in_and_filters(world, tmp_path):
    import dataclasses

    from monitor_kit import new_certificate

    key, cert, _ = new_certificate(tmp_path, "not-registered")
    wrong = dataclasses.replace(world.profile, private_key_path=key, certificate_path=cert)
    with pytest.raises(AuthenticationError), world.client(wrong) as client:
        client.tokens.get_token()
    world.sign_in(1)
    url = f"{world.app.graph_url}/beta/auditLogs/signIns"
    sp_filter = f"appId eq '{world.app.client_id}' and signInEventTypes/any(t: t eq 'servicePrincipal')"
    with httpx.Client(verify=_tls(world), headers=_bearer(world, world.reader)) as http:
        failed = http.get(url, params={"$filter": sp_filter + " and status/errorCode ne 0"}).json()["value"]
        # 5 requests: the limit of the log APIs per 10 s
        since = http.get(
            url, params={"$filter": f"createdDateTime gt {failed[0]['createdDateTime']} and {sp_filter}"}
        ).json()["value"]
        # without the event type filter (and on v1.0) only user sign-ins are listed, as in Graph
        users_only = http.get(url, params={"$filter": f"appId eq '{world.app.client_id}'"}).json()["value"]
        v1 = http.get(url.replace("/beta/", "/v1.0/")).json()["value"]
        bad = http.get(url, params={"$filter": "riskLevel eq 'high'"})
    assert len(failed) == 1 and failed[0]["status"]["errorCode"] == 700027
    assert failed[0]["status"]["failureReason"]
    assert [s["status"]["errorCode"] for s in since] == [0]
    assert users_only == [] and v1 == []
    assert bad.status_code == 400 and "riskLevel" in bad.json()["error"]["message"]


def test_paging_is_stable_while_records_arrive(world):
    world.sign_in(3)
    url = f"{world.app.graph_url}/beta/auditLogs/signIns"
    params = {
        "$filter": f"appId eq '{world.app.client_id}' and signInEventTypes/any(t: t eq 'servicePrincipal')",
        "$top": "2",
    }
    with httpx.Client(verify=_tls(world), headers=_bearer(world, world.reader)) as http:
        first = http.get(url, params=params).json()
        world.sign_in(2)  # newer records arrive while the client pages
        second = http.get(first["@odata.nextLink"]).json()
    ids = [i["id"] for i in first["value"] + second["value"]]
    assert len(ids) == len(set(ids)) == 3 and "@odata.nextLink" not in second


def test_audit_apis_need_audit_log_read_all(world):
    with world.client() as client, pytest.raises(AuthorizationError) as info:
        list(AuditLogService(client.http).directory_audits())
    assert info.value.status == 403


def test_five_requests_per_ten_seconds(world):
    url = f"{world.app.graph_url}/v1.0/auditLogs/directoryAudits"
    with httpx.Client(verify=_tls(world), headers=_bearer(world, world.reader)) as http:
        statuses = [http.get(url).status_code for _ in range(6)]
        last = http.get(url)
    assert statuses == [200] * 5 + [429]
    assert last.status_code == 429 and 1 <= int(last.headers["Retry-After"]) <= 10


def test_pacer_keeps_the_client_under_the_limit():
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    pacer = RequestPacer(5, 10.0, clock=lambda: now[0], sleep=sleep)
    for _ in range(12):
        pacer.wait()
        now[0] += 0.1
    # 12 requests need three windows: two waits of about 10 s minus the time already spent
    assert len(slept) == 2 and all(9.0 < s <= 10.01 for s in slept)
    assert pacer.waited == pytest.approx(sum(slept))


def test_directory_audits_of_real_changes_with_either_dash(world):
    with world.client(world.admin) as admin:
        secret = admin.http.post(
            f"/applications/{world.app.object_id}/addPassword",
            json={"passwordCredential": {"displayName": "x"}},
        )
    assert secret["secretText"]
    url = f"{world.app.graph_url}/v1.0/auditLogs/directoryAudits"
    with httpx.Client(verify=_tls(world), headers=_bearer(world, world.reader)) as http:
        target = f"targetResources/any(t: t/id eq '{world.app.object_id}')"
        en_dash = http.get(
            url,
            params={
                "$filter": "activityDisplayName eq 'Update application \u2013 Certificates and secrets management' "
                f"and {target}"
            },
        ).json()["value"]
    assert len(en_dash) == 1
    change = en_dash[0]["targetResources"][0]["modifiedProperties"][0]
    assert "KeyType=Password" in change["newValue"] and secret["secretText"] not in str(en_dash)
    assert en_dash[0]["initiatedBy"]["app"]["appId"] == world.admin.client_id
