import math

import pytest
from hypothesis import given, strategies as st

from harness.expect import Expectation, ExpectationError, Verdict, parse_override, wilson_interval

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)


def acc_bar(threshold=95.0):
    return Expectation("baseline/digits/state0/accuracy", "State 0 accuracy on digits", ">=", threshold, "%")


def test_failure_line_is_the_documented_one():
    v = acc_bar().evaluate(93.10)
    assert not v.passed
    assert v.line() == "State 0 accuracy on digits: observed 93.10% vs expected >= 95.00% (gap -1.90 pp)"


def test_seed_gap():
    v = Expectation("baseline/cifar10/state0/accuracy", "State 0 accuracy on cifar10", ">=", 95, "%").evaluate(74.12)
    assert v.gap == pytest.approx(-20.88)
    assert "(gap -20.88 pp)" in v.line()


def test_accuracy_verdict_carries_n_and_wilson():
    v = acc_bar().evaluate_accuracy(346, 360)
    assert v.observed == pytest.approx(100 * 346 / 360)
    assert v.evidence["n"] == 360 and v.evidence["correct"] == 346
    low, high = v.evidence["wilson95"]
    assert low < v.observed < high
    # known value: 346/360, z=1.96 -> [93.58, 97.67]
    assert (round(low, 2), round(high, 2)) == (93.58, 97.67)


def test_verdict_round_trips_through_dict():
    v = acc_bar().evaluate_accuracy(300, 360, {"run_id": "abc"})
    assert Verdict.from_dict(v.to_dict()) == v


@pytest.mark.parametrize("bad", ["nope", "id>=", "id=>3", ">=3", "id>=abc", "id>=nan"])
def test_malformed_override_names_the_form(bad):
    with pytest.raises(ExpectationError, match="--expect"):
        parse_override(bad)


def test_override_parses_each_op():
    assert parse_override("a/b>=99.99").threshold == 99.99
    assert parse_override("a/b <= 3").op == "<="
    assert parse_override("a/b==1e-3").threshold == 1e-3


def test_unknown_op_and_within_without_tolerance_rejected():
    with pytest.raises(ExpectationError, match="op must be one of"):
        Expectation("x", "x", ">", 1)
    with pytest.raises(ExpectationError, match="tolerance > 0"):
        Expectation("x", "x", "within", 1)


@given(observed=finite, threshold=finite)
def test_gap_sign_matches_pass_for_ge_and_le(observed, threshold):
    for op in (">=", "<="):
        v = Expectation("x", "x", op, threshold).evaluate(observed)
        assert v.passed == (v.gap >= 0)
        assert abs(v.gap) == pytest.approx(abs(observed - threshold))


@given(observed=finite, threshold=finite, tol=st.floats(min_value=1e-3, max_value=1e3))
def test_within_passes_exactly_inside_tolerance(observed, threshold, tol):
    v = Expectation("x", "x", "within", threshold, "%", tolerance=tol).evaluate(observed)
    assert v.passed == (abs(observed - threshold) <= tol)
    assert (v.gap >= 0) == v.passed


@given(observed=finite, threshold=finite)
def test_eq_passes_only_when_equal(observed, threshold):
    v = Expectation("x", "x", "==", threshold).evaluate(observed)
    assert v.passed == (abs(observed - threshold) <= 1e-9)
    assert v.gap <= 0


def test_nan_observation_never_passes():
    v = acc_bar(0).evaluate(math.nan)
    assert not v.passed and "observed nan" in v.line()


@given(n=st.integers(1, 10**6), data=st.data())
def test_wilson_bounds_inside_0_100_and_bracket_the_rate(n, data):
    k = data.draw(st.integers(0, n))
    low, high = wilson_interval(k, n)
    assert 0.0 <= low <= 100 * k / n + 1e-9
    assert 100 * k / n - 1e-9 <= high <= 100.0


def test_wilson_rejects_impossible_counts():
    with pytest.raises(ExpectationError, match="n must be > 0"):
        wilson_interval(0, 0)
    with pytest.raises(ExpectationError, match="successes"):
        wilson_interval(5, 4)


# --- issue 10 item 12: no infinite bar, no verdict passed on a non-finite value -----------------
@pytest.mark.parametrize("text", ["a/b>=-1e400", "a/b<=1e999", "a/b==+1e309"])
def test_an_override_with_an_infinite_value_is_refused(text):
    with pytest.raises(ExpectationError, match=r"VALUE must be a finite number, got '[-+0-9e]+' \(= -?inf\)"):
        parse_override(text)


def test_an_override_with_a_large_finite_value_is_kept():
    assert parse_override("a/b>=-1e300").threshold == -1e300


@pytest.mark.parametrize("threshold", [math.inf, -math.inf, math.nan, True])
def test_an_expectation_with_a_non_finite_threshold_is_refused(threshold):
    with pytest.raises(ExpectationError, match="threshold must be a finite number"):
        Expectation("a", "A", ">=", threshold, "%")


@pytest.mark.parametrize("op", [">=", "<="])
@pytest.mark.parametrize("observed", [math.inf, -math.inf, math.nan])
def test_a_non_finite_observation_fails_whatever_the_bar(op, observed):
    v = Expectation("a", "A", op, 95.0 if op == ">=" else 1e308, "%").evaluate(observed, {"note": "from a log"})
    assert v.passed is False and math.isnan(v.gap)
    assert v.evidence["note"] == f"from a log; observed value {observed!r} is not a finite number"
