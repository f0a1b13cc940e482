import meetgate


def test_every_exported_name_resolves():
    for name in meetgate.__all__:
        assert getattr(meetgate, name) is not None, name


def test_unknown_attribute_raises():
    import pytest

    with pytest.raises(AttributeError):
        _ = meetgate.NoSuchThing  # type: ignore[attr-defined]
