"""Formula parsing: text -> term specifications, without looking at any data.

Grammar (R/mgcv-like)::

    formula  := [response] "~" rhs
    rhs      := term (("+" | "-") term)*
    term     := "1" | "0" | factor (":" factor)* | factor "*" factor
    factor   := NAME | NAME "(" args ")"
    args     := arg ("," arg)*          arg := value | NAME "=" value
    value    := NUMBER | STRING | NAME | "c(" values ")" | "[" values "]"

Calls understood: ``s``, ``te``, ``ti``, ``re``, ``ridge``, ``lasso``, ``offset``, and
``deep(network, x1, x2, ...)`` for a neural-network term (the network is looked up by name in the
model's ``networks``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "FormulaError", "Formula", "Linear", "Smooth", "Tensor", "RandomEffect", "PenalizedLinear",
    "Offset", "Deep", "parse_formula",
]


class FormulaError(ValueError):
    """A formula could not be parsed; the message shows the position with a caret."""

    def __init__(self, message: str, text: str, pos: int):
        self.text, self.pos = text, pos
        super().__init__(f"{message} at position {pos}:\n  {text}\n  {' ' * pos}^")


@dataclass(frozen=True)
class Linear:
    """Unpenalized linear term; several variables form an interaction ``a:b``."""

    variables: tuple[str, ...]

    @property
    def label(self) -> str:
        return ":".join(self.variables)


@dataclass(frozen=True)
class Smooth:
    """``s(x, k=20, bs="ps", by=z, m=2, sp=None, df=None)``: a penalized spline of one covariate."""

    variable: str
    k: int = 20
    bs: str = "ps"
    by: str | None = None
    order: int = 2  # difference-penalty order
    sp: float | None = None
    df: float | None = None

    @property
    def label(self) -> str:
        return f"s({self.variable})" + (f":{self.by}" if self.by else "")


@dataclass(frozen=True)
class Tensor:
    """``te(x1, x2, k=...)`` tensor-product smooth (one penalty per margin); ``ti`` = pure interaction."""

    variables: tuple[str, ...]
    k: tuple[int, ...]
    bs: tuple[str, ...]
    interaction_only: bool = False
    by: str | None = None
    sp: tuple[float, ...] | None = None
    df: float | None = None

    @property
    def label(self) -> str:
        return ("ti" if self.interaction_only else "te") + f"({','.join(self.variables)})" + (
            f":{self.by}" if self.by else "")


@dataclass(frozen=True)
class RandomEffect:
    """``re(g)`` random intercept per level of ``g``; ``re(g, x)`` random slope of ``x``."""

    group: str
    slope: str | None = None
    sp: float | None = None

    @property
    def label(self) -> str:
        return f"re({self.group}" + (f",{self.slope}" if self.slope else "") + ")"


@dataclass(frozen=True)
class PenalizedLinear:
    """``ridge(x1, x2, ...)`` or ``lasso(x1, ...)``: a block of linear effects with a shrinkage penalty."""

    variables: tuple[str, ...]
    kind: str  # "ridge" | "lasso"
    sp: float | None = None

    @property
    def label(self) -> str:
        return f"{self.kind}({','.join(self.variables)})"


@dataclass(frozen=True)
class Offset:
    """``offset(v)``: a known contribution to the predictor, coefficient fixed at 1."""

    variable: str

    @property
    def label(self) -> str:
        return f"offset({self.variable})"


@dataclass(frozen=True)
class Deep:
    """``deep(net, x1, x2, ...)``: a neural network (named ``net`` in the model's ``networks``) of the
    listed inputs; an input is a numeric column, or an array with one row per observation (an image
    batch (n, H, W, C), token ids (n, L)) passed under that name in a dict."""

    network: str
    variables: tuple[str, ...]

    @property
    def label(self) -> str:
        return f"deep({self.network}: {','.join(self.variables)})"


@dataclass
class Formula:
    """Parsed formula: response name (or None), intercept flag and term specifications."""

    text: str
    response: str | None
    intercept: bool
    terms: list = field(default_factory=list)

    @property
    def deep_terms(self) -> list[Deep]:
        """The neural-network terms, in formula order."""
        return [t for t in self.terms if isinstance(t, Deep)]

    @property
    def variables(self) -> list[str]:
        """Every data column the structured terms read, in order of first use (the inputs of deep
        terms, which may be arrays of any shape, are in :attr:`deep_terms`)."""
        out: list[str] = []
        for term in self.terms:
            if isinstance(term, Deep):
                continue
            for name in _term_variables(term):
                if name not in out:
                    out.append(name)
        return out


def _term_variables(term) -> tuple[str, ...]:
    if isinstance(term, (Linear, PenalizedLinear, Deep)):
        return term.variables
    if isinstance(term, Smooth):
        return (term.variable,) + ((term.by,) if term.by else ())
    if isinstance(term, Tensor):
        return term.variables + ((term.by,) if term.by else ())
    if isinstance(term, RandomEffect):
        return (term.group,) + ((term.slope,) if term.slope else ())
    return (term.variable,)


_TOKEN = re.compile(r"""\s*(?:(?P<NUMBER>\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?)|(?P<STRING>"[^"]*"|'[^']*')|(?P<NAME>[A-Za-z_][A-Za-z0-9_.]*|`[^`]+`)|(?P<OP>[~+\-*:(),=\[\]]))""")


def _tokenize(text: str) -> list[tuple[str, str, int]]:
    tokens, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if not match:
            start = pos + len(text[pos:]) - len(text[pos:].lstrip())
            raise FormulaError(f"unexpected character {text[start]!r}", text, start)
        kind = match.lastgroup
        value = match.group(kind)
        start = match.start(kind)
        if kind == "NAME" and value.startswith("`"):
            value = value[1:-1]
        tokens.append((kind, value, start))
        pos = match.end()
    tokens.append(("END", "", len(text)))
    return tokens


_CALLS = {"s", "te", "ti", "re", "ridge", "lasso", "offset", "deep"}


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.tokens = _tokenize(text)
        self.i = 0

    def peek(self):
        return self.tokens[self.i]

    def take(self, kind=None, value=None):
        tok = self.tokens[self.i]
        if (kind and tok[0] != kind) or (value is not None and tok[1] != value):
            want = repr(value) if value is not None else kind.lower()
            got = "end of formula" if tok[0] == "END" else repr(tok[1])
            raise FormulaError(f"expected {want}, found {got}", self.text, tok[2])
        self.i += 1
        return tok

    def found(self):
        tok = self.peek()
        return "end of formula" if tok[0] == "END" else repr(tok[1])

    def error(self, message, tok=None):
        tok = tok or self.peek()
        raise FormulaError(message, self.text, tok[2])

    def formula(self) -> Formula:
        response = None
        if self.peek()[0] == "NAME" and self.tokens[self.i + 1][1] == "~":
            response = self.take("NAME")[1]
        if self.peek()[1] != "~":
            self.error("a formula needs '~' (e.g. 'y ~ x + s(z)', or '~ s(z)' for an extra parameter)")
        self.take("OP", "~")
        intercept, terms = True, []
        sign = "+"
        if self.peek()[0] == "END":
            self.error("empty right-hand side (use '~ 1' for a constant)")
        while True:
            tok = self.peek()
            if tok[1] in ("+", "-"):
                sign = self.take()[1]
                tok = self.peek()
            if tok[0] == "NUMBER" and tok[1] in ("0", "1"):
                self.take()
                intercept = (tok[1] == "1") == (sign == "+")
            else:
                if sign == "-":
                    self.error("only '- 1' (drop the intercept) may be subtracted", tok)
                for term in self.term():
                    if term not in terms:
                        terms.append(term)
            tok = self.peek()
            if tok[0] == "END":
                break
            if tok[1] not in ("+", "-"):
                self.error(f"expected '+' between terms, found {self.found()}")
            sign = "+"
        return Formula(self.text, response, intercept, terms)

    def term(self) -> list:
        parts = [self.factor()]
        ops = []
        while self.peek()[1] in (":", "*"):
            ops.append(self.take()[1])
            parts.append(self.factor())
        if not ops:
            return parts
        for p in parts:
            if not isinstance(p, Linear):
                self.error("interactions (':' and '*') are for plain variables; use te()/ti() or by= for smooths")
        if all(op == ":" for op in ops):
            return [Linear(tuple(v for p in parts for v in p.variables))]
        # a*b*c expands to all main effects and interactions, R style
        names = [p.variables[0] for p in parts]
        out = []
        for size in range(1, len(names) + 1):
            from itertools import combinations
            out += [Linear(c) for c in combinations(names, size)]
        return out

    def factor(self):
        tok = self.take("NAME") if self.peek()[0] == "NAME" else self.error(
            f"expected a variable or a term such as s(x), found {self.peek()[1]!r}" if self.peek()[0] != "END"
            else "formula ends where a term was expected")
        name = tok[1]
        if self.peek()[1] != "(":
            return Linear((name,))
        if name not in _CALLS:
            self.error(f"unknown term {name}(); known: {', '.join(sorted(_CALLS))}", tok)
        self.take("OP", "(")
        positional, keywords = [], {}
        while self.peek()[1] != ")":
            if self.peek()[0] == "NAME" and self.tokens[self.i + 1][1] == "=":
                key = self.take()[1]
                self.take("OP", "=")
                keywords[key] = self.value()
            else:
                if keywords:
                    self.error("positional argument after keyword argument")
                positional.append(self.value(name_as_variable=True))
            if self.peek()[1] == ",":
                self.take()
            elif self.peek()[1] != ")":
                self.error(f"expected ',' or ')' in {name}(), found {self.found()}")
        self.take("OP", ")")
        try:
            return _build_call(name, positional, keywords)
        except (TypeError, ValueError) as exc:
            raise FormulaError(f"in {name}(): {exc}", self.text, tok[2]) from None

    def value(self, name_as_variable=False):
        tok = self.peek()
        if tok[0] == "NUMBER":
            self.take()
            return float(tok[1]) if any(c in tok[1] for c in ".eE") else int(tok[1])
        if tok[0] == "STRING":
            self.take()
            return tok[1][1:-1]
        if tok[0] == "NAME" and tok[1] == "c" and self.tokens[self.i + 1][1] == "(":
            self.take(), self.take()
            return self._values(")")
        if tok[1] == "[":
            self.take()
            return self._values("]")
        if tok[0] == "NAME":
            self.take()
            if tok[1] in ("TRUE", "True", "FALSE", "False"):
                return tok[1] in ("TRUE", "True")
            if tok[1] in ("None", "NULL"):
                return None
            return _Var(tok[1])
        self.error(f"expected a value, found {tok[1]!r}" if tok[0] != "END" else "formula ends inside a term")

    def _values(self, close):
        items = []
        while self.peek()[1] != close:
            items.append(self.value())
            if self.peek()[1] == ",":
                self.take()
        self.take("OP", close)
        return items


@dataclass(frozen=True)
class _Var:
    name: str


def _varname(v, what):
    if isinstance(v, _Var):
        return v.name
    if isinstance(v, str):
        return v
    raise ValueError(f"{what} must be a variable name, got {v!r}")


def _as_tuple(value, n, what):
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ValueError(f"{what} needs one value per margin ({n}), got {len(value)}")
        return tuple(value)
    return (value,) * n


def _build_call(name, positional, keywords):
    allowed = {
        "s": {"k", "bs", "by", "m", "sp", "df"},
        "te": {"k", "bs", "by", "sp", "df"}, "ti": {"k", "bs", "by", "sp", "df"},
        "re": {"sp"}, "ridge": {"sp"}, "lasso": {"sp"}, "offset": set(), "deep": set(),
    }[name]
    unknown = set(keywords) - allowed
    if unknown:
        raise ValueError(f"unknown argument(s) {sorted(unknown)}; allowed: {sorted(allowed) or 'none'}")
    variables = [_varname(v, "each positional argument") for v in positional]
    by = _varname(keywords["by"], "by=") if keywords.get("by") is not None else None
    if name == "deep":
        if len(variables) < 2:
            raise ValueError("deep() takes a network name and at least one input: deep(mlp, x1, x2)")
        if len(set(variables[1:])) != len(variables) - 1:
            raise ValueError(f"an input appears twice in deep({', '.join(variables)})")
        return Deep(variables[0], tuple(variables[1:]))
    if name == "s":
        if len(variables) != 1:
            raise ValueError("s() takes exactly one covariate; use te(x1, x2) for a smooth of several")
        k = keywords.get("k", 20)
        bs = keywords.get("bs", "ps")
        if bs not in ("ps", "cc", "cp", "bs"):
            raise ValueError(f"bs={bs!r} is not supported; use 'ps' (P-spline) or 'cc'/'cp' (cyclic)")
        if not isinstance(k, int) or k < 4:
            raise ValueError(f"k must be an integer >= 4, got {k!r}")
        return Smooth(variables[0], k=k, bs="cc" if bs == "cp" else ("ps" if bs == "bs" else bs), by=by,
                      order=int(keywords.get("m", 2)), sp=keywords.get("sp"), df=keywords.get("df"))
    if name in ("te", "ti"):
        if len(variables) < 2:
            raise ValueError(f"{name}() needs at least two covariates")
        d = len(variables)
        k = _as_tuple(keywords.get("k", 5), d, "k")
        if any(not isinstance(ki, int) or ki < 4 for ki in k):
            raise ValueError(f"k must be integers >= 4, got {keywords.get('k')!r}")
        bs = tuple("cc" if b == "cp" else b for b in _as_tuple(keywords.get("bs", "ps"), d, "bs"))
        sp = keywords.get("sp")
        return Tensor(tuple(variables), k, bs, interaction_only=name == "ti", by=by,
                      sp=_as_tuple(sp, d, "sp") if sp is not None else None, df=keywords.get("df"))
    if name == "re":
        if not 1 <= len(variables) <= 2:
            raise ValueError("re() takes a grouping factor and optionally one slope variable: re(g) or re(g, x)")
        return RandomEffect(variables[0], variables[1] if len(variables) == 2 else None, sp=keywords.get("sp"))
    if name in ("ridge", "lasso"):
        if not variables:
            raise ValueError(f"{name}() needs at least one variable")
        return PenalizedLinear(tuple(variables), name, sp=keywords.get("sp"))
    if len(variables) != 1:
        raise ValueError("offset() takes exactly one variable")
    return Offset(variables[0])


def parse_formula(text: str, *, need_response: bool | None = None) -> Formula:
    """Parse a model formula into term specifications.

    Parameters
    ----------
    text : str
        R/mgcv-style formula, e.g. ``"y ~ x1 + s(x2, k=10) + te(x3, x4) + re(g)"``.
    need_response : bool, optional
        ``True``: a response is required; ``False``: it is forbidden (formulas of extra parameters).

    Returns
    -------
    Formula

    Examples
    --------
    >>> f = parse_formula("y ~ x + s(z, k=10) + re(g)")
    >>> f.response, [t.label for t in f.terms]
    ('y', ['x', 's(z)', 're(g)'])
    """
    if not isinstance(text, str):
        raise TypeError(f"a formula must be a string, got {type(text).__name__}")
    formula = _Parser(text).formula()
    if need_response is True and formula.response is None:
        raise FormulaError("the main formula needs a response on the left of '~'", text, 0)
    if need_response is False and formula.response is not None:
        raise FormulaError("formulas of extra parameters have no response: write '~ s(x)'", text, 0)
    return formula
