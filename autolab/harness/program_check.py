"""The handed-over program is data, not code: what is checked before it is loaded or run.

`model.pt2` is written by the experiment, so whoever loads it (the sealed evaluator, `autolab
sample`, `inspect`) treats it as hostile. torch.export.load is not safe on such a file: it
unpickles weights marked `use_pickle` and sample inputs that fail the safe unpickler, loads
compiled AOTInductor libraries, exec's the archive's `guards_code` and hands symbolic shape
expressions to sympy's eval. So, before torch sees the file, `checked_archive` reads the zip and
its JSON itself and refuses all of these, and every operator the graph names must be on the
allow-list (autolab.harness.allowed_ops). After loading, `check_program` checks the resolved
graph again and refuses writes into the program's own weights or inputs: a program that keeps
state from call to call could behave while probed and cheat while scored.
"""

import io
import json
import re
import zipfile
from pathlib import Path

import torch

from autolab.harness.allowed_ops import ALLOWED_ATEN, ALLOWED_HIGHER_ORDER, ALLOWED_PYTHON


class RefusedProgram(ValueError):
    """The handed-over program contains something that is not tensor math; the message says what."""


# Archive entries torch.export.save writes for a plain program; anything else (compiled
# libraries, pickled objects, extra files) is refused by name.
_ENTRY = re.compile(
    r"(archive_format|archive_version|byteorder|\.data/version|\.data/serialization_id"
    r"|models/\w+\.json|data/weights/(\w+_weights_config\.json|weight_\d+)"
    r"|data/constants/(\w+_constants_config\.json|tensor_\d+)|data/sample_inputs/\w+\.pt)"
)
# Symbolic sizes (older runs' programs) are parsed with sympy, i.e. eval: only size symbols,
# integers, arithmetic and torch's sympy functions may appear.
_SYMBOL = re.compile(r"[a-z]\d+")
_SYMPY_FUNCTIONS = {"FloorDiv", "Mod", "PythonMod", "CeilDiv", "CleanDiv", "Max", "Min"}


def operator_refusal(name: str) -> str | None:
    """Why the operator serialised as `name` (e.g. 'torch.ops.aten.add.Tensor') is refused."""
    if name in {f"_operator.{n}" for n in ALLOWED_PYTHON.values()}:
        return None
    parts = name.removeprefix("torch.ops.").split(".")
    if not name.startswith("torch.ops.") or len(parts) < 2:
        return f"operator {name} is not a torch operator"
    namespace, packet = parts[0], parts[1]
    if namespace == "higher_order":
        if packet in ALLOWED_HIGHER_ORDER:
            return None
        return f"higher-order operator {name} is not allowed (control flow or opaque code)"
    if namespace != "aten":
        return f"operator {name} is outside aten (custom operators may run any code)"
    if packet in ALLOWED_ATEN or packet.removesuffix("_") in ALLOWED_ATEN:
        return None
    return f"operator {name} is not on the allow-list of tensor operators"


def checked_archive(path: Path) -> io.BytesIO:
    """The archive, checked, rebuilt in memory: torch then reads exactly the entries checked.

    Raises RefusedProgram unless it holds only a graph of allowed operators and raw weights.
    Rebuilding leaves no room for a zip that reads one way here and another way in torch's
    own reader (duplicate names, a second directory).
    """
    rebuilt = io.BytesIO()
    with zipfile.ZipFile(path) as archive, zipfile.ZipFile(rebuilt, "w") as copy:
        names = archive.namelist()
        if len(set(names)) != len(names):
            raise RefusedProgram("the archive names an entry twice")
        for name in names:
            inner = name.split("/", 1)[1] if "/" in name else name
            if name.endswith("/") or not _ENTRY.fullmatch(inner):
                raise RefusedProgram(f"the archive holds {inner!r}: not weights or a graph")
            data = archive.read(name)
            if inner.endswith("_config.json"):
                for key, payload in json.loads(data)["config"].items():
                    if payload.get("use_pickle"):
                        raise RefusedProgram(f"{key} is stored as a pickle, which runs code")
            elif inner.startswith("data/sample_inputs/"):
                try:  # torch retries a failed safe load with the unsafe one; refuse first
                    torch.load(io.BytesIO(data), weights_only=True)
                except Exception as err:  # any failure of the safe unpickler is a refusal
                    raise RefusedProgram(f"sample inputs are not plain tensors: {err}") from err
            elif inner.startswith("models/"):
                _check_graph_json(json.loads(data))
            copy.writestr(name, data)
    rebuilt.seek(0)
    return rebuilt


