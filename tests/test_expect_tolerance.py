"""Expectations with a statistical tolerance (standard errors) and multi-seed aggregation."""
import math
import statistics

import pytest

from harness.expect import Expectation, ExpectationError, wilson_interval

BAR = Expectation("baseline/digits/state0/accuracy", "State 0 accuracy on digits", ">=", 95.0, "%")


def test_without_tolerance_a_short_accuracy_fails():
    assert not BAR.evaluate_accuracy(340, 360).passed


@pytest.mark.parametrize("correct, passed, words", [
    (350, True, None),
    (340, True, "short of the bar but within 2 SE: the upper end of the 2-SE Wilson interval"),
    (330, False, "fails beyond 2 SE: the upper end of the 2-SE Wilson interval"),
])
def test_tolerance_se_fails_only_when_the_upper_wilson_end_is_below_the_bar(correct, passed, words):
    bar = Expectation(BAR.id, BAR.title, ">=", 95.0, "%", tolerance_se=2)
    verdict = bar.evaluate_accuracy(correct, 360)
    low, high = wilson_interval(correct, 360, z=2)
    assert verdict.passed is passed
    assert verdict.passed == (100 * correct / 360 >= 95 or high >= 95)
    assert verdict.evidence["tolerance_se"]["interval"] == [round(low, 4), round(high, 4)]
    assert verdict.gap == pytest.approx(100 * correct / 360 - 95)  # the gap stays observed - bar
    if words:
        assert words in verdict.line() and f"{high:.2f}%" in verdict.line()


def test_tolerance_se_on_an_upper_bar_uses_the_lower_end():
    bar = Expectation("x/error", "error rate", "<=", 5.0, "%", tolerance_se=1)
    low, _ = wilson_interval(20, 360, z=1)
    verdict = bar.evaluate_accuracy(20, 360)  # 5.56% observed, lower end below 5%
    assert low < 5.0 and verdict.passed and "the lower end" in verdict.line()


def test_more_standard_errors_tolerate_more():
    tight = Expectation(BAR.id, BAR.title, ">=", 95.0, "%", tolerance_se=1).evaluate_accuracy(336, 360)
    loose = Expectation(BAR.id, BAR.title, ">=", 95.0, "%", tolerance_se=3).evaluate_accuracy(336, 360)
    assert not tight.passed and loose.passed


def test_seeds_are_judged_on_the_mean_and_report_the_spread():
    bar = Expectation(BAR.id, BAR.title, ">=", 95.0, "%", seeds=3)
    results = [(350, 360), (340, 360), (345, 360)]
    verdict = bar.evaluate_accuracy_seeds(results, {"run_ids": ["a", "b", "c"]})
    accs = [100 * c / n for c, n in results]
    assert verdict.observed == pytest.approx(statistics.mean(accs))
    assert verdict.evidence["std"] == pytest.approx(statistics.stdev(accs), abs=1e-4)
    assert verdict.evidence["spread"] == [round(min(accs), 4), round(max(accs), 4)]
    assert verdict.passed and verdict.evidence["run_ids"] == ["a", "b", "c"]
    assert "mean of 3 seeds, std 1.39 pp, range 94.44% to 97.22%" in verdict.line()


def test_seeds_with_tolerance_use_the_standard_error_of_the_mean():
    bar = Expectation(BAR.id, BAR.title, ">=", 95.0, "%", seeds=3, tolerance_se=2)
    values = [94.0, 95.5, 94.3]  # mean 94.6 short of 95
    verdict = bar.evaluate_seeds(values)
    sem = statistics.stdev(values) / math.sqrt(3)
    assert verdict.passed == (statistics.mean(values) + 2 * sem >= 95.0) is True
    assert "interval of the mean over seeds" in verdict.line()
    assert not bar.evaluate_seeds([90.0, 90.5, 90.2]).passed


def test_a_wrong_number_of_seeds_names_the_field():
    with pytest.raises(ExpectationError, match=r"seeds=3 needs one observation per seed, got 2"):
        Expectation(BAR.id, BAR.title, ">=", 95.0, "%", seeds=3).evaluate_seeds([1.0, 2.0])


@pytest.mark.parametrize("kwargs, message", [
    ({"tolerance_se": -1}, "tolerance_se must be a number >= 0"),
    ({"tolerance_se": float("nan")}, "tolerance_se must be a number >= 0"),
    ({"seeds": 0}, "seeds must be an int >= 1, got 0"),
    ({"seeds": 2.5}, "seeds must be an int >= 1, got 2.5"),
    ({"op": "==", "tolerance_se": 2}, "tolerance_se needs op '>=' or '<='"),
])
def test_bad_statistics_fields_are_named(kwargs, message):
    fields = {"id": "x", "title": "x", "op": ">=", "threshold": 1.0, **kwargs}
    with pytest.raises(ExpectationError, match=message):
        Expectation(**fields)


def test_an_override_keeps_the_tolerance_and_seeds():
    bar = Expectation(BAR.id, BAR.title, ">=", 95.0, "%", tolerance_se=2, seeds=3)
    moved = bar.with_threshold(">=", 97.0)
    assert (moved.threshold, moved.tolerance_se, moved.seeds) == (97.0, 2, 3)


def test_reports_show_the_tolerance_with_the_bar():
    from harness.report import build_report, render_markdown
    from harness.report.html import render_html

    bar = Expectation(BAR.id, BAR.title, ">=", 95.0, "%", tolerance_se=2)
    report = build_report(profile="smoke", verdicts=[bar.evaluate_accuracy(340, 360)], tests=[],
                          records={}, environment={}, started=0.0, finished=1.0)
    assert "| >= 95.00% (tolerance 2 SE) |" in render_markdown(report)
    assert "&gt;= 95.00% (tolerance 2 SE)</td>" in render_html(report)
