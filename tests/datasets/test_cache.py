"""The caches adapters share (datasets/cache.py): the cache_dir param, entries, the md5 index."""
import json
import os
import time

import pytest

from benchmarks.core.errors import CritBenchError
from datasets import cache
from datasets.base import file_md5
from datasets.cache import Md5Index, cache_folder, default_cache_dir, read_entry, write_entry


def old_file(path, text):
    path.write_text(text)
    past = time.time_ns() - 60 * 10**9
    os.utime(path, ns=(past, past))
    return path


def test_the_default_folder_honours_xdg_cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir("cifar") == tmp_path / "xdg" / "critbench" / "cifar"
    assert cache_folder({}, "cifar") == tmp_path / "xdg" / "critbench" / "cifar" and (tmp_path / "xdg").is_dir()
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir("nifti") == tmp_path / "home" / ".cache" / "critbench" / "nifti"


def test_cache_dir_none_disables_and_a_file_is_refused(tmp_path):
    assert cache_folder({"cache_dir": "None"}, "cifar") is None
    (tmp_path / "taken").write_text("x")
    with pytest.raises(CritBenchError, match=r"--param cache_dir=.*taken: it is a file, not a folder; .*cache_dir=none"):
        cache_folder({"cache_dir": str(tmp_path / "taken")}, "cifar")
    with pytest.raises(CritBenchError, match="cannot be written"):
        cache_folder({"cache_dir": str(tmp_path / "taken" / "sub")}, "cifar")


def test_an_unreadable_entry_reads_as_absent_with_one_line(tmp_path, capsys):
    entry = tmp_path / "entry.json"
    assert read_entry(entry, lambda path: json.loads(path.read_text())) is None
    write_entry(entry, lambda stream: stream.write(b"{\"a\": 1}"))
    assert read_entry(entry, lambda path: json.loads(path.read_text())) == {"a": 1}
    entry.write_text("{")
    assert read_entry(entry, lambda path: json.loads(path.read_text())) is None
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and str(entry) in err[0] and "JSONDecodeError" in err[0]


def test_the_index_reuses_an_md5_while_size_and_mtime_match(tmp_path, monkeypatch):
    folder, hashed = tmp_path / "cache", []
    folder.mkdir()
    monkeypatch.setattr(cache, "file_md5", lambda path: hashed.append(path.name) or file_md5(path))
    a, b = old_file(tmp_path / "a", "one"), old_file(tmp_path / "b", "two")
    index = Md5Index(folder)
    assert [index.md5(a), index.md5(b)] == [file_md5(a), file_md5(b)] and hashed == ["a", "b"]
    index.save()
    again = Md5Index(folder)
    assert [again.md5(a), again.md5(b)] == [file_md5(a), file_md5(b)] and hashed == ["a", "b"]
    old_file(a, "ONE")  # same size, new mtime
    assert again.md5(a) == file_md5(a) and hashed[-1] == "a"
    fresh = tmp_path / "fresh"
    fresh.write_text("new")  # within the racy window: hashed, not indexed
    assert again.md5(fresh) == again.md5(fresh) and hashed[-2:] == ["fresh", "fresh"]


def test_saving_keeps_what_another_run_indexed_and_a_damaged_index_is_rebuilt(tmp_path, capsys):
    folder = tmp_path / "cache"
    folder.mkdir()
    a, b = old_file(tmp_path / "a", "one"), old_file(tmp_path / "b", "two")
    first, second = Md5Index(folder), Md5Index(folder)
    first.md5(a)
    second.md5(b)
    first.save()
    second.save()
    assert set(json.loads((folder / cache.INDEX_NAME).read_text())) == {str(a), str(b)}
    (folder / cache.INDEX_NAME).write_text("[1, 2")
    assert Md5Index(folder).md5(a) == file_md5(a)
    assert "ignoring the unreadable cache entry" in capsys.readouterr().err
    assert Md5Index(None).md5(a) == file_md5(a)


def test_a_digest_over_many_files_is_reused_until_one_of_them_changes(tmp_path):
    folder, computed = tmp_path / "cache", []
    folder.mkdir()
    files = [old_file(tmp_path / "a", "one"), old_file(tmp_path / "b", "two")]

    def compute():
        computed.append(1)
        return "".join(path.read_text() for path in files)

    index = Md5Index(folder)
    assert index.digest("k", files, compute) == "onetwo" and len(computed) == 1
    index.save()
    again = Md5Index(folder)
    assert again.digest("k", files, compute) == "onetwo" and len(computed) == 1
    old_file(files[1], "TWO")  # same size, new mtime
    assert again.digest("k", files, compute) == "oneTWO" and len(computed) == 2
    assert again.digest("k", files[:1], compute) == "oneTWO" and len(computed) == 3  # a file less
    files[0].write_text("ONE")  # within the racy window: computed, not indexed
    assert [again.digest("k", files, compute) for _ in range(2)] == ["ONETWO"] * 2 and len(computed) == 5
    assert Md5Index(None).digest("k", files, compute) == "ONETWO" and len(computed) == 6
