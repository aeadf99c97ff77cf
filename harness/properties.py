"""Names of the user properties a harness test carries (junit XML; how an xdist worker tells its
controller what it judged). Kept apart so the plugin can read them without importing torch."""
VERDICT_PROPERTY = "verdict:"       # + verdict id: the verdict as JSON
RUN_PROPERTY = "harness-run:"       # + case id: {"run_id", "reused"} of a run a test used
USED_PROPERTY = "harness-used"      # every test that used the harness
