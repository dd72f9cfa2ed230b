"""Dashboard sessions: signed, expiring, revocable cookies; CSRF tokens; one-time codes."""

from __future__ import annotations

from champion.server.ui import session as s

TOKEN = "chp_secret-token"


def test_a_session_verifies_with_the_token_that_issued_it_and_no_other():
    value, issued = s.issue(TOKEN, now=1000.0)
    assert TOKEN not in value
    assert s.verify(TOKEN, value, now=1001.0) == issued
    assert s.verify("another-token", value, now=1001.0) is None


def test_a_session_expires():
    value, issued = s.issue(TOKEN, now=1000.0, lifetime=60)
    assert issued.expires == 1060
    assert s.verify(TOKEN, value, now=1059.0) is not None
    assert s.verify(TOKEN, value, now=1060.0) is None


def test_any_change_to_the_cookie_breaks_it():
    value, _ = s.issue(TOKEN, now=1000.0)
    sid, expires, sig = value.split(".")
    for forged in (f"{sid}.{int(expires) + 1}.{sig}", f"x{sid}.{expires}.{sig}",
                   f"{sid}.{expires}.{sig[:-1]}A", f"{sid}.{expires}", "", "...", "a" * 500,
                   f"{sid}.-{expires}.{sig}", f"{sid}.{expires}.{sig}.x",
                   f"{sid}.\uff11\uff12.{sig}"):  # full-width digits
        assert s.verify(TOKEN, forged, now=1001.0) is None, forged


def test_the_csrf_token_belongs_to_one_session():
    _, a = s.issue(TOKEN, now=1000.0)
    _, b = s.issue(TOKEN, now=1000.0)
    assert a.csrf != b.csrf and a.id != b.id
    assert s.csrf_ok(a, a.csrf) and not s.csrf_ok(a, b.csrf)
    assert not s.csrf_ok(a, None) and not s.csrf_ok(a, "") and not s.csrf_ok(a, "é")


def test_a_revoked_session_is_refused_until_it_would_have_expired():
    store = s.Sessions()
    value, issued = s.issue(TOKEN, now=1000.0, lifetime=60)
    store.revoke(issued, now=1001.0)
    assert s.verify(TOKEN, value, now=1002.0, sessions=store) is None
    other, _ = s.issue(TOKEN, now=1000.0)
    assert s.verify(TOKEN, other, now=1002.0, sessions=store) is not None
    _, fresh = s.issue(TOKEN, now=2000.0)
    store.revoke(fresh, now=2000.0)
    assert issued.id not in store.revoked, "expired revocations are forgotten"


def test_a_sign_in_code_is_spent_once_and_expires():
    store = s.Sessions()
    code = store.mint_code(now=1000.0, lifetime=60)
    assert code not in str(store.codes), "codes are kept hashed"
    assert store.code_valid(code, now=1010.0)
    assert store.spend_code(code, now=1010.0)
    assert not store.spend_code(code, now=1011.0)
    late = store.mint_code(now=1000.0, lifetime=60)
    assert not store.spend_code(late, now=1061.0)
    assert not store.spend_code("made-up", now=1001.0)
