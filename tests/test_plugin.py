"""pytest options of the harness plugin that reach the run context."""


def _context_probe(pytester) -> None:
    pytester.makepyfile(test_probe="""
        def test_probe(harness_session):
            print("compile=%s" % harness_session.context.compile)
    """)


def test_no_compile_option_reaches_the_run_context(pytester):
    _context_probe(pytester)
    result = pytester.runpytest("--profile", "smoke", "--no-compile", "-s", "-q")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*compile=False*"])


def test_compile_is_the_default(pytester):
    _context_probe(pytester)
    result = pytester.runpytest("--profile", "smoke", "-s", "-q")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*compile=True*"])
