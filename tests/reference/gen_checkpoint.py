#!/usr/bin/python3
"""safetensors interop between ctape and PyTorch, both directions, without the `safetensors`
package (it is not installed here): files are written and read by hand with struct + json,
following the format (8-byte little-endian header length, JSON header, raw little-endian data).

The model, the same in both frameworks:

    fc1 = Linear(4, 8); fc2 = Linear(8, 3)
    buffers: "scale" (3,) float32, "steps" () int64 (a count, like batch norm's num_batches_tracked)
    forward(x) = fc2(relu(fc1(x))) * scale

PyTorch -> ctape (what `make test` checks, without PyTorch):

    /usr/bin/python3 tests/reference/gen_checkpoint.py > tests/reference/checkpoint_ref.h

writes tests/reference/torch_mlp.safetensors (the state_dict of a seeded torch model: F32
weights, an I64 buffer, torch's own key order, {"format": "pt"}), and prints a header with that
file's bytes, a fixed input and the model's output on it (float64 from the float32 weights).
tests/nn/test_checkpoint.c (checkpoint/torch_file_loads_and_matches) loads those bytes with
ct_model_load into the ctape model and compares the outputs.

ctape -> PyTorch (run by hand after changing ct_model_save; the result is reported in the commit):

    make BUILDROOT=/tmp/b && CTAPE_WRITE_CHECKPOINT_REFERENCE=tests/reference \\
        /tmp/b/tests/ctape_tests --group checkpoint ctape_file
    /usr/bin/python3 tests/reference/gen_checkpoint.py --verify

The first command (the test checkpoint/ctape_file_is_current, run from the repository root) saves
the ctape model with ct_model_save as tests/reference/ctape_mlp.safetensors, and the input and
ctape's output as tests/reference/ctape_mlp_io.safetensors (ct_safetensors_write). Without the
variable the same test checks that ct_model_save still writes exactly the committed bytes.
--verify reads both files with read_safetensors below (plain json/struct), loads the first into
the torch model with load_state_dict(strict=True), and checks that torch's output on the input
matches ctape's, and that the layout is the reference one (header padded to 8 bytes, offsets
contiguous from 0, metadata format=pt).
"""
import json
import os
import struct
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
TORCH_FILE = os.path.join(HERE, "torch_mlp.safetensors")
CTAPE_FILE = os.path.join(HERE, "ctape_mlp.safetensors")
CTAPE_IO_FILE = os.path.join(HERE, "ctape_mlp_io.safetensors")

DTYPES = {  # safetensors name -> torch dtype (all little endian on disk)
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8,
    "U8": torch.uint8, "BOOL": torch.bool,
}
NAMES = {v: k for k, v in DTYPES.items()}


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(4, 8)
        self.fc2 = torch.nn.Linear(8, 3)
        self.register_buffer("scale", torch.tensor([1.5, -0.75, 2.0]))
        self.register_buffer("steps", torch.tensor(7))  # int64, shape ()

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x))) * self.scale


