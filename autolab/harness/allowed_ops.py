"""The operators a handed-over program may contain: tensor math, and nothing that reaches outside.

A program is checked against these lists before it runs (autolab.harness.program_check). Names
are ATen overload packets (`torch.ops.aten.<name>`); every overload of a listed packet is
allowed, and so is its in-place form (`add_` for `add`), because writes into the program's own
weights or inputs, the one way to keep state from call to call, are refused separately.

Left out on purpose: every namespace but `aten` (custom operators registered with
torch.library run arbitrary Python; `c10d`/`_c10d_functional` reach the network; `profiler`,
`debugprims` and friends have side effects), ATen's I/O (`from_file`, `save`), random numbers
(`rand`, `bernoulli`, `multinomial`: a scored model is a deterministic function of its input,
and noise would only hide a leak from the probes), and data-dependent scalars and shapes
(`item`, `nonzero`, `masked_select`), which a program exported for one fixed shape never needs.
A recipe that needs another tensor operator adds it here, in its family.
"""

import operator

FAMILIES: dict[str, tuple[str, ...]] = {
    # Fresh tensors of a shape fixed at export: position ids, masks, padding. No data is read.
    "creation": (
        "arange", "empty", "empty_like", "eye", "full", "full_like", "linspace",
        "ones", "ones_like", "scalar_tensor", "zeros", "zeros_like", "lift_fresh_copy",
    ),
    # dtype and layout changes (`.float()`, autocast's casts, `.contiguous()`). `_assert_*`
    # only checks a tensor's metadata; export inserts it after `.to(dtype)`.
    "dtype and copies": (
        "to", "_to_copy", "type_as", "clone", "contiguous", "detach", "alias", "copy",
        "_assert_tensor_metadata",
    ),
    # Views, reshapes and rearrangements: they move values, they compute nothing.
    "shape": (
        "view", "_unsafe_view", "reshape", "flatten", "unflatten", "squeeze", "unsqueeze",
        "permute", "transpose", "t", "expand", "expand_as", "broadcast_to", "repeat",
        "repeat_interleave", "tile", "narrow", "slice", "select", "split",
        "split_with_sizes", "chunk", "unbind", "cat", "concat", "stack", "flip", "roll",
        "movedim", "view_as", "unfold", "pad", "constant_pad_nd", "diagonal", "tril", "triu",
    ),
    # Reading and writing by index inside tensors the program already holds.
    "indexing": (
        "index", "index_select", "index_put", "gather", "scatter", "scatter_add",
        "masked_fill", "where", "take_along_dim",
    ),
    # Element-wise arithmetic and comparisons (`mask & other` exports as `__and__`).
    "elementwise": (
        "add", "sub", "rsub", "mul", "div", "neg", "reciprocal", "pow", "square", "sqrt",
        "rsqrt", "exp", "exp2", "expm1", "log", "log2", "log10", "log1p", "abs", "sign",
        "sin", "cos", "tan", "tanh", "sinh", "cosh", "asin", "acos", "atan", "atan2",
        "erf", "erfc", "clamp", "clamp_min", "clamp_max", "clip", "floor", "ceil", "round",
        "trunc", "frac", "fmod", "remainder", "floor_divide", "maximum", "minimum", "fmax",
        "fmin", "lerp", "addcmul", "addcdiv", "hypot", "logaddexp", "logit", "xlogy",
        "nan_to_num", "eq", "ne", "lt", "le", "gt", "ge", "isnan", "isinf", "isfinite",
        "logical_and", "logical_or", "logical_not", "logical_xor", "bitwise_and",
        "bitwise_or", "bitwise_xor", "bitwise_not", "__and__", "__or__", "__xor__", "cumsum",
        "cumprod", "cummax", "logcumsumexp",
    ),
    # Activation functions.
    "activations": (
        "relu", "relu6", "gelu", "silu", "mish", "elu", "selu", "celu", "leaky_relu",
        "hardtanh", "hardswish", "hardsigmoid", "softplus", "glu", "threshold", "prelu",
        "log_sigmoid", "sigmoid",
    ),
    # Reductions (means for norms and pooling, max for stable softmax, top-k for routing).
    "reductions": (
        "sum", "mean", "prod", "amax", "amin", "max", "min", "argmax", "argmin", "var", "std",
        "var_mean", "std_mean", "norm", "linalg_vector_norm", "logsumexp", "all", "any",
        "topk", "sort", "argsort",
    ),
    # Matrix products and convolutions: the layers themselves.
    "linear algebra": (
        "mm", "bmm", "matmul", "addmm", "baddbmm", "linear", "einsum", "outer", "dot", "mv",
        "conv1d", "conv2d", "convolution", "_convolution",
    ),
    # Normalisation layers as export leaves them (composite, or the native kernels).
    "normalisation": (
        "layer_norm", "native_layer_norm", "rms_norm", "_fused_rms_norm", "group_norm",
        "native_group_norm", "batch_norm", "_native_batch_norm_legit_no_training",
    ),
    # Softmax and attention, including the fused kernels SDPA dispatches to per device.
    "attention": (
        "softmax", "_softmax", "_safe_softmax", "log_softmax", "_log_softmax",
        "scaled_dot_product_attention", "_scaled_dot_product_flash_attention",
        "_scaled_dot_product_flash_attention_for_cpu", "_scaled_dot_product_efficient_attention",
        "_scaled_dot_product_cudnn_attention",
    ),
    # Token embeddings.
    "embedding": ("embedding", "one_hot"),
    # nn.Dropout exports as `dropout(x, p, train=False)`, the identity; with train=True it is
    # random, and the probes refuse the model as not a function of its input.
    "dropout": ("dropout",),
}  # fmt: skip

ALLOWED_ATEN: frozenset[str] = frozenset(name for names in FAMILIES.values() for name in names)

# Higher-order operators hold a subgraph. Only the two that merely scope a mode around one are
# allowed: export emits them for `with torch.autocast(...)` and `with torch.no_grad()` inside
# forward, and their subgraphs are checked like the main graph. The rest are refused: `cond`,
# `while_loop`, `scan` and `map` add control flow a language model does not need (and an
# unbounded loop), and others carry effects or opaque code (`with_effects`,
# `auto_functionalized` for custom operators, `executorch_call_delegate`, `flex_attention`'s
# Python score functions).
ALLOWED_HIGHER_ORDER = frozenset({"wrap_with_autocast", "wrap_with_set_grad_enabled"})

# Plain Python callables export uses: unpacking the outputs of multi-output operators.
ALLOWED_PYTHON = {operator.getitem: "getitem"}
