"""VGG16-BN trunk and the two-headed main network (docs/method.md §2)."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

VGG16_BLOCKS: tuple[tuple[int, ...], ...] = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))


def vgg16_trunk(width: float = 1.0) -> nn.Sequential:
    """3x3 conv + BN + ReLU blocks, MaxPool(2) after each: 32x32 input -> flat feature."""
    layers: list[nn.Module] = []
    c_in = 3
    for block in VGG16_BLOCKS:
        for channels in block:
            c_out = max(1, round(channels * width))
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
            c_in = c_out
        layers.append(nn.MaxPool2d(2))
    layers.append(nn.Flatten())
    return nn.Sequential(*layers)


def trunk_dim(width: float) -> int:
    return max(1, round(VGG16_BLOCKS[-1][-1] * width))


def mlp_head(dim: int, out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(dim, dim), nn.ReLU(inplace=True), nn.Linear(dim, out))


def init_weights(module: nn.Module, kind: Literal["uniform", "normal"] = "uniform") -> None:
    """Xavier for conv/linear with zero bias, BN weight 1 / bias 0 (docs/method.md §2, §4)."""
    xavier = nn.init.xavier_uniform_ if kind == "uniform" else nn.init.xavier_normal_
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            xavier(m.weight)
            if m.bias is not None:  # every layer here has one
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class AuxNet(nn.Module):
    """Shared trunk, a primary head (C logits) and an auxiliary head (K = psi*C logits)."""

    def __init__(self, num_classes: int, num_aux: int, width: float = 1.0) -> None:
        super().__init__()
        dim = trunk_dim(width)
        self.trunk = vgg16_trunk(width)
        self.primary = mlp_head(dim, num_classes)
        self.auxiliary = mlp_head(dim, num_aux)
        init_weights(self)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h = self.trunk(x)
        return self.primary(h), self.auxiliary(h)


@torch.no_grad()
def predict(model: nn.Module, x: Tensor, batch_size: int, prepare) -> Tensor:
    """Primary-class predictions in eval mode; `prepare` turns uint8 images into inputs."""
    was_training = model.training
    model.eval()
    preds = torch.cat([model(prepare(x[i : i + batch_size]))[0].argmax(1) for i in range(0, len(x), batch_size)])
    model.train(was_training)
    return preds
