#!/usr/bin/python3
"""Reference values for ctape's attention: the fused ct_attention op, multi-head attention
(torch.nn.MultiheadAttention, batch_first) and the pre-LN transformer block, from PyTorch.

Prints a C header with, per case, the inputs, the parameters (by their ctape names), a cotangent,
the output and the gradients d<cotangent, output>/d(inputs and parameters), all in float64.

    /usr/bin/python3 tests/reference/gen_attention.py > tests/reference/attention_ref.h

Inputs and parameters are rounded to float32 values first, so the float32 build reads exactly
what PyTorch saw and only its own arithmetic differs. `make test` never runs this script.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(20240612)
torch.set_default_dtype(torch.float64)


def f32(t):
    return t.float().double()


def rand(*shape, scale=1.0):
    return f32(torch.randn(*shape) * scale)


def padding(B, S, n_pad):
    """key_padding (B, S) bool: batch b ignores its last n_pad[b] keys (True = ignore)."""
    pad = torch.zeros(B, S, dtype=torch.bool)
    for b, n in enumerate(n_pad):
        if n:
            pad[b, S - n:] = True
    return pad


def causal_mask(L, S):
    # the mask PyTorch users build: −inf above the diagonal
    return torch.triu(torch.full((L, S), float("-inf")), diagonal=1)


# ---- ct_attention: q (B,H,L,d), k (B,H,S,d), v (B,H,S,dv) ----------------------------------
def sdpa_case(name, B, H, L, S, d, dv, causal=False, n_pad=None):
    q, k, v = rand(B, H, L, d), rand(B, H, S, d), rand(B, H, S, dv)
    pad = padding(B, S, n_pad) if n_pad else None
    qg, kg, vg = (t.clone().requires_grad_(True) for t in (q, k, v))
    z = qg @ kg.transpose(-1, -2) / math.sqrt(d)
    if causal:
        z = z + causal_mask(L, S)
    if pad is not None:
        z = z.masked_fill(pad[:, None, None, :], float("-inf"))
    out = torch.softmax(z, dim=-1) @ vg
    cot = rand(*out.shape)
    (out * cot).sum().backward()
    return dict(name=name, dims=(B, H, L, S, d, dv), causal=int(causal), pad=pad,
                q=q, k=k, v=v, cot=cot, out=out.detach(), dq=qg.grad, dk=kg.grad, dv=vg.grad)


# ---- multi-head attention and the transformer block ----------------------------------------
class Block(nn.Module):
    """The pre-LN block of nn/nn.h, spelled out: x + attn(ln1(x)), then x + fc2(gelu(fc1(ln2(x))))."""

    def __init__(self, E, H, hidden, causal):
        super().__init__()
        self.ln1 = nn.LayerNorm(E)
        self.attn = nn.MultiheadAttention(E, H, batch_first=True)
        self.ln2 = nn.LayerNorm(E)
        self.fc1 = nn.Linear(E, hidden)
        self.fc2 = nn.Linear(hidden, E)
        self.causal = causal

    def forward(self, x):
        L = x.shape[1]
        mask = causal_mask(L, L) if self.causal else None
        h = self.ln1(x)
        x = x + self.attn(h, h, h, attn_mask=mask, need_weights=False)[0]
        return x + self.fc2(F.gelu(self.fc1(self.ln2(x))))


def randomize(module):
    """float32-exact random parameters, biases and LayerNorm affine included (not the defaults)."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            scale = 0.5 if p.dim() > 1 else 0.2
            shift = 1.0 if name.endswith(("ln1.weight", "ln2.weight")) else 0.0
            p.copy_(f32(torch.randn(*p.shape) * scale + shift))


def module_case(name, prefix, module, query, key=None, value=None, attn_mask=None, pad=None):
    is_self = key is None
    inputs = [query.clone().requires_grad_(True)]
    if not is_self:
        k = key.clone().requires_grad_(True)
        inputs += [k, k if value is key else value.clone().requires_grad_(True)]
    if isinstance(module, nn.MultiheadAttention):
        q = inputs[0]
        k, v = (q, q) if is_self else (inputs[1], inputs[2])
        out = module(q, k, v, key_padding_mask=pad, attn_mask=attn_mask, need_weights=False)[0]
    else:
        out = module(inputs[0])
    cot = rand(*out.shape)
    (out * cot).sum().backward()
    params = [(prefix + n, p.detach().clone(), p.grad.clone()) for n, p in module.named_parameters()]
    return dict(name=name, query=query, key=key, value=value, pad=pad, params=params, cot=cot,
                out=out.detach(), grads=[t.grad for t in inputs])


