"""Sandbox throughput, each figure next to the alternative it is compared with (same run).

- token endpoint: client secret vs certificate assertion (RS256/x5t and PS256/x5t#S256);
- Graph GET /users/{id}: one keep-alive connection vs a new TLS connection per request;
- listing 2,000 users: $top=999 vs $top=100 (number of round trips).
"""

from __future__ import annotations

import time
import uuid

import httpx
import jwt

from meetgate import certificates
from meetgate_sandbox.control import SandboxControl, ssl_context
from meetgate_sandbox.server import SandboxOptions, SandboxServer

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
SCOPE = "https://graph.microsoft.com/.default"


def rate(label: str, count: int, fn) -> float:
    started = time.perf_counter()
    for _ in range(count):
        fn()
    elapsed = time.perf_counter() - started
    print(f"  {label:<46} {count / elapsed:8.1f}/s  {elapsed / count * 1000:7.2f} ms each")
    return elapsed


def main() -> None:
    with SandboxServer(SandboxOptions(users=2000)) as server:
        info = server.info
        pair = certificates.generate_self_signed("bench")
        with SandboxControl(info.control_url, info.ca_bundle) as control:
            app = control.register_app(
                info.tenant_id,
                "bench",
                certificate_pem=certificates.certificate_pem(pair.certificate),
                with_secret=True,
                roles=["User.Read.All"],
            )
        context = ssl_context(info.ca_bundle)
        url = f"{info.authority_url}/{info.tenant_id}/oauth2/v2.0/token"
        with httpx.Client(verify=context) as client:

            def token(**form: str) -> str:
                body = {"grant_type": "client_credentials", "scope": SCOPE, "client_id": app["appId"], **form}
                response = client.post(url, data=body)
                assert response.status_code == 200, response.text
                return str(response.json()["access_token"])

            def assertion(alg: str) -> str:
                now = int(time.time())
                header = (
                    {"x5t": certificates.x5t(pair.certificate)}
                    if alg == "RS256"
                    else {"x5t#S256": certificates.x5t_s256(pair.certificate)}
                )
                claims = {"aud": url, "iss": app["appId"], "sub": app["appId"], "jti": str(uuid.uuid4()),
                          "nbf": now, "exp": now + 600}  # fmt: skip
                return jwt.encode(claims, pair.private_key, algorithm=alg, headers=header)

            print("token endpoint (client-side assertion signing included)")
            rate("client secret", 100, lambda: token(client_secret=app["clientSecret"]))
            for alg in ("RS256", "PS256"):
                rate(
                    f"certificate assertion {alg}",
                    100,
                    lambda alg=alg: token(
                        client_assertion_type=ASSERTION_TYPE, client_assertion=assertion(alg)
                    ),
                )
            headers = {"Authorization": f"Bearer {token(client_secret=app['clientSecret'])}"}
            user = info.users[0].id
            print("Graph GET /v1.0/users/{id}")
            rate(
                "one keep-alive connection",
                300,
                lambda: client.get(f"{info.graph_url}/v1.0/users/{user}", headers=headers),
            )

            def fresh() -> None:
                with httpx.Client(verify=context) as once:
                    once.get(f"{info.graph_url}/v1.0/users/{user}", headers=headers)

            rate("new TLS connection per request", 100, fresh)
            print("listing 2,001 users")
            for top in (999, 100):
                pages = 0

                def walk(top: int = top) -> None:
                    nonlocal pages
                    link: str | None = f"{info.graph_url}/v1.0/users?$top={top}&$select=id,userPrincipalName"
                    pages = 0
                    while link:
                        body = client.get(link, headers=headers).json()
                        pages += 1
                        link = body.get("@odata.nextLink")

                elapsed = rate(f"$top={top}", 3, walk)
                print(f"  {'':<46} {pages} pages, {elapsed / 3:.3f} s per full listing")


if __name__ == "__main__":
    main()
