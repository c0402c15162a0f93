"""torch.compile's cache across sandboxed runs: carried only from runs of autolab's own recipe code.

The red team (tests/test_red_team.py) plants weights in the cache directories a run is given and
looks for them in the next run; here, the rules of what carries over, and one real compiled run.
"""

import math
import os
from functools import partial
from pathlib import Path

import pytest
from test_recipes import data_dir  # noqa: F401  (prepared char shards, for the compiled run)

from autolab.recipes import recipe_source
from autolab.research.constants import apply_changes, parse_constants
from autolab.sandbox import compile_cache, sandbox_unavailable


@pytest.mark.parametrize("name", ["gpt", "mlp"])
@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_a_shipped_recipe_is_recipe_code_whatever_its_constants(name, device):
    source = recipe_source(name, device)
    assert compile_cache.is_recipe_code(source)
    sizes = [c for c in parse_constants(source).values() if c.kind in ("int", "pow2")][:3]
    changed = apply_changes(source, {c.name: c.value * 2 for c in sizes})
    assert changed != source and compile_cache.is_recipe_code(changed)


def test_recipe_code_with_changed_values_of_every_kind():
    changes = {"MATRIX_LR": 0.5, "ACTIVATION": "gelu", "COMPILE": True, "BATCH_SIZE": 2**3}
    assert compile_cache.is_recipe_code(apply_changes(recipe_source("gpt"), changes))


@pytest.mark.parametrize(
    "edit",
    [
        ("DEPTH = 2 ", "DEPTH = 1 + 1 "),  # an expression is code, not a value
        ("DEPTH = 2 ", "DEPTH = __import__('os').getpid() "),
        ("return logits\n", "return logits * 1.0\n"),
        ("def main():\n", "import os\n\n\ndef main():\n"),
    ],
)
def test_any_other_change_is_not_recipe_code(edit):
    source = recipe_source("gpt")
    assert edit[0] in source
    assert not compile_cache.is_recipe_code(source.replace(*edit, 1))


def test_text_that_is_not_python_is_not_recipe_code():
    assert not compile_cache.is_recipe_code("DEPTH = (")
    assert not compile_cache.is_recipe_code("")
    assert not compile_cache.is_recipe_code("x = 1\0")
    assert not compile_cache.is_recipe_code("x = " + "(" * 100_000 + ")" * 100_000)


def staged_cache(staging_tmp: Path) -> Path:
    return staging_tmp / compile_cache.IN_SANDBOX.relative_to("/tmp")


def test_harvest_adds_new_plain_files_and_leaves_links_headers_and_existing_files(tmp_path):
    home, staging = tmp_path / "home", tmp_path / "staging"
    copy = staged_cache(staging)
    (copy / "inductor" / "fxgraph" / "ab").mkdir(parents=True)
    (copy / "inductor" / "fxgraph" / "ab" / "entry").write_text("compiled")
    (copy / "inductor" / "precompiled_headers").mkdir()
    (copy / "inductor" / "precompiled_headers" / "big.gch").write_text("header")
    headers = staging / compile_cache.CARRIED["precompiled_headers"].relative_to("/tmp")
    (headers / "locks").mkdir(parents=True)
    (headers / "abc.h.gch").write_text("precompiled")
    (headers / "locks" / "abc.lock").write_text("")
    secret = tmp_path / "referee.txt"
    secret.write_text("sealed")
    (copy / "inductor" / "link").symlink_to(secret)
    trusted = compile_cache.trusted_dir(home)
    (trusted / "inductor").mkdir(parents=True)
    (trusted / "inductor" / "kept").write_text("first")
    (copy / "inductor" / "kept").write_text("second")
    (copy / "inductor" / ".123.456.tmp").write_text("half-writ")  # the run ended mid-write

    assert compile_cache.harvest(staging, home) == 2
    assert (trusted / "precompiled_headers" / "abc.h.gch").read_text() == "precompiled"
    assert not (trusted / "precompiled_headers" / "locks").exists()
    assert (trusted / "inductor" / "fxgraph" / "ab" / "entry").read_text() == "compiled"
    assert (trusted / "inductor" / "kept").read_text() == "first"  # never replaced
    assert not (trusted / "inductor" / "link").exists()
    assert not (trusted / "inductor" / "precompiled_headers").exists()
    assert not list(trusted.rglob(".*"))


