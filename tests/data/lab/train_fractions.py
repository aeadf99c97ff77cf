"""Another lab's training script as its log looks: the arguments as JSON, one line per epoch
with the validation top-1 as a fraction. It trains nothing (what the harness is tested on is how
it reads a real command's output); each run appends a line to ran.txt in its working folder."""
import json
import sys

ACCURACY = (0.5012, 0.7930, 0.8712, 0.8650)

epochs = int(sys.argv[1]) if len(sys.argv) > 1 else 4
with open("ran.txt", "a", encoding="utf-8") as runs:
    runs.write("ran\n")
print("args: " + json.dumps({"lr": 0.1, "dataset": "cifar10", "model": "resnet20", "epochs": epochs}))
for epoch in range(epochs):
    print(f"[ep {epoch:03d}] loss={1.5 / (epoch + 1):.4f} val_top1={ACCURACY[epoch % 4]:.4f} (n=600)")
