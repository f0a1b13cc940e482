"""The pure parts of the directory's advanced queries: lambda filters, $search tokens and clauses,
$orderby rules, and which operators count as advanced."""

from __future__ import annotations

import pytest

from meetgate_sandbox import odata
from meetgate_sandbox.http import GraphErrorResponse

SCHEMA = odata.Schema(
    "User",
    ("id", "displayName", "mail", "proxyAddresses", "otherMails", "description"),
    collections=frozenset({"proxyAddresses", "otherMails"}),
    endswith=frozenset({"mail", "proxyAddresses", "otherMails"}),
    orderby={"displayName": True, "id": False},
)
ITEMS = [
    {"id": "1", "displayName": "Adele Vance", "mail": "adele@contoso.com", "proxyAddresses": ["SMTP:adele@contoso.com", "smtp:av@contoso.onmicrosoft.com"], "otherMails": []},
    {"id": "2", "displayName": "OneVideo Team", "mail": None, "proxyAddresses": [], "otherMails": ["x@fabrikam.com"]},
    {"id": "3", "displayName": "hello.world", "mail": "hw@fabrikam.com", "proxyAddresses": ["SMTP:hw@fabrikam.com"], "otherMails": []},
]  # fmt: skip


def _filtered(text: str) -> list[str]:
    predicate = odata.parse_filter(text, SCHEMA, advanced=True)
    assert predicate is not None
    return [item["id"] for item in ITEMS if predicate(item)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("proxyAddresses/any(p:startswith(p,'smtp:av'))", ["1"]),
        ("proxyAddresses/any(p:p eq 'smtp:hw@fabrikam.com')", ["3"]),
        ("proxyAddresses/any(p:endswith(p,'fabrikam.com'))", ["3"]),
        ("otherMails/any(m:m eq 'X@FABRIKAM.COM') or id eq '1'", ["1", "2"]),
        ("not proxyAddresses/any(p:startswith(p,'smtp:'))", ["2"]),
        ("endswith(mail,'@fabrikam.com')", ["3"]),
        ("mail ne null and not(id eq '3')", ["1"]),
    ],
)
def test_lambdas_and_string_functions(text, expected):
    assert _filtered(text) == expected


@pytest.mark.parametrize(
    ("text", "operator"),
    [("id ne '1'", "ne"), ("not (id eq '1')", "not"), ("endswith(mail,'x')", "endsWith"),
     ("proxyAddresses/any(p:endswith(p,'x'))", "endsWith"), ("id eq '1' or not (id eq '2')", "not")],
)  # fmt: skip
def test_advanced_operators_are_named_in_the_refusal(text, operator):
    with pytest.raises(GraphErrorResponse) as raised:
        odata.parse_filter(text, SCHEMA, advanced=False)
    assert raised.value.code == "Request_UnsupportedQuery"
    assert raised.value.message.startswith(f"Operator '{operator}' is not supported because")


def test_default_operators_need_no_advanced_parameters():
    assert odata.parse_filter(
        "proxyAddresses/any(p:p eq 'x') and startswith(displayName,'a')", SCHEMA, advanced=False
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("HelloWorld", ["hello", "world"]),
        ("helloWORLD", ["hello", "world"]),
        ("HELLOworld", ["helloworld"]),
        ("hello.world", ["hello", "world"]),
        ("hello123world", ["hello", "123", "world"]),
        ("Contoso-tier Query", ["contoso", "tier", "query"]),
    ],
)
def test_search_tokens(text, expected):
    assert odata.search_tokens(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('"displayName:video"', ["2"]),  # OneVideo -> one, video
        ('"displayName:one video"', ["2"]),
        ('"displayName:OneVid"', ["2"]),
        ('"displayName:world"', ["3"]),
        ('"displayName:ance"', []),
        ('"mail:adele@"', ["1"]),
        ('"displayName:adele" OR "displayName:hello"', ["1", "3"]),
        ('"displayName:adele" AND ("mail:x" OR "mail:adele")', ["1"]),
        ('"displayName:say \\"hi\\""', []),
    ],
)
def test_search_clauses(text, expected):
    predicate = odata.SearchParser(text, SCHEMA).parse()
    assert [item["id"] for item in ITEMS if predicate(item)] == expected


@pytest.mark.parametrize(
    "text", ['"displayName:a" and "displayName:b"', '"displayName:a" OR', '("displayName:a"', '"a"', ""]
)
def test_search_syntax_errors(text):
    with pytest.raises(GraphErrorResponse) as raised:
        odata.SearchParser(text, SCHEMA).parse()
    assert raised.value.status == 400


def test_orderby_rules():
    def order(text: str, *, advanced: bool = False, combined: bool = False) -> list[str]:
        ordered = odata.order_items(
            ITEMS, text, SCHEMA, advanced=advanced, combined=combined, key=lambda i: i
        )
        return [item["id"] for item in ordered]

    assert order("displayName") == ["1", "3", "2"]
    assert order("DISPLAYNAME desc") == ["2", "3", "1"]
    assert order("id desc", advanced=True) == ["3", "2", "1"]
    for text, kwargs in (("id", {}), ("displayName", {"combined": True}), ("mail", {"advanced": True}),
                         ("displayName sideways", {})):  # fmt: skip
        with pytest.raises(GraphErrorResponse) as raised:
            order(text, **kwargs)
        assert raised.value.message == "Sorting not supported for current query."