def test_seed_copies_the_carried_cache_into_a_run_that_may_compile(tmp_path):
    home, staging = tmp_path / "home", tmp_path / "staging"
    compiled, uncompiled = tmp_path / "compiled.py", tmp_path / "uncompiled.py"
    compiled.write_text(apply_changes(recipe_source("gpt"), {"COMPILE": True}))
    uncompiled.write_text(recipe_source("gpt"))  # COMPILE = False
    compile_cache.seed(staging, compiled, home)
    assert not staged_cache(staging).exists()  # nothing carried yet
    trusted = compile_cache.trusted_dir(home)
    (trusted / "inductor" / "fxgraph").mkdir(parents=True)
    (trusted / "inductor" / "fxgraph" / "entry").write_text("compiled")
    (trusted / "precompiled_headers").mkdir()
    (trusted / "precompiled_headers" / "abc.h.gch").write_text("precompiled")
    compile_cache.seed(staging, uncompiled, home)
    assert not staged_cache(staging).exists()
    compile_cache.seed(staging, compiled, home)
    assert (staged_cache(staging) / "inductor" / "fxgraph" / "entry").read_text() == "compiled"
    headers = staging / compile_cache.CARRIED["precompiled_headers"].relative_to("/tmp")
    assert (headers / "abc.h.gch").read_text() == "precompiled"
    env = compile_cache.environment()
    assert env["TORCHINDUCTOR_CACHE_DIR"].startswith(str(compile_cache.IN_SANDBOX))


@pytest.mark.slow
@pytest.mark.skipif(
    sandbox_unavailable() is not None and os.environ.get("CI") != "true",
    reason="no sandbox here",
)
def test_a_compiled_recipe_run_leaves_its_cache_for_the_next(data_dir, tmp_path, monkeypatch):  # noqa: F811
    """The CUDA sizing's torch.compile, on a CPU, in the sandbox: the first run compiles and its
    cache is carried; the second compiles nothing new (~40 s of compiling on 2 cores)."""
    from autolab.experiment import run_experiment
    from autolab.harness.settings import RunSettings

    monkeypatch.setenv("AUTOLAB_HOME", str(tmp_path / "home"))
    train_py = tmp_path / "train.py"
    train_py.write_text(apply_changes(recipe_source("gpt"), {"COMPILE": True}))
    trusted = compile_cache.trusted_dir()
    carried, modified = [], []
    for n in range(2):
        settings = RunSettings(
            data_dir, tmp_path / f"run{n}", budget_seconds=2, device="cpu", seed=0
        )
        result = run_experiment(train_py, settings, None, wall_limit=600, isolation="sandbox")
        assert result.status == "ok", result.reason
        assert math.isfinite(result.reported["val_bpb"])
        files = sorted(p for p in trusted.rglob("*") if p.is_file())
        carried.append([p.relative_to(trusted) for p in files])
        modified.append({p: p.stat().st_mtime_ns for p in files})
    assert any(p.parts[:2] == ("inductor", "fxgraph") for p in carried[0])
    assert any(p.parts[0] == "precompiled_headers" for p in carried[0])  # C++ kernels, on a CPU
    assert carried[1] == carried[0]  # every graph of the second run was found in the cache
    used = [p for p in modified[1] if modified[1][p] > modified[0][p]]
    assert any("fxgraph" in p.parts for p in used)  # the entries the second run read


def test_carry_over_takes_only_a_recipe_run_and_checks_nothing_where_nothing_was_compiled(
    tmp_path,
):
    home, staging = tmp_path / "home", tmp_path / "staging"
    assert compile_cache.carry_over(staging, tmp_path / "no-such-train.py", home) == 0
    (staged_cache(staging) / "inductor").mkdir(parents=True)
    (staged_cache(staging) / "inductor" / "entry").write_text("compiled")
    undecodable = tmp_path / "undecodable.py"
    undecodable.write_bytes(b"\xff\xfe COMPILE = True")
    assert compile_cache.carry_over(staging, undecodable, home) == 0
    edited = tmp_path / "edited.py"
    edited.write_text(recipe_source("gpt") + "\nimport os\n")
    assert compile_cache.carry_over(staging, edited, home) == 0
    assert not compile_cache.trusted_dir(home).exists()
    recipe = tmp_path / "recipe.py"
    recipe.write_text(apply_changes(recipe_source("gpt"), {"COMPILE": True}))
    assert compile_cache.carry_over(staging, recipe, home) == 1
    assert (compile_cache.trusted_dir(home) / "inductor" / "entry").read_text() == "compiled"


def carried_file(home: Path, relative: str, text: str, mtime: float) -> Path:
    path = compile_cache.trusted_dir(home) / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.utime(path, (mtime, mtime))
    return path


def test_a_carried_file_the_run_read_is_marked_used_and_one_it_did_not_is_not(tmp_path):
    home, staging = tmp_path / "home", tmp_path / "staging"
    read = carried_file(home, "inductor/fxgraph/read", "compiled", mtime=1_000)
    unread = carried_file(home, "triton/unread", "compiled", mtime=1_000)
    carried_file(home, "inductor/.entry.7.partial", "half-writ", mtime=1_000)  # mid-harvest
    script = tmp_path / "train.py"
    script.write_text(apply_changes(recipe_source("gpt"), {"COMPILE": True}))
    compile_cache.seed(staging, script, home)
    copy = staged_cache(staging)
    assert not (copy / "inductor" / ".entry.7.partial").exists()
    assert (copy / "inductor" / "fxgraph" / "read").stat().st_mtime == 1_000
    (copy / "inductor" / "fxgraph" / "read").read_text()  # what the compiler does on a hit
    if (copy / "inductor" / "fxgraph" / "read").stat().st_atime == 0:
        pytest.skip("this filesystem does not record reads (noatime)")

    assert compile_cache.carry_over(staging, script, home) == 0  # nothing new to add
    assert read.stat().st_mtime > 1_000
    assert unread.stat().st_mtime == 1_000


