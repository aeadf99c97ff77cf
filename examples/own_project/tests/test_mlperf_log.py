"""(c) A real MLPerf ResNet-50 log (ImageNet) judged against the top-1 bar declared in this
project's pyproject.toml (harness_bars), not in any suite."""


def test_mlperf_resnet50_reaches_the_target(harness):
    record = harness.read_log("logs/mlperf_v1.0_google_tpu-v4-128_resnet_result_0.txt")
    best = record.state(0).best_epoch
    harness.check_epoch("imagenet/resnet50/top1", best,
                        {"dataset": "imagenet (the log names none)", "source": record.source,
                         "evaluations": len(record.state(0).epochs)})