def _check_graph_json(program: dict) -> None:
    if program.get("guards_code"):
        raise RefusedProgram("the program carries guard code, which torch would execute")
    for value in _walk(program):
        if "target" in value and "inputs" in value:
            if refusal := operator_refusal(str(value["target"])):
                raise RefusedProgram(refusal)
        if isinstance(value.get("expr_str"), str):
            expr = value["expr_str"]
            for word in re.findall(r"[A-Za-z_]\w*", expr):
                if not (_SYMBOL.fullmatch(word) or word in _SYMPY_FUNCTIONS):
                    raise RefusedProgram(f"shape expression {expr[:60]!r} is not arithmetic")
            if re.search(r"[^\w\s+\-*/%(),]", expr):
                raise RefusedProgram(f"shape expression {expr[:60]!r} is not arithmetic")


def _walk(value):
    """Every dict nested anywhere in a JSON value (nodes of subgraphs included)."""
    if isinstance(value, dict):
        yield value
        for item in value.values():
            yield from _walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item)


def target_name(target) -> str:
    """The serialised name of a graph node's target, as operator_refusal reads it."""
    if isinstance(target, torch._ops.OpOverload):
        packet = target.overloadpacket.__name__
        return f"torch.ops.{target.namespace}.{packet}.{target._overloadname}"
    if isinstance(target, torch._ops.HigherOrderOperator):
        return f"torch.ops.higher_order.{target.name()}"
    if target in ALLOWED_PYTHON:
        return f"_operator.{ALLOWED_PYTHON[target]}"
    return getattr(target, "__qualname__", None) or repr(target)


def check_program(program: torch.export.ExportedProgram) -> None:
    """Raise RefusedProgram on a disallowed operator or a write into the program's own state."""
    for module in program.graph_module.modules():
        if not isinstance(module, torch.fx.GraphModule):
            continue
        for node in module.graph.nodes:
            if node.op in ("placeholder", "get_attr", "output"):
                continue
            if node.op != "call_function":
                raise RefusedProgram(f"graph node {node.name} is a {node.op}, not an operator")
            if refusal := operator_refusal(target_name(node.target)):
                raise RefusedProgram(refusal)
            if written := _writes_into_state(node):
                raise RefusedProgram(
                    f"operator {target_name(node.target)} writes into {written}: a program "
                    "may not keep state between calls"
                )


def _writes_into_state(node: torch.fx.Node) -> str | None:
    """The weight or input that `node` writes into (through any views), or None."""
    if not isinstance(node.target, torch._ops.OpOverload):
        return None
    schema = node.target._schema
    for i, arg in enumerate(schema.arguments):
        if not (arg.alias_info and arg.alias_info.is_write):
            continue
        value = node.args[i] if i < len(node.args) else node.kwargs.get(arg.name)
        while isinstance(value, torch.fx.Node) and value.op == "call_function":
            base = value.args[0] if value.args else None
            if value.target in ALLOWED_PYTHON:  # getitem of a multi-output view (split, chunk)
                value = base
            elif isinstance(value.target, torch._ops.OpOverload) and any(
                r.alias_info is not None for r in value.target._schema.returns
            ):  # a view or an in-place op: it aliases its first input
                value = base
            else:
                break  # a fresh tensor the program computed: writing into it keeps no state
        if isinstance(value, torch.fx.Node) and value.op in ("placeholder", "get_attr"):
            return value.name
    return None
