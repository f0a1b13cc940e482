"""The administrator's kept sign-in file: private, atomic, and refused when it cannot be trusted."""

from __future__ import annotations

import stat

from meetgate.graph.signin_cache import SigninCache, cache_file, forget


def _kept(folder, profile="p", tenant="contoso.example") -> SigninCache:
    cache = SigninCache(folder, profile, tenant)
    cache.cache.deserialize('{"AccessToken": {}, "RefreshToken": {"k": {"secret": "rt"}}}')
    cache.cache.has_state_changed = True
    cache.save()
    return cache


def test_saved_private_and_read_back(tmp_path):
    folder = tmp_path / "signin"
    cache = _kept(folder)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(cache.path.stat().st_mode) == 0o600
    again = SigninCache(folder, "p", "CONTOSO.example")  # tenant spelling is case-insensitive
    assert "rt" in again.cache.serialize()
    assert "rt" not in repr(again)


def test_a_file_that_is_not_json_or_is_readable_by_others_is_not_used(tmp_path):
    folder = tmp_path / "signin"
    path = _kept(folder).path
    path.chmod(0o640)
    assert "rt" not in SigninCache(folder, "p", "contoso.example").cache.serialize()
    path.chmod(0o600)
    path.write_text("{not json")
    assert "rt" not in SigninCache(folder, "p", "contoso.example").cache.serialize()


def test_the_directory_id_is_a_second_name_and_forget_removes_only_the_profile(tmp_path):
    folder = tmp_path / "signin"
    cache = _kept(folder)
    cache.remember_tenant_id("11111111-2222-3333-4444-555555555555")
    cache.save()
    _kept(folder, profile="other")
    assert cache_file(folder, "p", "11111111-2222-3333-4444-555555555555").exists()
    assert len(forget(folder, "p")) == 2
    assert [p.name for p in folder.iterdir()] == ["other--contoso.example.signin.json"]
    assert len(forget(folder)) == 1
