"""(a) The harness trains this project's own ViT class (not timm) on the harness's bundled digits
data, and judges it against a bar declared here."""
from harness.suite import Bar, Case, Recipe, RunSpec

SUITE = "own"
HARNESS_CASES = [
    Case("vit_digits", RunSpec(model="own_vit.model:vit_digits", dataset="digits", image_size=32,
                               recipe=Recipe(epochs=15, batch_size=32, lr=2e-3, optimizer="adamw",
                                             augment="none", warmup_epochs=1,
                                             eval_batch_size=512), label="own ViT on digits")),
]
HARNESS_BARS = [
    Bar("own/vit_digits/state0/accuracy", "State 0 accuracy of the project's own ViT on digits",
        ">=", 85.0, "%"),
]


def test_own_vit_learns_digits(harness, case):
    record = harness.run(case)
    state = record.state(0)
    harness.check_epoch("own/vit_digits/state0/accuracy", state.best_epoch,
                        {"run_id": record.run_id, "model": record.model, "epochs": len(state.epochs)})
