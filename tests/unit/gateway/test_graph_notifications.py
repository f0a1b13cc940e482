"""Graph notifications without Graph: the encryption key's files, decryption with the signature
checked first, the settings' checks, migration 0008."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import stat

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.asymmetric import padding as rsa_padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from meetgate.config import ConfigError, Profile
from meetgate.gateway.notifications.crypto import EncryptionKey, NotificationRefused, decrypt_content


def _encrypt(key: EncryptionKey, resource: dict) -> dict[str, str]:
    """What Graph sends: a fresh key, AES-256-CBC (IV = its first 16 bytes), HMAC, RSA-OAEP."""
    symmetric = os.urandom(32)
    padder = padding.PKCS7(128).padder()
    padded = padder.update(json.dumps(resource).encode()) + padder.finalize()
    encryptor = Cipher(algorithms.AES(symmetric), modes.CBC(symmetric[:16])).encryptor()
    data = encryptor.update(padded) + encryptor.finalize()
    wrapped = key.pair.certificate.public_key().encrypt(  # type: ignore[union-attr]
        symmetric,
        rsa_padding.OAEP(mgf=rsa_padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None),
    )
    return {
        "data": base64.b64encode(data).decode(),
        "dataKey": base64.b64encode(wrapped).decode(),
        "dataSignature": base64.b64encode(hmac.new(symmetric, data, hashlib.sha256).digest()).decode(),
        "encryptionCertificateId": key.certificate_id,
        "encryptionCertificateThumbprint": key.thumbprint,
    }


def test_the_key_is_made_once_in_a_private_folder(tmp_path):
    folder = tmp_path / "keys"
    key = EncryptionKey.load_or_create(folder)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / "notifications.key.pem").stat().st_mode) == 0o600
    again = EncryptionKey.load_or_create(folder)
    assert again.thumbprint == key.thumbprint
    assert "PRIVATE" not in repr(key)
    assert base64.b64decode(key.certificate_b64())  # DER, public only


def test_decryption_checks_the_signature_first(tmp_path):
    key = EncryptionKey.load_or_create(tmp_path)
    resource = {"@odata.type": "#Microsoft.Graph.callTranscript", "id": "t1", "meetingId": "m1"}
    content = _encrypt(key, resource)
    assert decrypt_content(content, key) == resource
    # Teams samples spell the fields differently: matched without regard to case
    assert decrypt_content({k.upper(): v for k, v in content.items()}, key) == resource
    data = base64.b64decode(content["data"])
    tampered = dict(content, data=base64.b64encode(data[:-1] + bytes([data[-1] ^ 1])).decode())
    with pytest.raises(NotificationRefused, match="dataSignature"):
        decrypt_content(tampered, key)
    with pytest.raises(NotificationRefused, match="another certificate"):
        decrypt_content(dict(content, encryptionCertificateId="other"), key)


def test_settings_refuse_an_unknown_mode_and_push_without_a_url():
    from meetgate.composition.gateway import gateway_settings_from_profile

    with pytest.raises(ConfigError, match="off, push or poll"):
        gateway_settings_from_profile(Profile(name="p", gateway_notifications="always"))
    with pytest.raises(ConfigError, match="gateway_notification_url"):
        gateway_settings_from_profile(Profile(name="p", gateway_notifications="push"))
    settings = gateway_settings_from_profile(
        Profile(name="p", gateway_notifications="push", gateway_notification_url="https://gw.example")
    )
    assert settings.notifications == "push" and settings.notification_url == "https://gw.example"


def test_migration_0008_adds_and_removes_the_notification_tables(tmp_path):
    from alembic import command
    from alembic.config import Config

    from meetgate.store import Store
    from meetgate.store.repository import MIGRATIONS, make_engine

    url = f"sqlite:///{tmp_path}/m.db"
    Store.open(url).close()
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    tables = {"graph_subscriptions", "graph_notifications", "graph_polls"}
    engine = make_engine(url)
    with engine.begin() as conn:
        assert tables <= set(sa.inspect(conn).get_table_names())
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0007")
        assert not tables & set(sa.inspect(conn).get_table_names())
        command.upgrade(cfg, "head")
        assert tables <= set(sa.inspect(conn).get_table_names())
    engine.dispose()
