#!/usr/bin/python3
"""The model zoo's PyTorch twins (nn/zoo.h): each network of ct_model_parse written as the torch
module whose state_dict names and shapes it has, built small, seeded, saved and run.

    /usr/bin/python3 tests/reference/gen_zoo.py > tests/reference/zoo_ref.h

writes tests/reference/zoo/<case>.safetensors (the state_dict, by hand with struct + json as in
gen_checkpoint.py: the `safetensors` package is not installed here) and prints a header with, per
case, the spec, input shape and classes, the parameter count, every state_dict name with its shape,
and the eval-mode logits on a fixed input (float64 from the float32 weights).
tests/nn/test_zoo.c (zoo/torch_parity) builds the same spec with ct_model_parse, loads the file with
ct_model_load (every tensor present and no other, shapes equal) and compares the logits.

Weights are the twin's init plus N(0, 0.05²) noise and batch norm has run two training batches,
so that no parameter or running statistic is left at a constant (zero biases, unit scales) that
would hide a name or layout mismatch.
"""
import json
import os
import struct
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
OUT_DIR = os.path.join(HERE, "zoo")

NAMES = {torch.float32: "F32", torch.int64: "I64"}


def write_safetensors(path, tensors, metadata=None):
    """safetensors.torch.save_file's layout: by dtype size (largest first) then name, compact JSON
    header with __metadata__ first, padded with spaces to a multiple of 8 bytes."""
    assert sys.byteorder == "little"
    order = sorted(tensors, key=lambda k: (-tensors[k].element_size(), k))
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name in order:
        t = tensors[name].detach().contiguous().cpu()
        blob = t.numpy().tobytes()
        header[name] = {"dtype": NAMES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


# ---- the twins ------------------------------------------------------------------------------------
ACT = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh}


class MLP(nn.Module):
    """mlp:hidden=[...],activation=A,dropout=p: flatten, then fc_i + activation (+ dropout) per
    hidden width, then the last fc to the classes. Names fc1..fcK."""

    def __init__(self, in_features, hidden, classes, activation="relu", dropout=0.0):
        super().__init__()
        dims = [in_features] + list(hidden) + [classes]
        self.n = len(dims) - 1
        for i in range(self.n):
            setattr(self, "fc%d" % (i + 1), nn.Linear(dims[i], dims[i + 1]))
        self.act = ACT[activation]()
        self.drop = nn.Dropout(dropout)

    def forward(self, x):
        x = x.flatten(1)
        for i in range(1, self.n):
            x = self.drop(self.act(getattr(self, "fc%d" % i)(x)))
        return getattr(self, "fc%d" % self.n)(x)


