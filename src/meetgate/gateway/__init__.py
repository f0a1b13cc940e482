"""The REST gateway for third-party apps (FastAPI)."""
