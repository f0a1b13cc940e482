"""PowerShell values in the pwsh stand-in: :class:`PSObject` and the conversions every part shares."""

from __future__ import annotations

from typing import Any


class PSObject(dict[str, Any]):
    """An ordered property bag with case-insensitive member access ([pscustomobject] / hashtable)."""

    def get_member(self, name: str) -> Any:
        for key, value in self.items():
            if key.lower() == name.lower():
                return value
        return None


def _enum(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _truthy(value: Any) -> bool:
    if isinstance(value, list):
        return len(value) > 1 or (len(value) == 1 and _truthy(value[0]))
    return bool(value)


def _to_str(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, list):
        return " ".join(_to_str(v) for v in value)
    return str(value)


def _eq(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, str) or isinstance(b, str):
        return _to_str(a).lower() == _to_str(b).lower()
    return bool(a == b)


def _collapse(items: list[Any]) -> Any:
    if not items:
        return None
    return items[0] if len(items) == 1 else items


def _jsonable(value: Any, depth: int) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if depth < 0:
        return _to_str(value)
    if isinstance(value, list):
        return [_jsonable(v, depth - 1) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v, depth - 1) for k, v in value.items()}
    return str(value)
