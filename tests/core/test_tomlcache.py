"""The parsed-TOML cache gives what tomllib gives, notices every change to a file, and never gets in the way."""

from __future__ import annotations

import datetime as dt
import os
import sys
import time
import tomllib
from pathlib import Path

import payerpolicy
import pytest
from payerpolicy.evaluation import tomlcache
from payerpolicy.evaluation.errors import PolicyValidationError
from payerpolicy.evaluation.tomlcache import CACHE_DIR_ENV, load_toml

ROOT = Path(__file__).resolve().parents[2]
POLICY_FILES = sorted((ROOT / "policies").glob("*.toml"))

EVERY_KIND = """\
title = "every kind of value"
integer = -42
float = 3.25
infinite = inf
yes = true
offset_utc = 1979-05-27T07:32:00Z
offset = 1979-05-27T00:32:00.999999+05:30
local_datetime = 1979-05-27T07:32:00.5
local_date = 2025-01-01
local_time = 07:32:00.25
dates = [2024-01-01, 2024-12-31, [2025-06-30]]
inline = { from = 2024-01-01, to = "open", n = [1, 2.5, "x"] }

[[rules]]
id = "A-1"
effective = { from = 2024-01-01 }
[rules.params]
until = 2026-12-31
when = 12:00:00
"""


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cache of its own, which (unlike the real one) also keeps files changed a moment ago."""
    directory = tmp_path / "cache"
    monkeypatch.setenv(CACHE_DIR_ENV, str(directory))
    monkeypatch.setattr(tomlcache, "RACY_NS", 0)
    return directory


def _load(path: Path) -> dict[str, object]:
    return load_toml(str(path), os.stat(path), lambda: path.read_text("utf-8"))


def _cached_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


@pytest.mark.parametrize("path", POLICY_FILES, ids=lambda p: p.name)
def test_a_shipped_file_reads_back_as_tomllib_parses_it(path, cache):
    expected = tomllib.loads(path.read_text("utf-8"))
    first, second = _load(path), _load(path)
    assert first == second == expected
    assert list(second) == list(expected)  # key order too
    assert _cached_files(cache) == [f"toml-py{sys.version_info[0]}{sys.version_info[1]}-v1.marshal"]


def test_dates_times_and_date_times_come_back_with_their_types_and_offsets(tmp_path, cache):
    path = tmp_path / "every.toml"
    path.write_text(EVERY_KIND, "utf-8")
    expected = tomllib.loads(EVERY_KIND)
    _load(path)
    tomlcache._index = None  # as a new process would: from the cache file
    again = _load(path)
    assert again == expected
    for key in ("offset_utc", "offset", "local_datetime", "local_date", "local_time"):
        assert type(again[key]) is type(expected[key]) and repr(again[key]) == repr(expected[key])
    assert again["offset"].utcoffset() == dt.timedelta(hours=5, minutes=30)
    assert again["rules"][0]["params"]["when"] == dt.time(12, 0)


def test_an_edit_of_the_same_size_and_modification_time_is_read_again(tmp_path, cache):
    path = tmp_path / "p.toml"
    path.write_text('value = "aaaa"\n', "utf-8")
    assert _load(path) == {"value": "aaaa"}
    before = os.stat(path)
    time.sleep(0.05)  # past the file system clock's tick
    path.write_text('value = "bbbb"\n', "utf-8")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # same size, same mtime: the ctime changed
    tomlcache._index = None
    assert _load(path) == {"value": "bbbb"}


def test_a_file_changed_a_moment_ago_is_not_cached(tmp_path, cache, monkeypatch):
    monkeypatch.setattr(tomlcache, "RACY_NS", 2_000_000_000)
    path = tmp_path / "p.toml"
    path.write_text("n = 1\n", "utf-8")
    assert _load(path) == {"n": 1}
    assert not cache.exists()
    old = time.time_ns() - 10_000_000_000
    os.utime(path, ns=(old, old))  # the status-change time is still now
    assert _load(path) == {"n": 1}
    assert not cache.exists()


def test_a_replaced_file_is_read_again(tmp_path, cache):
    path = tmp_path / "p.toml"
    path.write_text("n = 1\n", "utf-8")
    assert _load(path) == {"n": 1}
    other = tmp_path / "other.toml"
    other.write_text("n = 2\n", "utf-8")
    other.replace(path)
    assert _load(path) == {"n": 2}


def test_a_damaged_cache_file_is_parsed_around_and_replaced(tmp_path, cache):
    path = tmp_path / "p.toml"
    path.write_text("n = 1\n", "utf-8")
    _load(path)
    (cached,) = cache.iterdir()
    cached.write_bytes(b"\x00not marshal data" * 10)
    tomlcache._index = None
    assert _load(path) == {"n": 1}
    tomlcache._index = None
    assert tomlcache._read_index(str(cached))  # written again, whole


def test_an_unwritable_or_switched_off_cache_changes_nothing(tmp_path, monkeypatch):
    path = tmp_path / "p.toml"
    path.write_text("n = 1\n", "utf-8")
    blocker = tmp_path / "a-file"
    blocker.write_text("", "utf-8")
    monkeypatch.setenv(CACHE_DIR_ENV, str(blocker / "cache"))  # a directory inside a file: cannot be made
    assert _load(path) == {"n": 1}
    monkeypatch.setenv(CACHE_DIR_ENV, "")
    assert tomlcache.cache_dir() is None
    assert _load(path) == {"n": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "p.toml"]


def test_bad_toml_is_reported_and_not_cached(tmp_path, cache):
    path = tmp_path / "bad.toml"
    path.write_text("n = \n", "utf-8")
    with pytest.raises(tomllib.TOMLDecodeError):
        _load(path)
    assert not cache.exists() or not tomlcache._read_index(str(next(cache.iterdir())))


def test_the_default_directory_is_the_users_cache(monkeypatch, tmp_path):
    monkeypatch.delenv(CACHE_DIR_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    if sys.platform.startswith("linux"):
        assert tomlcache.cache_dir() == str(tmp_path / "payerpolicy")


def test_every_payers_policy_is_the_same_with_and_without_the_cache(cache, monkeypatch):
    host = payerpolicy.PluginHost()
    cold = {pid: host.load_policy(host.payers[pid].policy) for pid in host.payers}
    tomlcache._index = None
    warm = {pid: host.load_policy(host.payers[pid].policy) for pid in host.payers}
    monkeypatch.setenv(CACHE_DIR_ENV, "")
    uncached = {pid: host.load_policy(host.payers[pid].policy) for pid in host.payers}
    assert cold == warm == uncached
    assert (cache / next(iter(os.listdir(cache)))).stat().st_size > 0


def test_a_policy_with_a_toml_error_reports_it_the_same_with_the_cache(tmp_path, cache, monkeypatch):
    bad = tmp_path / "bad.toml"
    bad.write_text('payer = "x"\n[settings\n', "utf-8")
    host = payerpolicy.PluginHost()
    with pytest.raises(PolicyValidationError) as cached:
        host.load_policy(str(bad))
    monkeypatch.setenv(CACHE_DIR_ENV, "")
    with pytest.raises(PolicyValidationError) as uncached:
        host.load_policy(str(bad))
    assert [str(p) for p in cached.value.problems] == [str(p) for p in uncached.value.problems]
    assert "valid TOML" in str(cached.value.problems[0])
