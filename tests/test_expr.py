"""workbench.expr: the derived-column formulas of the law fitter are parsed against a whitelist and
never executed as Python (issue 12: the box used to run ``DataFrame.eval``, which wrote files)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from workbench.errors import WorkbenchError
from workbench.expr import ExpressionError, columns, evaluate


@pytest.fixture
def df() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"N": rng.uniform(1e6, 1e9, 50), "D": rng.uniform(1e8, 1e11, 50),
                         "Model Size": rng.uniform(1, 10, 50), "Training FLOP": rng.uniform(1e18, 1e21, 50),
                         "loss(c4)": rng.uniform(2, 4, 50)})


EXPLOITS = [
    "__import__('os').system('touch {x}')",
    "__import__('os').system",
    "N.__class__",
    "N.to_csv('{x}')",
    "open('{x}', 'w')",
    "[c for c in ().__class__.__base__.__subclasses__()]",
    "(lambda: 0)()",
    "N[0]",
    "'{x}'",
    "exec('open(\"{x}\",\"w\")')",
    "eval('1')",
    "getattr(N, 'to_csv')('{x}')",
    "log(N, base=2)",
    "log(N, 2)",
    "N if D else N",
    "N > D",
    "N and D",
    "@N",
    "`Model Size`('x')",
    "__builtins__",
    "np.log(N)",
    "f'{{N}}'",
    "{{1: N}}",
    "(N := 3)",
    "True * N",
    "1j * N",
    "N // D",
    "N % D",
    "N @ D",
    "~N",
    "not N",
]


@pytest.mark.parametrize("text", EXPLOITS)
def test_refuses_everything_outside_the_whitelist(text: str, df: pd.DataFrame, tmp_path) -> None:
    target = tmp_path / "X"
    text = text.format(x=target)
    with pytest.raises(ExpressionError) as ei:
        evaluate(text, df)
    assert isinstance(ei.value, WorkbenchError)
    msg = str(ei.value)
    assert "not allowed" in msg or "not a formula" in msg
    assert not target.exists()


def test_the_issue_exploit_names_what_was_refused(tmp_path) -> None:
    target = tmp_path / "X"
    with pytest.raises(ExpressionError, match="calling") as ei:
        evaluate(f"__import__('os').system('touch {target}')", {"N": np.ones(3)})
    assert "allowed are" in str(ei.value) and "log()" in str(ei.value)
    assert not target.exists()
    with pytest.raises(ExpressionError, match="attribute access"):
        evaluate("N.__class__", {"N": np.ones(3)})
    with pytest.raises(ExpressionError, match="the name '__builtins__'"):
        evaluate("__builtins__", {"N": np.ones(3)})


def test_matches_numpy_on_real_columns(df: pd.DataFrame) -> None:
    N, D = df["N"].to_numpy(), df["D"].to_numpy()
    ms, fl = df["Model Size"].to_numpy(), df["Training FLOP"].to_numpy()
    cases = {
        "6 * N * D": 6 * N * D,
        "-N + D / 2": -N + D / 2,
        "N ** 0.34 - (D - 1e8) ** -0.28": N ** 0.34 - (D - 1e8) ** -0.28,
        "log(N) + exp(-N / 1e9) * sqrt(D)": np.log(N) + np.exp(-N / 1e9) * np.sqrt(D),
        "log10(abs(-N))": np.log10(N),
        "`Training FLOP` / (6 * `Model Size`)": fl / (6 * ms),
        "2 ** -(`loss(c4)`)": 2.0 ** -df["loss(c4)"].to_numpy(),
        "+N": N,
    }
    for text, want in cases.items():
        got = evaluate(text, df)
        np.testing.assert_allclose(got, want, rtol=1e-12, err_msg=text)
    np.testing.assert_array_equal(evaluate("3", df, length=len(df)), np.full(len(df), 3.0))
    assert columns("`Model Size` * N + log(N)") == ["Model Size", "N"]


def test_a_column_named_like_a_function_is_still_a_column() -> None:
    np.testing.assert_allclose(evaluate("log(log) + `exp`", {"log": np.e * np.ones(2), "exp": np.ones(2)}), [2.0, 2.0])


def test_big_powers_do_not_hang_or_raise(df: pd.DataFrame) -> None:
    out = evaluate("9 ** 9 ** 9 ** 9 + N", df)  # integers would be a bignum that never finishes
    assert np.all(np.isinf(out))


@pytest.mark.parametrize("text, match", [
    ("", "empty"), ("N +", "not a formula"), ("`Model Size", "unbalanced"), ("``", "empty back-quoted"),
    ("nope * 2", "unknown column 'nope'"), ("x" * 2000, "at most 1000"), ("(" * 450 + "N" + ")" * 450, "not a formula|nested"),
])
def test_bad_formulas_have_clear_errors(text: str, match: str, df: pd.DataFrame) -> None:
    with pytest.raises(ExpressionError, match=match):
        evaluate(text, df)


def test_law_fitter_derive_uses_the_safe_parser(df: pd.DataFrame, tmp_path) -> None:
    from workbench.fit.data import CSVError, derive

    out = derive(df, "C = 6 * N * D\n`per param` = D / N")
    np.testing.assert_allclose(out["C"], 6 * df["N"] * df["D"])
    np.testing.assert_allclose(out["per param"], df["D"] / df["N"])
    target = tmp_path / "X"
    with pytest.raises(CSVError, match="derive: .*not allowed"):
        derive(df, f"C = __import__('os').system('touch {target}')")
    assert not target.exists()


def test_law_fitter_app_refuses_the_exploit_with_a_message(tmp_path) -> None:
    from workbench.apps.law_fitter import LawFitter

    target = tmp_path / "X"
    app = LawFitter(store_path=str(tmp_path / "r.db"))
    app.source.upload(b"size,loss\n10,2.76\n100,1.9\n1000,1.63\n10000,1.54\n")
    app.source.confirm_mapping()  # the proposal x=size,L=loss, confirmed
    app.param.update(laws=["power_law"], x_var="x", holdout=0,
                     derived=f"z = __import__('os').system('touch {target}')")
    assert app.fit() is None
    assert "not allowed" in app.message.object and app.message.alert_type == "danger"
    assert not target.exists()
    app.derived = "size_k = size / 1000"
    assert app.fit() is not None, app.message.object
    assert "size_k" in app.frame()
