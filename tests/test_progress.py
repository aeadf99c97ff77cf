"""The training progress bar shows images/s and the time remaining (ETA)."""
import re
import time

from harness.progress import progress_bar


def test_bar_shows_rate_and_eta(capsys):
    with progress_bar(total=1000, desc="digits state 0") as update:
        for _ in range(3):
            time.sleep(0.6)            # past the bar's 0.5 s refresh interval
            update(250)
    err = capsys.readouterr().err
    assert "digits state 0" in err
    assert re.search(r"750/1.00k \[\d\d:\d\d<\d\d:\d\d, [\d.]+k?img/s\]", err)  # elapsed<ETA, rate


def test_disabled_bar_is_silent(capsys):
    with progress_bar(total=10, desc="x", enabled=False) as update:
        assert update is None
    assert capsys.readouterr().err == ""
