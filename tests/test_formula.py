import re

import pytest

from structax.regression import FormulaError, parse_formula
from structax.regression._formula import Linear, Offset, PenalizedLinear, RandomEffect, Smooth, Tensor


def test_terms_of_a_full_formula():
    f = parse_formula("y ~ x1 + s(x2, k=10, bs='cc') + te(x3, x4, k=c(5,6)) + ti(x3, x4) + re(g) "
                      "+ re(g, x1) + ridge(a, b) + lasso(c) + offset(lt) + x1:f")
    assert f.response == "y" and f.intercept
    assert f.terms[0] == Linear(("x1",))
    assert f.terms[1] == Smooth("x2", k=10, bs="cc")
    assert f.terms[2] == Tensor(("x3", "x4"), (5, 6), ("ps", "ps"))
    assert f.terms[3].interaction_only
    assert f.terms[4] == RandomEffect("g") and f.terms[5] == RandomEffect("g", "x1")
    assert f.terms[6] == PenalizedLinear(("a", "b"), "ridge")
    assert f.terms[8] == Offset("lt")
    assert f.terms[9] == Linear(("x1", "f"))
    assert f.variables == ["x1", "x2", "x3", "x4", "g", "a", "b", "c", "lt", "f"]


def test_star_expands_and_intercept_removal():
    f = parse_formula("y ~ a*b - 1")
    assert [t.label for t in f.terms] == ["a", "b", "a:b"] and not f.intercept
    assert not parse_formula("y ~ 0 + x").intercept


def test_smooth_options():
    t = parse_formula("y ~ s(x, by=z, sp=0.5, df=4, m=3)").terms[0]
    assert (t.by, t.sp, t.df, t.order) == ("z", 0.5, 4, 3)


@pytest.mark.parametrize("text, message, position", [
    ("y ~ s(x", "expected ',' or ')'", 7),
    ("y ~ x +", "formula ends where a term was expected", 7),
    ("y ~ foo(x)", "unknown term foo()", 4),
    ("y ~ s(x, q=3)", "unknown argument", 4),
    ("y x", "needs '~'", 0),
    ("y ~ x ^ 2", "unexpected character '^'", 6),
    ("y ~ s(x, k=2)", "k must be an integer >= 4", 4),
    ("y ~ s(x, z)", "exactly one covariate", 4),
    ("y ~ s(x):z", "interactions", 10),
])
def test_syntax_errors_show_the_position(text, message, position):
    with pytest.raises(FormulaError, match=re.escape(message)) as err:
        parse_formula(text)
    assert err.value.pos == position
    assert "^" in str(err.value)


def test_response_rules():
    with pytest.raises(FormulaError, match="needs a response"):
        parse_formula("~ s(x)", need_response=True)
    with pytest.raises(FormulaError, match="no response"):
        parse_formula("y ~ s(x)", need_response=False)
