"""The gateway: a governed REST service for third-party apps (``meetgate serve``).

``create_app(settings, meetings=..., scope=...)`` in :mod:`meetgate.gateway.app`, its routes in
:mod:`meetgate.gateway.routers` and their dependencies in :mod:`meetgate.gateway.deps`; consumers and keys in
:mod:`meetgate.gateway.consumers`; limits in :mod:`meetgate.gateway.limits`; problem types in
:mod:`meetgate.gateway.problems`. Nothing is built at import time.
"""
