"""The pwsh stand-in's interpreter: runs the AST, binds ``param``, invokes the registered cmdlets."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Any, TextIO

from meetgate_sandbox.pwsh.certs import _load_pem_certificate
from meetgate_sandbox.pwsh.errors import ExitScript, ParseError, PSError, _not_recognized
from meetgate_sandbox.pwsh.lexer import tokenize
from meetgate_sandbox.pwsh.parser import Parser
from meetgate_sandbox.pwsh.registry import CMDLETS, PARAMS
from meetgate_sandbox.pwsh.tenant import Connection, TenantControlClient
from meetgate_sandbox.pwsh.values import PSObject, _collapse, _enum, _eq, _to_str, _truthy

_COMMON = {
    "erroraction",
    "verbose",
    "debug",
    "warningaction",
    "informationaction",
    "passthru",
    "confirm",
    "whatif",
}


class Interpreter:
    def __init__(
        self,
        out: TextIO,
        err: TextIO,
        tenant_factory: Callable[[], TenantControlClient] = TenantControlClient.locate,
    ) -> None:
        self.vars: dict[str, Any] = {
            "erroractionpreference": "Continue",
            "null": None,
            "true": True,
            "false": False,
        }
        self.out, self.err = out, err
        self.transcript: TextIO | None = None
        self.tenant_factory = tenant_factory
        self._tenant: TenantControlClient | None = None
        self.conn: Connection | None = None
        #: the Microsoft Graph PowerShell connection (Connect-MgGraph), see cmdlets_graph
        self.graph: Any = None
        #: the Exchange Online PowerShell connection (Connect-ExchangeOnline), see cmdlets_exchange
        self.exchange: Any = None
        self.had_error = False

    # host output
    def host(self, text: str, stream: TextIO | None = None) -> None:
        (stream or self.out).write(text + "\n")
        if self.transcript is not None:
            self.transcript.write(text + "\n")
            self.transcript.flush()

    def emit(self, value: Any) -> None:
        for item in _enum(value) if isinstance(value, list) else [value]:
            if item is None:
                continue
            if isinstance(item, dict):
                width = max((len(k) for k in item), default=0)
                for key, val in item.items():
                    self.host(f"{key.ljust(width)} : {_to_str(val)}")
                self.host("")
            else:
                self.host(_to_str(item))

    # variables
    def get_var(self, name: str) -> Any:
        lower = name.lower()
        if lower.startswith("env:"):
            return os.environ.get(name[4:])
        if lower == "?":
            return not self.had_error
        return self.vars.get(lower)

    def set_var(self, name: str, value: Any) -> None:
        lower = name.lower()
        if lower in {"null", "true", "false"}:
            raise PSError(
                f"Cannot overwrite variable {name} because it is read-only or constant.",
                "VariableNotWritable",
            )
        self.vars[lower] = value

    # running
    def run(self, source: str, args: list[str] | None = None) -> int:
        try:
            tree = Parser(tokenize(source)).script()
        except ParseError as exc:
            self.err.write(f"ParserError: {exc.message}\n")
            return 1
        _, params, body = tree
        try:
            self.bind_params(params, args or [])
            for stmt in body:
                self.emit(self.statement(stmt))
        except ExitScript as done:
            return done.code
        except PSError as exc:
            self.err.write(f"{exc.message}\n")
            return 1
        finally:
            if self.transcript is not None:
                self.transcript.close()
        return 0

    def bind_params(self, params: list[Any], args: list[str]) -> None:
        given: dict[str, Any] = {}
        i = 0
        names = {p[0].lower(): p for p in params}
        while i < len(args):
            arg = args[i]
            if not arg.startswith("-") or arg[1:].lower() not in names:
                raise PSError(
                    f"A parameter cannot be found that matches parameter name '{arg.lstrip('-')}'.",
                    "NamedParameterNotFound",
                    "InvalidArgument",
                )
            _, typ, _ = names[arg[1:].lower()]
            if typ == "switch":
                given[arg[1:].lower()] = True
                i += 1
            else:
                if i + 1 >= len(args):
                    raise PSError(
                        f"Missing an argument for parameter '{arg[1:]}'.",
                        "MissingArgument",
                        "InvalidArgument",
                    )
                given[arg[1:].lower()] = args[i + 1]
                i += 2
        for name, typ, default in params:
            if name.lower() in given:
                value = given[name.lower()]
            elif default is not None:
                value = self.expr(default)
            else:
                value = False if typ == "switch" else None
            self.set_var(name, self.cast(typ, value))

    def cast(self, typ: str, value: Any) -> Any:
        t = typ.lower()
        if t == "string":
            return _to_str(value)
        if t in {"switch", "bool"}:
            return _truthy(value)
        if t == "int":
            return int(value or 0)
        if t in {"string[]", "array"}:
            return [_to_str(v) for v in _enum(value)] if t == "string[]" else _enum(value)
        if t == "pscustomobject":
            return PSObject(value) if isinstance(value, dict) else value
        return value

    def block(self, stmts: list[Any]) -> list[Any]:
        out: list[Any] = []
        for stmt in stmts:
            value = self.statement(stmt)
            out.extend(_enum(value) if isinstance(value, list) else ([] if value is None else [value]))
        return out

    def statement(self, node: Any) -> Any:
        kind = node[0]
        if kind == "assign":
            self.set_var(node[1], self.capture(node[2]))
            return None
        if kind == "if":
            for cond, body in node[1]:
                if _truthy(self.capture(cond)):
                    return self.block(body)
            return self.block(node[2]) if node[2] is not None else None
        if kind == "foreach":
            out = []
            for item in _enum(self.capture(node[2])):
                self.set_var(node[1], item)
                out.extend(self.block(node[3]))
            return out
        if kind == "try":
            _, body, handler, final = node
            out = []
            try:
                out.extend(self.block(body))
            except PSError as exc:
                if handler is None:
                    raise
                previous = self.vars.get("_")
                self.vars["_"] = PSObject(
                    Exception=PSObject(Message=exc.message),
                    FullyQualifiedErrorId=exc.error_id,
                    CategoryInfo=PSObject(Category=exc.category),
                )
                try:
                    out.extend(self.block(handler))
                finally:
                    self.vars["_"] = previous
            finally:
                if final is not None:
                    for item in self.block(final):
                        self.emit(item)
            return out
        if kind == "exit":
            raise ExitScript(int(self.expr(node[1]) or 0) if node[1] is not None else 0)
        if kind == "return":
            raise ExitScript(0)
        if kind == "pipeline":
            return self.pipeline(node[1])
        if kind == "command":
            return self.pipeline([node])
        return self.expr(node)

    def capture(self, node: Any) -> Any:
        value = self.statement(node)
        if node[0] in {"pipeline", "command"} and isinstance(value, list):
            return _collapse(value)
        return value

    def pipeline(self, elements: list[Any]) -> list[Any]:
        data: list[Any] | None = None
        for element in elements:
            data = self.invoke(element, data) if element[0] == "command" else _enum(self.expr(element))
        return data or []

    def invoke(self, node: Any, input_: list[Any] | None) -> list[Any]:
        _, name, raw_args = node
        fn = CMDLETS.get(name.lower())
        if fn is None:
            raise _not_recognized(name)
        named: dict[str, Any] = {}
        positional: list[Any] = []
        for arg in raw_args:
            if arg[0] == "named":
                named[arg[1].lower()] = self.expr(arg[2])
            else:
                positional.append(self.expr(arg[1]))
        allowed = PARAMS.get(name.lower(), set()) | _COMMON
        for key in named:
            if key not in allowed:
                raise PSError(
                    f"A parameter cannot be found that matches parameter name '{key}'.",
                    "NamedParameterNotFound",
                    "InvalidArgument",
                )
        action = (
            _to_str(named.pop("erroraction", "")).lower()
            or _to_str(self.get_var("ErrorActionPreference")).lower()
        )
        try:
            result = fn(self, named, positional, input_)
            self.had_error = False
            return result
        except PSError as exc:
            self.had_error = True
            if action in {"silentlycontinue", "ignore"}:
                return []
            if action == "stop":
                raise
            self.host(f"{name}: {exc.message}", self.err)
            return []

    def expr(self, node: Any) -> Any:
        kind = node[0]
        if kind == "const":
            return node[1]
        if kind == "var":
            return self.get_var(node[1])
        if kind == "xstr":
            return re.sub(
                r"\$(env:)?([A-Za-z_][A-Za-z0-9_]*)",
                lambda m: _to_str(self.get_var((m.group(1) or "") + m.group(2))),
                node[1],
            )
        if kind == "array":
            return [self.expr(n) for n in node[1]]
        if kind == "paren":
            return self.capture(node[1])
        if kind == "arrayexpr":
            return self.block(node[1])
        if kind == "subexpr":
            return _collapse(self.block(node[1]))
        if kind == "hash":
            return PSObject((k, self.capture(v)) for k, v in node[1])
        if kind == "cast":
            return self.cast(node[1], self.expr(node[2]))
        if kind == "member":
            target = self.expr(node[1])
            return self.member(target, node[2])
        if kind == "index":
            target, index = self.expr(node[1]), self.expr(node[2])
            if isinstance(target, list) and isinstance(index, int):
                return target[index] if -len(target) <= index < len(target) else None
            if isinstance(target, PSObject):
                return target.get_member(_to_str(index))
            return None
        if kind == "call":
            target = self.expr(node[1])
            args = [self.expr(a) for a in node[3]]
            return self.method(target, node[2], args)
        if kind == "static":
            return self.static(node[1], node[2], [self.expr(a) for a in node[3]])
        if kind == "not":
            return not _truthy(self.expr(node[1]))
        if kind in {"and", "or"}:
            left = _truthy(self.expr(node[1]))
            if kind == "and":
                return left and _truthy(self.expr(node[2]))
            return left or _truthy(self.expr(node[2]))
        if kind == "binop":
            return self.binop(node[1], self.expr(node[2]), self.expr(node[3]))
        return self.statement(node)

    def member(self, target: Any, name: str) -> Any:
        if isinstance(target, list):
            if name.lower() in {"count", "length"}:
                return len(target)
            return _collapse([v for v in (self.member(t, name) for t in target) if v is not None])
        if isinstance(target, PSObject):
            return target.get_member(name)
        if isinstance(target, str) and name.lower() == "length":
            return len(target)
        if target is None:
            return None
        if name.lower() == "count":
            return 1
        return None

    def method(self, target: Any, name: str, args: list[Any]) -> Any:
        lower = name.lower()
        if isinstance(target, str):
            if lower == "tolower":
                return target.lower()
            if lower == "toupper":
                return target.upper()
            if lower == "trim":
                return target.strip()
        if lower == "tostring":
            return _to_str(target)
        raise PSError(
            f"Method invocation failed because [{type(target).__name__}] does not contain a method named '{name}'.",
            "MethodNotFound",
            "InvalidOperation",
        )

    def static(self, typ: str, method: str, args: list[Any]) -> Any:
        if (
            typ.lower().endswith("x509certificate2")
            and method.lower() == "createfrompemfile"
            and len(args) == 2
        ):
            return _load_pem_certificate(_to_str(args[0]), _to_str(args[1]))
        raise PSError(
            f"Unable to find type [{typ}] or method '{method}' in the sandbox pwsh stand-in.",
            "TypeNotFound",
            "InvalidOperation",
        )

    def binop(self, op: str, a: Any, b: Any) -> Any:
        if op == "+":
            if isinstance(a, str):
                return a + _to_str(b)
            if isinstance(a, list):
                return a + _enum(b)
            if a is None:
                return b
            if isinstance(a, int | float) and isinstance(b, int | float):
                return a + b
            return _to_str(a) + _to_str(b)
        if op == "replace":
            pattern, repl = ([*b, ""])[:2] if isinstance(b, list) else (b, "")
            regex = re.compile(_to_str(pattern), re.IGNORECASE)
            if isinstance(a, list):
                return [regex.sub(_to_str(repl), _to_str(x)) for x in a]
            return regex.sub(_to_str(repl).replace("$", "\\"), _to_str(a))
        if op in {"in", "notin"}:
            found = any(_eq(a, x) for x in _enum(b))
            return found if op == "in" else not found
        if op == "contains":
            return any(_eq(x, b) for x in _enum(a))
        if isinstance(a, list):
            return [x for x in a if self.binop(op, x, b)]
        if op == "eq":
            return _eq(a, b)
        if op == "ne":
            return not _eq(a, b)
        if op in {"like", "notlike"}:
            pattern = "^" + re.escape(_to_str(b)).replace(r"\*", ".*").replace(r"\?", ".") + "$"
            hit = bool(re.match(pattern, _to_str(a), re.IGNORECASE | re.DOTALL))
            return hit if op == "like" else not hit
        left, right = (a, b) if not isinstance(a, str) else (a.lower(), _to_str(b).lower())
        try:
            return {"gt": left > right, "lt": left < right, "ge": left >= right, "le": left <= right}[op]
        except TypeError:
            return {
                "gt": _to_str(a) > _to_str(b),
                "lt": _to_str(a) < _to_str(b),
                "ge": _to_str(a) >= _to_str(b),
                "le": _to_str(a) <= _to_str(b),
            }[op]

    # tenant access
    def tenant(self) -> TenantControlClient:
        if self._tenant is None:
            self._tenant = self.tenant_factory()
        return self._tenant

    def connected(self) -> Connection:
        if self.conn is None:
            raise PSError(
                "You must call the Connect-MicrosoftTeams cmdlet before calling any other cmdlets.",
                "NotConnected",
                "AuthenticationError",
            )
        return self.conn

    def tpath(self, suffix: str = "") -> str:
        return f"/tenants/{self.connected().tenant_id}{suffix}"