def write_safetensors(path, tensors, metadata=None):
    """What safetensors.torch.save_file writes: tensors ordered by dtype size (largest first)
    then name, the header compact JSON with __metadata__ first, padded with spaces to a multiple
    of 8 bytes."""
    assert sys.byteorder == "little"
    order = sorted(tensors, key=lambda k: (-tensors[k].element_size(), k))
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name in order:
        t = tensors[name].detach().contiguous().cpu()
        blob = t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.view(torch.int16).numpy().tobytes()
        header[name] = {"dtype": NAMES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def read_safetensors(path):
    """Plain json/struct reader: returns ({name: tensor}, metadata, layout facts). Checks the
    things a careful reader must: header length within the file, offsets in range and
    consistent with dtype and shape."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    assert 8 + n <= len(raw), "header length past the end of the file"
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    data = raw[8 + n:]
    metadata = header.pop("__metadata__", {})
    tensors, spans = {}, []
    for name, info in header.items():
        assert set(info) == {"dtype", "shape", "data_offsets"}, (name, info)
        dtype, shape, (b, e) = DTYPES[info["dtype"]], info["shape"], info["data_offsets"]
        count = 1
        for d in shape:
            count *= d
        assert 0 <= b <= e <= len(data), (name, b, e, len(data))
        assert e - b == count * torch.tensor([], dtype=dtype).element_size(), (name, shape, b, e)
        if dtype == torch.bfloat16:
            t = torch.frombuffer(bytearray(data[b:e]), dtype=torch.int16).view(torch.bfloat16)
        else:
            t = torch.frombuffer(bytearray(data[b:e]), dtype=dtype) if e > b else torch.empty(0, dtype=dtype)
        tensors[name] = t.reshape(shape)
        spans.append((b, e, name))
    spans.sort()
    contiguous = all(spans[i][1] == spans[i + 1][0] for i in range(len(spans) - 1)) and \
        (not spans or (spans[0][0] == 0 and spans[-1][1] == len(data)))
    layout = {"header_len": n, "padded": (8 + n) % 8 == 0, "contiguous": contiguous,
              "order": [name for _, _, name in spans], "keys": list(header)}
    return tensors, metadata, layout


def reals(xs, indent="    "):
    vals = [repr(float(x)) for x in xs]
    rows = [", ".join(vals[i:i + 4]) for i in range(0, len(vals), 4)]
    return "{\n" + indent + (",\n" + indent).join(rows) + "}"


def generate():
    torch.manual_seed(1234)
    net = Net()
    x = torch.randn(5, 4)  # float32 values; exact in both ctape builds
    write_safetensors(TORCH_FILE, net.state_dict(), {"format": "pt"})
    with torch.no_grad():
        want = net.double()(x.double())
    blob = open(TORCH_FILE, "rb").read()
    # The file must read back into an identical model (our reader against our writer).
    back, meta, layout = read_safetensors(TORCH_FILE)
    fresh = Net()
    fresh.load_state_dict(back, strict=True)
    assert layout["padded"] and layout["contiguous"] and meta == {"format": "pt"}

    p = print
    p("/* tests/reference/checkpoint_ref.h — GENERATED by tests/reference/gen_checkpoint.py with PyTorch %s." % torch.__version__)
    p(" * Do not edit; regenerate (this also rewrites torch_mlp.safetensors):")
    p(" *     /usr/bin/python3 tests/reference/gen_checkpoint.py > tests/reference/checkpoint_ref.h")
    p(" * ckpt_torch_file holds the bytes of torch_mlp.safetensors: the state_dict of")
    p(" *     fc1 = Linear(4, 8); fc2 = Linear(8, 3); buffers scale (3,) F32 and steps () I64;")
    p(" *     forward(x) = fc2(relu(fc1(x))) * scale")
    p(" * in safetensors.torch's layout (largest dtype first, then by name) with {\"format\": \"pt\"}.")
    p(" * ckpt_ref_out is the forward on ckpt_ref_in, in float64 from the float32 weights. */")
    p("#ifndef CTAPE_TESTS_CHECKPOINT_REF_H")
    p("#define CTAPE_TESTS_CHECKPOINT_REF_H\n")
    p("#define CKPT_REF_N %d" % x.shape[0])
    p("#define CKPT_REF_IN %d" % x.shape[1])
    p("#define CKPT_REF_HIDDEN %d" % net.fc1.out_features)
    p("#define CKPT_REF_OUT %d" % want.shape[1])
    p("#define CKPT_REF_STEPS %d" % int(net.steps))
    p("static const double ckpt_ref_in[CKPT_REF_N * CKPT_REF_IN] = %s;" % reals(x.double().flatten().tolist()))
    p("static const double ckpt_ref_out[CKPT_REF_N * CKPT_REF_OUT] = %s;" % reals(want.flatten().tolist()))
    p("static const double ckpt_ref_fc1_weight[CKPT_REF_HIDDEN * CKPT_REF_IN] = %s;" %
      reals(net.fc1.weight.double().flatten().tolist()))
    p("static const unsigned char ckpt_torch_file[%d] = {" % len(blob))
    for i in range(0, len(blob), 16):
        p("    " + ", ".join("0x%02x" % c for c in blob[i:i + 16]) + ",")
    p("};\n")
    p("#endif")


def verify():
    """ctape -> PyTorch: the committed ctape files load strictly into torch and agree."""
    tensors, meta, layout = read_safetensors(CTAPE_FILE)
    io, _, _ = read_safetensors(CTAPE_IO_FILE)
    print("ctape file: %d tensors %s, metadata %s" % (len(tensors), layout["order"], meta))
    assert meta.get("format") == "pt", meta
    assert layout["padded"], "header not padded to a multiple of 8"
    assert layout["contiguous"], "data not contiguous from offset 0"
    assert layout["keys"] == sorted(layout["keys"]) == layout["order"], "tensors not sorted by name"
    net = Net()
    result = net.load_state_dict(tensors, strict=True)
    print("load_state_dict(strict=True): %s" % (result,))
    assert int(net.steps) == int(tensors["steps"]), "steps buffer"
    with torch.no_grad():
        got = net(io["input"])
    err = (got.double() - io["output"].double()).abs().max().item()
    print("torch output vs ctape output: max |diff| = %.3g over %d values" % (err, got.numel()))
    assert err <= 1e-5, "outputs differ"
    # The same tensors written by the hand-made reference writer give the same bytes.
    tmp = CTAPE_FILE + ".check"
    write_safetensors(tmp, {k: v for k, v in tensors.items()}, meta)
    same = open(tmp, "rb").read() == open(CTAPE_FILE, "rb").read()
    os.unlink(tmp)
    print("byte-identical to this script's writer for the same tensors: %s" % same)
    assert same
    print("OK")


if __name__ == "__main__":
    if sys.argv[1:] == ["--verify"]:
        verify()
    elif not sys.argv[1:]:
        generate()
    else:
        sys.exit("usage: gen_checkpoint.py [--verify]")
