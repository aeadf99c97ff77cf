"""The lab's model: a small CIFAR-style CNN (conv-BatchNorm-ReLU stages, global pooling, a
linear classifier)."""
import torch.nn as nn


def _stage(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class LabNet(nn.Module):
    def __init__(self, num_classes: int = 10, in_chans: int = 3, widths=(16, 32, 64)) -> None:
        super().__init__()
        stages, cin = [], in_chans
        for i, width in enumerate(widths):
            stages.append(_stage(cin, width, 1 if i == 0 else 2))
            cin = width
        self.features = nn.Sequential(*stages, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
        return self.fc(self.features(x))


def labnet(num_classes: int = 10, in_chans: int = 3) -> LabNet:
    return LabNet(num_classes=num_classes, in_chans=in_chans)
