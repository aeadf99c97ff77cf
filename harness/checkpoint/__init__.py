"""Reading checkpoint files safely and auditing what loading them into a model would do: the
layer both the model factory (harness.models) and the forensics (harness.forensics) stand on."""