def mha_case(name, B, L, S, E, H, causal=False, n_pad=None, cross=False, shared_kv=False):
    """cross: key and value differ from the query; shared_kv: one memory tensor is both."""
    mha = nn.MultiheadAttention(E, H, batch_first=True)
    randomize(mha)
    query = rand(B, L, E)
    key, value = (rand(B, S, E), rand(B, S, E)) if cross else (None, None)
    if shared_kv:
        value = key
    pad = padding(B, S, n_pad) if n_pad else None
    mask = causal_mask(L, S) if causal else None
    c = module_case(name, "attn.", mha, query, key, value, attn_mask=mask, pad=pad)
    c.update(B=B, L=L, S=S, E=E, H=H, hidden=0, causal=int(causal))
    return c


def block_case(name, B, L, E, H, hidden, causal):
    block = Block(E, H, hidden, causal)
    randomize(block)
    c = module_case(name, "blk.", block, rand(B, L, E))
    c.update(B=B, L=L, S=L, E=E, H=H, hidden=hidden, causal=int(causal))
    return c


sdpa_cases = [
    sdpa_case("plain", 1, 2, 3, 3, 4, 4),
    sdpa_case("causal", 1, 2, 4, 4, 4, 3, causal=True),
    sdpa_case("padding", 2, 1, 3, 5, 4, 4, n_pad=[0, 2]),
    sdpa_case("causal_padding", 2, 2, 4, 4, 2, 3, causal=True, n_pad=[1, 0]),
    sdpa_case("cross_L_ne_S_dv_ne_d", 1, 2, 3, 6, 5, 2),
    sdpa_case("causal_L_gt_S", 1, 1, 5, 3, 4, 4, causal=True),
    sdpa_case("causal_L_lt_S_padding", 2, 1, 3, 5, 4, 3, causal=True, n_pad=[0, 1]),
]

module_cases = [
    mha_case("mha_self", 2, 4, 4, 6, 2),
    mha_case("mha_self_causal_padding", 2, 5, 5, 4, 2, causal=True, n_pad=[0, 2]),
    mha_case("mha_self_one_head", 1, 3, 3, 4, 1),
    mha_case("mha_cross_padding", 2, 3, 5, 6, 3, n_pad=[1, 3], cross=True),
    mha_case("mha_cross_causal", 1, 4, 5, 4, 2, causal=True, cross=True),
    mha_case("mha_cross_shared_kv_padding", 2, 3, 4, 6, 2, n_pad=[0, 1], cross=True, shared_kv=True),
    block_case("block", 2, 4, 6, 2, 8, causal=False),
    block_case("block_causal", 1, 5, 4, 2, 8, causal=True),
]


# ---- C output -------------------------------------------------------------------------------
def reals(t, exact32=False):
    """Inputs and parameters (float32 values) as float literals, which C reads exactly; results
    with 13 significant digits, far below the float64 tolerance."""
    fmt = "%.9gf" if exact32 else "%.13g"
    vals = [fmt % x for x in t.flatten().tolist()]
    if exact32:
        assert all(float(torch.tensor(float(v[:-1]), dtype=torch.float32)) == x
                   for v, x in zip(vals, t.flatten().tolist()))
    rows = [", ".join(vals[i:i + 6]) for i in range(0, len(vals), 6)]
    return "{\n    " + ",\n    ".join(rows) + "}" if len(rows) > 1 else "{" + ", ".join(vals) + "}"


def bytes_(pad):
    return "{" + ", ".join(str(int(x)) for x in pad.flatten().tolist()) + "}"


def array(name, t, exact32=False):
    print("static const double %s[] = %s;" % (name, reals(t, exact32)))


