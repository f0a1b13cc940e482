"""The administrator's sign-in, kept between commands: MSAL's token cache in a private file.

An administrator running the runbook would otherwise sign in by device code for every command.
:class:`SigninCache` keeps MSAL's serializable cache — the access token, and the refresh token that
renews it silently — in one file per profile and tenant, mode 0600 in a 0700 folder, written
atomically. ``meetgate signout`` deletes the files.

A file that cannot be read for certain (not JSON, not ours, or readable by others) is not used:
the administrator signs in again and the file is replaced.
"""

from __future__ import annotations

import json
import logging
import re
import stat
from pathlib import Path

from meetgate.private_files import make_private_folder, readable_by_others, write_private_file

log = logging.getLogger(__name__)

SUFFIX = ".signin.json"


def cache_folder(config_file: Path) -> Path:
    """Where the sign-ins of a settings file's profiles are kept: ``.meetgate/signin`` beside it."""
    return config_file.resolve().parent / ".meetgate" / "signin"


def _safe(part: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", part.strip().lower()) or "_"


def cache_file(folder: Path, profile: str, tenant: str) -> Path:
    """The file of one profile's sign-in to one tenant (id or domain, as the profile names it)."""
    return folder / f"{_safe(profile)}--{_safe(tenant)}{SUFFIX}"


class SigninCache:
    """An ``msal.SerializableTokenCache`` loaded from, and saved to, one profile's file for a tenant.

    When the profile names the tenant by a domain, :meth:`remember_tenant_id` saves the same
    sign-in under the directory id the token revealed too, so the next command (whose profile
    ``setup app`` may meanwhile have given the id) finds it either way.
    """

    def __init__(self, folder: Path, profile: str, tenant: str) -> None:
        import msal

        self.folder = folder
        self.profile = profile
        self.path = cache_file(folder, profile, tenant)
        self.cache = msal.SerializableTokenCache()
        self.also_as: list[Path] = []
        text = self._read(self.path)
        if text is not None:
            try:
                self.cache.deserialize(text)
            except (ValueError, TypeError, AttributeError):
                log.warning("ignoring the unreadable sign-in cache %s; you will sign in again", self.path)

    def __repr__(self) -> str:
        return f"SigninCache(path={str(self.path)!r})"

    @staticmethod
    def _read(path: Path) -> str | None:
        try:
            shared = readable_by_others(path)
        except FileNotFoundError:
            return None
        if shared:
            log.warning(
                "ignoring the sign-in cache %s: it is readable by others (mode %o); you will sign in again",
                path,
                stat.S_IMODE(path.stat().st_mode),
            )
            return None
        try:
            text = path.read_text(encoding="utf-8")
            if not isinstance(json.loads(text), dict):
                raise ValueError("not an object")
        except (OSError, ValueError):
            log.warning("ignoring the unreadable sign-in cache %s; you will sign in again", path)
            return None
        return text

    def remember_tenant_id(self, tenant_id: str) -> None:
        """Save under ``tenant_id`` as well, when that is another spelling of the tenant."""
        path = cache_file(self.folder, self.profile, tenant_id)
        if path != self.path and path not in self.also_as:
            self.also_as.append(path)
            self.cache.has_state_changed = True

    def save(self) -> None:
        """Write the cache when MSAL changed it (a new or renewed token), 0600 from the first byte."""
        if not self.cache.has_state_changed:
            return
        data = self.cache.serialize().encode("utf-8")
        for path in [self.path, *self.also_as]:
            make_private_folder(path.parent, tighten=True)
            write_private_file(path, data)
        self.cache.has_state_changed = False


def forget(folder: Path, profile: str | None = None) -> list[Path]:
    """Delete the kept sign-ins of ``profile`` (every profile's when None); return the files removed."""
    if not folder.is_dir():
        return []
    prefix = f"{_safe(profile)}--" if profile is not None else ""
    removed: list[Path] = []
    for path in sorted(folder.glob(f"*{SUFFIX}")):
        if path.name.startswith(prefix):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed
