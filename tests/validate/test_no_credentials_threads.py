"""Scans from several threads (environments validated in parallel) each run their own gitleaks process in
their own directory of links, and each finds what is in its files."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from doxops.validate.rules import no_credentials


def test_parallel_scans_from_threads_all_find_their_credential(tmp_path, monkeypatch):
    monkeypatch.setenv("DOX_CACHE_DIR", str(tmp_path / "cache"))
    no_credentials._MEMO.clear()
    groups = []
    for g in range(4):
        files = []
        for i in range(3):
            path = tmp_path / f"g{g}-{i}.yaml"
            path.write_text(f"metadata:\n  name: x{g}{i}\ndata:\n  aws: AKIAZ3MSJV4WWNKWW{g}{i}FG\n")
            files.append(path)
        groups.append(files)
    conf = no_credentials.CONF
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda fs: no_credentials.scan(fs, conf["disableRules"], conf["ignoreKeys"]), groups))
    for files, found in zip(groups, results):
        assert sorted(p.name for p, line, kind in found) == sorted(p.name for p in files)
        assert {kind for _, _, kind in found} == {"aws-access-token"}