def test_a_run_of_other_code_marks_nothing_used(tmp_path):
    home, staging = tmp_path / "home", tmp_path / "staging"
    carried = carried_file(home, "inductor/entry", "compiled", mtime=1_000)
    script = tmp_path / "train.py"
    script.write_text(apply_changes(recipe_source("gpt"), {"COMPILE": True}) + "\nimport os\n")
    compile_cache.seed(staging, script, home)
    (staged_cache(staging) / "inductor" / "entry").read_text()
    assert compile_cache.carry_over(staging, script, home) == 0
    assert carried.stat().st_mtime == 1_000


def test_past_its_limit_the_cache_loses_its_least_recently_used_files(tmp_path):
    home = tmp_path / "home"
    oldest = carried_file(home, "triton/a", "x" * 400, mtime=1_000)
    older = carried_file(home, "inductor/fxgraph/b", "x" * 400, mtime=2_000)
    newer = carried_file(home, "inductor/c", "x" * 400, mtime=3_000)
    header = carried_file(home, "precompiled_headers/h.gch", "x" * 100, mtime=500)  # never goes
    assert compile_cache.prune(home, limit=1_300) == 0  # at its limit: nothing goes
    assert compile_cache.prune(home, limit=1_200) == 1  # down to 80% of it: 900 bytes
    assert not oldest.exists() and older.exists()
    assert compile_cache.prune(home, limit=800) == 1  # 900 bytes, down to 640: one more
    assert not older.exists() and newer.exists() and header.exists()


def test_a_workspace_made_before_autolab_changed_its_recipe_stays_recipe_code(
    tmp_path, monkeypatch
):
    """`autolab init` records the recipe it wrote; the shipped one then changes (an upgrade)."""
    from autolab.workspace import init_workspace

    monkeypatch.setenv("AUTOLAB_HOME", str(tmp_path / "home"))
    older = recipe_source("gpt").replace("return logits\n", "return logits * 1.0\n", 1)
    monkeypatch.setattr("autolab.workspace.recipe_source", lambda recipe, device: older)
    root = init_workspace(tmp_path / "ws", device="cpu")
    assert (root / "train.py").read_text() == older
    searched = apply_changes(older, {"DEPTH": 3, "MATRIX_LR": 0.01})
    assert compile_cache.is_recipe_code(searched)
    assert not compile_cache.is_recipe_code(searched, tmp_path / "another-home")
    assert not compile_cache.is_recipe_code(searched.replace("* 1.0", "* 2.0"))


def test_two_workers_writing_the_same_file_at_once_each_write_their_own_partial(tmp_path):
    """Parallel workers are threads of one process: two runs of the same recipe may harvest the
    same new file at the same moment. Both are inside their write at once here."""
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    destination = tmp_path / "entry"
    both_writing = Barrier(2, timeout=10)

    def write(text: str, unfinished: Path) -> None:
        unfinished.write_text(text[0])
        both_writing.wait()
        with unfinished.open("a") as file:
            file.write(text[1:])

    with ThreadPoolExecutor(2) as pool:
        done = [pool.submit(compile_cache._write_whole, destination, partial(write, text))
                for text in ("aaaa", "bbbb")]  # fmt: skip
        for future in done:
            future.result()  # neither found its partial file taken by the other
    assert destination.read_text() in ("aaaa", "bbbb")
    assert list(tmp_path.iterdir()) == [destination]


def test_on_a_full_disk_a_run_is_seeded_with_the_files_copied_whole(tmp_path, monkeypatch):
    import errno
    import shutil

    home, staging = tmp_path / "home", tmp_path / "staging"
    for n in range(3):
        carried_file(home, f"inductor/entry{n}", "compiled", mtime=1_000)
    script = tmp_path / "train.py"
    script.write_text(apply_changes(recipe_source("gpt"), {"COMPILE": True}))
    copied, copyfile = [], shutil.copyfile

    def copy_until_full(source, destination):
        if copied:
            Path(destination).write_text("compi")  # the disk fills in the middle of the second
            raise OSError(errno.ENOSPC, "No space left on device")
        copied.append(copyfile(source, destination))

    monkeypatch.setattr(compile_cache.shutil, "copyfile", copy_until_full)
    compile_cache.seed(staging, script, home)
    staged = sorted(p.read_text() for p in (staged_cache(staging) / "inductor").iterdir())
    assert staged == ["compiled"]
