"""The pwsh stand-in's parser: tokens → the AST, as tuples (``('command', name, args)``, ...)."""

from __future__ import annotations

from typing import Any

from meetgate_sandbox.pwsh.errors import ParseError
from meetgate_sandbox.pwsh.lexer import Tok

_BINOPS = {"eq", "ne", "gt", "lt", "ge", "le", "like", "notlike", "in", "notin", "replace", "contains"}
_END_OF_COMMAND = {"NL", "SEMI", "PIPE", "RBRACE", "RPAREN", "EOF"}


class Parser:
    def __init__(self, toks: list[Tok]) -> None:
        self.toks = toks
        self.i = 0

    def peek(self, k: int = 0) -> Tok:
        return self.toks[min(self.i + k, len(self.toks) - 1)]

    def next(self) -> Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def expect(self, kind: str, what: str) -> Tok:
        tok = self.next()
        if tok.kind != kind:
            raise ParseError(f"line {tok.line}: missing {what}.", "ParserError")
        return tok

    def skip_nl(self) -> None:
        while self.peek().kind in {"NL", "SEMI"}:
            self.i += 1

    def is_word(self, *words: str) -> bool:
        tok = self.peek()
        return tok.kind == "WORD" and str(tok.value).lower() in words

    # statements
    def script(self) -> tuple[Any, ...]:
        params: list[Any] = []
        self.skip_nl()
        if (
            self.peek().kind == "LBRACKET"
            and self.peek(1).kind == "WORD"
            and str(self.peek(1).value).lower() == "cmdletbinding"
        ):
            self.type_literal()
            self.skip_nl()
        if self.is_word("param"):
            params = self.param_block()
        body = self.statements(until="EOF")
        return ("script", params, body)

    def param_block(self) -> list[Any]:
        self.next()
        self.expect("LPAREN", "'(' after param")
        params = []
        while True:
            self.skip_nl()
            if self.peek().kind == "RPAREN":
                self.next()
                break
            typ = None
            while self.peek().kind == "LBRACKET":
                typ = self.type_literal()
                self.skip_nl()
            name = self.expect("VAR", "a parameter variable").value
            default = None
            if self.peek().kind == "ASSIGN":
                self.next()
                default = self.logical()
            params.append((name, (typ or "object").lower(), default))
            self.skip_nl()
            if self.peek().kind == "COMMA":
                self.next()
        return params

    def type_literal(self) -> str:
        self.expect("LBRACKET", "'['")
        name = str(self.expect("WORD", "a type name").value)
        if self.peek().kind == "LPAREN":  # attribute like [CmdletBinding()] / [Parameter()]
            depth = 0
            while True:
                tok = self.next()
                depth += tok.kind == "LPAREN"
                depth -= tok.kind == "RPAREN"
                if depth == 0:
                    break
        if self.peek().kind == "LBRACKET" and self.peek(1).kind == "RBRACKET":
            self.i += 2
            name += "[]"
        self.expect("RBRACKET", "']'")
        return name

    def statements(self, until: str) -> list[Any]:
        out: list[Any] = []
        while True:
            self.skip_nl()
            if self.peek().kind == until:
                self.next()
                return out
            if self.peek().kind == "EOF":
                raise ParseError(
                    f"line {self.peek().line}: missing closing '}}' in statement block.",
                    "MissingEndCurlyBrace",
                )
            out.append(self.statement())

    def block(self) -> list[Any]:
        self.skip_nl()
        self.expect("LBRACE", "'{' opening a statement block")
        return self.statements(until="RBRACE")

    def statement(self) -> Any:
        tok = self.peek()
        word = str(tok.value).lower() if tok.kind == "WORD" else ""
        if word == "if":
            self.next()
            branches = []
            self.expect("LPAREN", "'(' after if")
            cond = self.pipeline()
            self.expect("RPAREN", "')' after the if condition")
            branches.append((cond, self.block()))
            otherwise = None
            while True:
                save = self.i
                self.skip_nl()
                if self.is_word("elseif"):
                    self.next()
                    self.expect("LPAREN", "'(' after elseif")
                    cond = self.pipeline()
                    self.expect("RPAREN", "')'")
                    branches.append((cond, self.block()))
                elif self.is_word("else"):
                    self.next()
                    otherwise = self.block()
                    break
                else:
                    self.i = save
                    break
            return ("if", branches, otherwise)
        if word == "foreach":
            self.next()
            self.expect("LPAREN", "'(' after foreach")
            var = self.expect("VAR", "a loop variable").value
            if not self.is_word("in"):
                raise ParseError(f"line {tok.line}: missing 'in' in foreach.", "MissingInInForeach")
            self.next()
            source = self.pipeline()
            self.expect("RPAREN", "')' after foreach")
            return ("foreach", var, source, self.block())
        if word == "try":
            self.next()
            body = self.block()
            self.skip_nl()
            handler = final = None
            if self.is_word("catch"):
                self.next()
                while self.peek().kind == "LBRACKET":
                    self.type_literal()
                handler = self.block()
                self.skip_nl()
            if self.is_word("finally"):
                self.next()
                final = self.block()
            if handler is None and final is None:
                raise ParseError(
                    f"line {tok.line}: the try statement is missing its catch or finally block.",
                    "MissingCatchOrFinally",
                )
            return ("try", body, handler, final)
        if word in {"exit", "return"}:
            self.next()
            value = None if self.peek().kind in _END_OF_COMMAND else self.expression()
            return (word, value)
        if word in {"while", "do", "for", "function", "switch", "class", "trap", "break", "continue"}:
            raise ParseError(
                f"line {tok.line}: '{tok.value}' is not supported by the sandbox pwsh stand-in.",
                "ParserError",
            )
        if tok.kind == "VAR" and self.peek(1).kind == "ASSIGN":
            self.i += 2
            self.skip_nl()
            return ("assign", tok.value, self.pipeline())
        return self.pipeline()

    def pipeline(self) -> Any:
        elements = [self.command() if self.peek().kind == "WORD" else self.expression()]
        while self.peek().kind == "PIPE":
            self.next()
            self.skip_nl()
            if self.peek().kind != "WORD":
                raise ParseError(
                    f"line {self.peek().line}: expressions are only allowed as the first element of a pipeline.",
                    "ExpressionsMustBeFirstInPipeline",
                )
            elements.append(self.command())
        return elements[0] if len(elements) == 1 else ("pipeline", elements)

    def command(self) -> Any:
        name = str(self.next().value)
        args: list[Any] = []
        while self.peek().kind not in _END_OF_COMMAND:
            tok = self.peek()
            if tok.kind == "DASHARG":
                self.next()
                args.append(("named", tok.value, self.argument()))
            elif tok.kind == "DASH":
                self.next()
                if self.peek().kind in _END_OF_COMMAND or self.peek().kind == "DASH":
                    args.append(("named", tok.value, ("const", True)))
                else:
                    args.append(("named", tok.value, self.argument()))
            else:
                args.append(("positional", self.argument()))
        return ("command", name, args)

    def argument(self) -> Any:
        items = [self.arg_value()]
        while self.peek().kind == "COMMA":
            self.next()
            items.append(self.arg_value())
        return items[0] if len(items) == 1 else ("array", items)

    def arg_value(self) -> Any:
        if self.peek().kind == "WORD":
            return ("const", str(self.next().value))
        return self.postfix()

    # expressions
    def expression(self) -> Any:
        first = self.logical()
        if self.peek().kind != "COMMA":
            return first
        items = [first]
        while self.peek().kind == "COMMA":
            self.next()
            self.skip_nl()
            items.append(self.logical())
        return ("array", items)

    def logical(self) -> Any:
        left = self.comparison()
        while self.peek().kind == "DASH" and str(self.peek().value).lower() in {"and", "or"}:
            op = str(self.next().value).lower()
            left = (op, left, self.comparison())
        return left

    def comparison(self) -> Any:
        left = self.additive()
        while self.peek().kind == "DASH" and str(self.peek().value).lower() in _BINOPS:
            op = str(self.next().value).lower()
            right = self.additive()
            if op == "replace" and self.peek().kind == "COMMA":
                self.next()
                right = ("array", [right, self.additive()])
            left = ("binop", op, left, right)
        return left

    def additive(self) -> Any:
        left = self.unary()
        while self.peek().kind == "PLUS":
            self.next()
            self.skip_nl()
            left = ("binop", "+", left, self.unary())
        return left

    def unary(self) -> Any:
        tok = self.peek()
        if (tok.kind == "DASH" and str(tok.value).lower() == "not") or tok.kind == "BANG":
            self.next()
            return ("not", self.unary())
        return self.postfix()

    def postfix(self) -> Any:
        node = self.primary()
        while True:
            tok = self.peek()
            if tok.kind == "MEMBER":
                self.next()
                if self.peek().kind == "LPAREN":
                    self.next()
                    args = [] if self.peek().kind == "RPAREN" else self.call_args()
                    self.expect("RPAREN", "')' closing a method call")
                    node = ("call", node, tok.value, args)
                else:
                    node = ("member", node, tok.value)
            elif tok.kind == "LBRACKET" and node[0] in {"var", "paren", "member", "subexpr"}:
                self.next()
                index = self.expression()
                self.expect("RBRACKET", "']'")
                node = ("index", node, index)
            else:
                return node

    def call_args(self) -> list[Any]:
        args = [self.logical()]
        while self.peek().kind == "COMMA":
            self.next()
            args.append(self.logical())
        return args

    def primary(self) -> Any:
        tok = self.next()
        kind = tok.kind
        if kind == "VAR":
            return ("var", tok.value)
        if kind == "STR":
            return ("const", tok.value)
        if kind == "XSTR":
            return ("xstr", tok.value)
        if kind == "NUM":
            return ("const", tok.value)
        if kind == "LPAREN":
            self.skip_nl()
            inner = self.statement()
            self.skip_nl()
            self.expect("RPAREN", "')'")
            return ("paren", inner)
        if kind in {"ATPAREN", "SUBEXPR"}:
            body = self.statements(until="RPAREN")
            return ("arrayexpr" if kind == "ATPAREN" else "subexpr", body)
        if kind == "ATBRACE":
            return self.hashtable()
        if kind == "LBRACKET":
            self.i -= 1
            typ = self.type_literal()
            if self.peek().kind == "COLONS":
                self.next()
                method = self.expect("WORD", "a static member name").value
                self.expect("LPAREN", "'('")
                args = [] if self.peek().kind == "RPAREN" else self.call_args()
                self.expect("RPAREN", "')'")
                return ("static", typ, method, args)
            return ("cast", typ, self.unary())
        raise ParseError(
            f"line {tok.line}: unexpected token '{tok.value if tok.value is not None else kind}' in expression or statement.",
            "UnexpectedToken",
        )

    def hashtable(self) -> Any:
        entries: list[Any] = []
        while True:
            self.skip_nl()
            tok = self.next()
            if tok.kind == "RBRACE":
                return ("hash", entries)
            if tok.kind not in {"WORD", "STR", "XSTR"}:
                raise ParseError(
                    f"line {tok.line}: missing key before '=' in hash literal.", "MissingEqualsInHashLiteral"
                )
            self.expect("ASSIGN", "'=' in hash literal")
            self.skip_nl()
            entries.append((str(tok.value), self.statement()))
