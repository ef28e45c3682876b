"""PKCE S256 and redirect query building, against the RFCs' own examples."""

from __future__ import annotations

from gatepass.oauth.errors import with_query
from gatepass.oauth.grants import VERIFIER, s256


def test_s256_matches_rfc_7636_appendix_b() -> None:
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert s256(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_verifier_syntax_follows_rfc_7636_section_4_1() -> None:
    assert VERIFIER.match("a" * 43)
    assert VERIFIER.match("A-._~" * 25)
    assert not VERIFIER.match("a" * 42)
    assert not VERIFIER.match("a" * 129)
    assert not VERIFIER.match("a" * 42 + "+")
    assert not VERIFIER.match("a" * 42 + "=")


def test_with_query_keeps_the_registered_query_and_encodes_values() -> None:
    url = with_query(
        "http://127.0.0.1:5/cb?app=desktop", {"code": "c d", "state": "&x", "iss": None}
    )
    assert url == "http://127.0.0.1:5/cb?app=desktop&code=c+d&state=%26x"