class LeNet5(nn.Module):
    """lenet5:activation=relu|tanh,pool=max|avg,padding=p (conv1's padding; 2 for 28x28)."""

    def __init__(self, channels, size, classes, activation="relu", pool="max", padding=2):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, 6, 5, padding=padding)
        self.conv2 = nn.Conv2d(6, 16, 5)
        h, w = [((s + 2 * padding - 4) // 2 - 4) // 2 for s in size]
        self.fc1 = nn.Linear(16 * h * w, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, classes)
        self.act = torch.relu if activation == "relu" else torch.tanh
        self.pool = F.max_pool2d if pool == "max" else F.avg_pool2d

    def forward(self, x):
        x = self.pool(self.act(self.conv1(x)), 2)
        x = self.pool(self.act(self.conv2(x)), 2)
        x = x.flatten(1)
        return self.fc3(self.act(self.fc2(self.act(self.fc1(x)))))


class VGGSmall(nn.Module):
    """vgg_small:width=w: examples/cifar10_cnn.c's net (bench/w3_torch.py's)."""

    def __init__(self, channels, size, classes, width=32):
        super().__init__()
        c = channels
        for i in range(1, 4):
            out = width << (i - 1)
            setattr(self, "conv%d" % i, nn.Conv2d(c, out, 3, padding=1, bias=False))
            setattr(self, "bn%d" % i, nn.BatchNorm2d(out))
            c = out
        h, w = size[0] // 8, size[1] // 8
        self.fc = nn.Linear(c * h * w, classes)

    def forward(self, x):
        for i in range(1, 4):
            x = F.max_pool2d(F.relu(getattr(self, "bn%d" % i)(getattr(self, "conv%d" % i)(x))), 2)
        return self.fc(x.flatten(1))


class BasicBlock(nn.Module):
    """The CIFAR ResNet block with option A shortcuts (akamaster/pytorch_resnet_cifar10)."""

    def __init__(self, in_planes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.stride, self.in_planes, self.planes = stride, in_planes, planes

    def shortcut(self, x):
        if self.stride == 1 and self.in_planes == self.planes:
            return x
        # option A: x[:, :, ::2, ::2] zero-padded in channels; for an even width this is
        # akamaster's F.pad(..., (0, 0, 0, 0, planes // 4, planes // 4))
        front = (self.planes - self.in_planes) // 2
        back = self.planes - self.in_planes - front
        return F.pad(x[:, :, ::self.stride, ::self.stride], (0, 0, 0, 0, front, back))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    """resnet{20,32,44,56,110}:width=w, He et al. 2016 sec. 4.2; akamaster's names and init."""

    def __init__(self, channels, depth, classes, width=16):
        super().__init__()
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(channels, width, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        c = width
        for stage in range(1, 4):
            planes = width << (stage - 1)
            blocks = []
            for i in range(n):
                blocks.append(BasicBlock(c, planes, 2 if i == 0 and stage > 1 else 1))
                c = planes
            setattr(self, "layer%d" % stage, nn.Sequential(*blocks))
        self.linear = nn.Linear(c, classes)
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                nn.init.kaiming_normal_(m.weight)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        out = out.mean((2, 3))  # global average pool (akamaster: avg_pool2d over the square map)
        return self.linear(out)


class ViT(nn.Module):
    """vit_tiny:patch=p,dim=E,depth=D,heads=H,mlp_ratio=r,pool=cls|mean."""

    def __init__(self, channels, size, classes, patch=4, dim=192, depth=6, heads=3, mlp_ratio=4.0, pool="cls"):
        super().__init__()
        tokens = (size[0] // patch) * (size[1] // patch)
        self.patch_embed = nn.Conv2d(channels, dim, patch, stride=patch)
        self.pool = pool
        if pool == "cls":
            self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
            tokens += 1
        self.pos_embed = nn.Parameter(torch.zeros(1, tokens, dim))
        nn.init.normal_(self.pos_embed, std=0.02)
        self.layers = nn.ModuleList([
            nn.TransformerEncoderLayer(dim, heads, int(dim * mlp_ratio), dropout=0.0, activation="gelu",
                                       batch_first=True, norm_first=True) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, classes)

    def forward(self, x):
        x = self.patch_embed(x).flatten(2).transpose(1, 2)
        if self.pool == "cls":
            x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], 1)
        x = x + self.pos_embed
        for layer in self.layers:
            x = layer(x)
        x = self.norm(x)
        x = x[:, 0] if self.pool == "cls" else x.mean(1)
        return self.head(x)


# ---- the cases: small configurations (each file well under 100 KB) --------------------------------
CASES = [
    # name, spec, input shape, classes, constructor
    ("mlp", "mlp:hidden=[16,12],activation=tanh", (1, 6, 6), 5,
     lambda: MLP(36, [16, 12], 5, "tanh")),
    ("mlp_gelu", "mlp:hidden=20,activation=gelu,dropout=0.25", (10,), 3,
     lambda: MLP(10, [20], 3, "gelu", 0.25)),
    ("lenet5", "lenet5", (3, 12, 12), 10,
     lambda: LeNet5(3, (12, 12), 10)),
    ("lenet5_classic", "lenet5:activation=tanh,pool=avg,padding=0", (1, 16, 18), 4,
     lambda: LeNet5(1, (16, 18), 4, "tanh", "avg", 0)),
    ("vgg_small", "vgg_small:width=4", (3, 8, 8), 10,
     lambda: VGGSmall(3, (8, 8), 10, 4)),
    ("resnet20", "resnet20:width=4", (3, 8, 8), 10,
     lambda: ResNet(3, 20, 10, 4)),
    ("resnet20_odd", "resnet20:width=3", (2, 7, 5), 3,
     lambda: ResNet(2, 20, 3, 3)),
    ("vit_tiny", "vit_tiny:patch=4,dim=16,depth=2,heads=2,mlp_ratio=2", (3, 8, 8), 10,
     lambda: ViT(3, (8, 8), 10, 4, 16, 2, 2, 2.0, "cls")),
    ("vit_mean", "vit_tiny:patch=2,dim=12,depth=1,heads=3,mlp_ratio=1.5,pool=mean", (1, 4, 6), 4,
     lambda: ViT(1, (4, 6), 4, 2, 12, 1, 3, 1.5, "mean")),
]
BATCH = 3

# Default configurations at their usual sizes: only the parameter counts are kept.
DEFAULTS = [
    ("mlp", (1, 28, 28), 10, lambda: MLP(784, [512, 256], 10)),
    ("lenet5", (1, 28, 28), 10, lambda: LeNet5(1, (28, 28), 10)),
    ("lenet5", (3, 32, 32), 10, lambda: LeNet5(3, (32, 32), 10)),
    ("lenet5:padding=0", (3, 32, 32), 10, lambda: LeNet5(3, (32, 32), 10, padding=0)),
    ("vgg_small", (3, 32, 32), 10, lambda: VGGSmall(3, (32, 32), 10)),
    ("vgg_small", (1, 28, 28), 10, lambda: VGGSmall(1, (28, 28), 10)),
    ("resnet20", (3, 32, 32), 10, lambda: ResNet(3, 20, 10)),
    ("resnet32", (3, 32, 32), 10, lambda: ResNet(3, 32, 10)),
    ("resnet44", (3, 32, 32), 10, lambda: ResNet(3, 44, 10)),
    ("resnet56", (3, 32, 32), 100, lambda: ResNet(3, 56, 100)),
    ("resnet110", (3, 32, 32), 10, lambda: ResNet(3, 110, 10)),
    ("vit_tiny", (3, 32, 32), 10, lambda: ViT(3, (32, 32), 10)),
    ("vit_tiny:pool=mean,patch=7", (1, 28, 28), 10, lambda: ViT(1, (28, 28), 10, patch=7, pool="mean")),
]


def zoo_input(case, shape):
    """The fixed input, computed the same way by tests/nn/test_zoo.c (zoo_input): exact in float32."""
    n = BATCH
    for d in shape:
        n *= d
    return torch.tensor([((i * 37 + 11 * case) % 101 - 50) / 32.0 for i in range(n)]).reshape(BATCH, *shape)


def reals(xs, indent="        "):
    vals = [repr(float(x)) for x in xs]
    rows = [", ".join(vals[i:i + 4]) for i in range(0, len(vals), 4)]
    return "{\n" + indent + (",\n" + indent).join(rows) + "}"


def generate():
    os.makedirs(OUT_DIR, exist_ok=True)
    p = print
    p("/* tests/reference/zoo_ref.h — GENERATED by tests/reference/gen_zoo.py with PyTorch %s." % torch.__version__)
    p(" * Do not edit; regenerate (this also rewrites tests/reference/zoo/<case>.safetensors):")
    p(" *     /usr/bin/python3 tests/reference/gen_zoo.py > tests/reference/zoo_ref.h")
    p(" * Per case: the spec, input (C, H, W) or (D), classes, the twin's parameter count, its state_dict")
    p(" * names and shapes, and the eval-mode logits in float64 on the input of zoo_input (N = %d): for" % BATCH)
    p(" * case k, element i is ((37·i + 11·k) mod 101 − 50) / 32. */")
    p("#ifndef CTAPE_TESTS_ZOO_REF_H")
    p("#define CTAPE_TESTS_ZOO_REF_H\n")
    p("typedef struct {")
    p("    const char *name, *spec;")
    p("    int input_ndim, input[3], classes;")
    p("    long params;")
    p("    int n_tensors;")
    p("    const char *const *tensors; /* \"name (d0, d1, ...)\" */")
    p("    const double *logits;")
    p("} zoo_case;\n")
    p("#define ZOO_BATCH %d\n" % BATCH)
    for i, (name, spec, shape, classes, make) in enumerate(CASES):
        torch.manual_seed(100 + i)
        net = make()
        with torch.no_grad():
            for t in net.parameters():
                t.add_(0.05 * torch.randn_like(t))
        net.train()
        with torch.no_grad():
            for _ in range(2):  # batch norm's running statistics move away from 0 and 1
                net(torch.randn(4, *shape))
        net.eval()
        state = net.state_dict()
        write_safetensors(os.path.join(OUT_DIR, name + ".safetensors"), state, {"format": "pt"})
        x = zoo_input(i, shape)
        # float64 with gradients on: no fused inference path of TransformerEncoderLayer
        logits = net.double()(x.double()).detach()
        params = sum(t.numel() for t in net.parameters())
        tensors = ["%s (%s)" % (k, ", ".join(str(d) for d in v.shape)) for k, v in state.items()]
        p("/* %s: %s on %s, %d classes: %d parameters */" % (name, spec, shape, classes, params))
        p("static const char *const zoo_%s_tensors[] = {" % name)
        for t in tensors:
            p('    "%s",' % t)
        p("};")
        p("static const double zoo_%s_logits[] = %s;\n" % (name, reals(logits.flatten().tolist(), "    ")))
    p("static const zoo_case zoo_cases[] = {")
    for name, spec, shape, classes, make in CASES:
        dims = list(shape) + [0] * (3 - len(shape))
        p('    {"%s", "%s", %d, {%s}, %d, %d, %d, zoo_%s_tensors, zoo_%s_logits},' %
          (name, spec, len(shape), ", ".join(map(str, dims)), classes,
           sum(t.numel() for t in make().parameters()), len(make().state_dict()), name, name))
    p("};\n")
    p("/* Parameter counts of the twins at their default configurations. */")
    p("typedef struct {")
    p("    const char *spec;")
    p("    int input_ndim, input[3], classes;")
    p("    long params;")
    p("} zoo_size;\n")
    p("static const zoo_size zoo_defaults[] = {")
    for spec, shape, classes, make in DEFAULTS:
        dims = list(shape) + [0] * (3 - len(shape))
        p('    {"%s", %d, {%s}, %d, %d},' % (spec, len(shape), ", ".join(map(str, dims)), classes,
                                            sum(t.numel() for t in make().parameters())))
    p("};\n")
    p("#endif")


if __name__ == "__main__":
    generate()