print("/* tests/reference/attention_ref.h — GENERATED by tests/reference/gen_attention.py with")
print(" * PyTorch %s (float64). Do not edit; regenerate:" % torch.__version__)
print(" *     /usr/bin/python3 tests/reference/gen_attention.py > tests/reference/attention_ref.h")
print(" * Gradients are d<cotangent, out>/d(each input or parameter). */")
print("#ifndef CTAPE_TESTS_ATTENTION_REF_H")
print("#define CTAPE_TESTS_ATTENTION_REF_H\n")
print("#include <stdint.h>\n")
print("/* ct_attention: softmax(q·kᵀ/√d + mask)·v with q (B,H,L,d), k (B,H,S,d), v (B,H,S,dv). */")
print("typedef struct {")
print("    const char *name;")
print("    int B, H, L, S, d, dv, causal;")
print("    const uint8_t *key_padding; /* B·S, nonzero = ignore; or NULL */")
print("    const double *q, *k, *v, *cotangent, *out, *grad_q, *grad_k, *grad_v;")
print("} sdpa_ref_case;\n")
for i, c in enumerate(sdpa_cases):
    p = "sdpa_ref_%d_" % i
    if c["pad"] is not None:
        print("static const uint8_t %spad[] = %s;" % (p, bytes_(c["pad"])))
    for key in ("q", "k", "v", "cot", "out", "dq", "dk", "dv"):
        array(p + key, c[key], exact32=key in ("q", "k", "v", "cot"))
    print()
print("static const sdpa_ref_case sdpa_ref_cases[] = {")
for i, c in enumerate(sdpa_cases):
    p = "sdpa_ref_%d_" % i
    pad = p + "pad" if c["pad"] is not None else "NULL"
    print('    {"%s", %s, %d, %s, %sq, %sk, %sv, %scot, %sout, %sdq, %sdk, %sdv},'
          % (c["name"], ", ".join(map(str, c["dims"])), c["causal"], pad, p, p, p, p, p, p, p, p))
print("};")
print("#define SDPA_REF_COUNT %d\n" % len(sdpa_cases))

print("/* A parameter by its ctape name, its value and its gradient. */")
print("typedef struct {")
print("    const char *name;")
print("    int size;")
print("    const double *value, *grad;")
print("} attn_ref_param;\n")
print("/* Multi-head attention \"attn\" (hidden = 0) or transformer block \"blk\" (hidden > 0).")
print(" * Self-attention when key == NULL: query is x, used as query, key and value, and dquery is")
print(" * the whole gradient of x. When value == key, one tensor is both (and dkey its gradient). */")
print("typedef struct {")
print("    const char *name;")
print("    int B, L, S, E, H, hidden, causal;")
print("    const uint8_t *key_padding; /* B·S or NULL */")
print("    const double *query, *key, *value;")
print("    const double *cotangent, *out, *dquery, *dkey, *dvalue;")
print("    int n_params;")
print("    const attn_ref_param *params;")
print("} mha_ref_case;\n")
for i, c in enumerate(module_cases):
    p = "mha_ref_%d_" % i
    if c["pad"] is not None:
        print("static const uint8_t %spad[] = %s;" % (p, bytes_(c["pad"])))
    array(p + "query", c["query"], True)
    shared = c["value"] is c["key"]
    if c["key"] is not None:
        array(p + "key", c["key"], True)
        array(p + "dkey", c["grads"][1])
        if not shared:
            array(p + "value", c["value"], True)
            array(p + "dvalue", c["grads"][2])
    array(p + "cot", c["cot"], True)
    array(p + "out", c["out"])
    array(p + "dquery", c["grads"][0])
    for j, (name, value, grad) in enumerate(c["params"]):
        array(p + "p%d" % j, value, True)
        array(p + "g%d" % j, grad)
    print("static const attn_ref_param %sparams[] = {" % p)
    for j, (name, value, grad) in enumerate(c["params"]):
        print('    {"%s", %d, %sp%d, %sg%d},' % (name, value.numel(), p, j, p, j))
    print("};\n")
print("static const mha_ref_case mha_ref_cases[] = {")
for i, c in enumerate(module_cases):
    p = "mha_ref_%d_" % i
    pad = p + "pad" if c["pad"] is not None else "NULL"
    cross = c["key"] is not None
    v = "key" if c["value"] is c["key"] else "value"  # one tensor: the same arrays twice
    kv = "%skey, %s%s" % (p, p, v) if cross else "NULL, NULL"
    dkv = "%sdkey, %sd%s" % (p, p, v) if cross else "NULL, NULL"
    print('    {"%s", %d, %d, %d, %d, %d, %d, %d, %s, %squery, %s, %scot, %sout, %sdquery, %s, %d, %sparams},'
          % (c["name"], c["B"], c["L"], c["S"], c["E"], c["H"], c["hidden"], c["causal"], pad, p, kv,
             p, p, p, dkv, len(c["params"]), p))
print("};")
print("#define MHA_REF_COUNT %d\n" % len(module_cases))
print("#endif")
