"""The data directory under attack (hardening issue #10, items 7, 9, 10, 11): one server per directory, damaged or
lost files refused at start with a clear message, `cairn recover` saying exactly what it keeps, and readiness that
fails when the store cannot commit."""
import http.client
import os
import shutil
import sqlite3
import stat
import subprocess
import tempfile
import time

import pytest
from botocore.exceptions import ClientError

from cairn_process import BINARY, CairnProcess
from conftest import client_for


def serve_once(data_dir, timeout=60):
    """Runs `cairn serve` on data_dir expecting it to refuse: (exit code, output)."""
    out = subprocess.run([BINARY, "serve", "--dev", "--port", "0", "--dns-port", "0", "--data-dir", data_dir],
                         capture_output=True, text=True, timeout=timeout)
    return out.returncode, out.stdout + out.stderr


def recover(data_dir, *args):
    out = subprocess.run([BINARY, "recover", "--data-dir", data_dir, *args], capture_output=True, text=True, timeout=60)
    return out.returncode, out.stdout + out.stderr


def fill(server, count, prefix="ns"):
    """`count` namespaces, each its own acknowledged commit."""
    sd = client_for(server.endpoint, "us-east-1")
    for i in range(count):
        sd.create_http_namespace(Name=f"{prefix}-{i:03d}")
    return sd


def namespaces(server):
    sd = client_for(server.endpoint, "us-east-1")
    names, token = [], None
    while True:
        page = sd.list_namespaces(**({"NextToken": token} if token else {}))
        names += [n["Name"] for n in page["Namespaces"]]
        token = page.get("NextToken")
        if not token:
            return sorted(names)


def killed_with(count):
    server = CairnProcess(extra_args=["--no-dns", "--health-interval", "3600"]).start()
    fill(server, count)
    server.kill()
    return server.data_dir


def readyz(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("GET", "/readyz")
    r = conn.getresponse()
    return r.status, r.read().decode()


def test_a_second_server_on_one_directory_is_refused():
    first = CairnProcess(extra_args=["--no-dns", "--health-interval", "3600"]).start()
    try:
        code, output = serve_once(first.data_dir)
        assert code == 3, output
        assert "in use by another cairn process" in output and f"pid {first.proc.pid}" in output, output
        fill(first, 1)  # the first keeps working
    finally:
        assert first.stop() == 0


def test_the_store_is_private_to_its_owner():
    server = CairnProcess(extra_args=["--no-dns", "--health-interval", "3600"]).start()
    fill(server, 1)
    assert server.stop() == 0
    path = os.path.join(server.data_dir, "cairn.sqlite")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.join(server.data_dir, "cairn.lock")).st_mode) == 0o600
    fresh = tempfile.mkdtemp(prefix="cairn-mode-")
    os.rmdir(fresh)
    s = CairnProcess(data_dir=fresh, extra_args=["--no-dns", "--health-interval", "3600"]).start()
    assert s.stop() == 0
    assert stat.S_IMODE(os.stat(fresh).st_mode) == 0o700


def test_a_damaged_wal_is_refused_and_recover_keeps_exactly_the_valid_prefix():
    data_dir = killed_with(30)
    wal = os.path.join(data_dir, "cairn.sqlite-wal")
    size = os.path.getsize(wal)
    assert size > 4096 * 10, size
    with open(wal, "r+b") as f:
        f.seek(size // 2)
        chunk = f.read(16)
        f.seek(size // 2)
        f.write(bytes(b ^ 0xFF for b in chunk))
    code, output = serve_once(data_dir)
    assert code == 3, output
    assert "cairn.sqlite-wal is damaged" in output and "cairn recover" in output, output
    code, report = recover(data_dir)
    assert code == 1 and "committed transactions after it cannot be read" in report, report
    assert os.path.getsize(wal) == size, "examining must not change the files"
    kept = int(report.split("can keep: the registry as of change ")[1].split(":")[0])
    kept_namespaces = int(report.split("change %d: " % kept)[1].split(" namespaces")[0])
    assert 0 < kept_namespaces < 30, report
    code, report = recover(data_dir, "--write")
    assert code == 1 and "damaged files are in" in report, report
    server = CairnProcess(data_dir=data_dir, extra_args=["--no-dns", "--health-interval", "3600"]).start()
    try:
        assert namespaces(server) == [f"ns-{i:03d}" for i in range(kept_namespaces)]
    finally:
        assert server.stop() == 0
    assert recover(data_dir)[0] == 0


def test_a_deleted_wal_after_kill_is_refused():
    data_dir = killed_with(5)
    os.remove(os.path.join(data_dir, "cairn.sqlite-wal"))
    code, output = serve_once(data_dir)
    assert code == 3 and "acknowledged changes up to" in output, output
    code, report = recover(data_dir)
    assert code == 1 and "lost: changes" in report, report


def test_a_zeroed_database_beside_its_wal_is_refused():
    # A clean stop moves everything into the database file; the WAL after the restart holds only newer pages.
    first = CairnProcess(extra_args=["--no-dns", "--health-interval", "3600"]).start()
    fill(first, 5, prefix="before")
    assert first.stop() == 0
    second = CairnProcess(data_dir=first.data_dir, extra_args=["--no-dns", "--health-interval", "3600"]).start()
    fill(second, 5, prefix="after")
    second.kill()
    data_dir = first.data_dir
    path = os.path.join(data_dir, "cairn.sqlite")
    with open(path, "r+b") as f:
        f.write(b"\0" * os.path.getsize(path))
    code, output = serve_once(data_dir)
    assert code == 3 and "refusing to start" in output, output


@pytest.mark.parametrize("which", ["middle", "last"])
def test_a_deleted_change_log_row_is_refused(which):
    server = CairnProcess(extra_args=["--no-dns", "--health-interval", "3600"]).start()
    fill(server, 20)
    assert server.stop() == 0
    db = sqlite3.connect(os.path.join(server.data_dir, "cairn.sqlite"))
    seqs = [row[0] for row in db.execute("SELECT seq FROM change_log ORDER BY seq")]
    db.execute("DELETE FROM change_log WHERE seq = ?", (seqs[len(seqs) // 2] if which == "middle" else seqs[-1],))
    db.commit()
    db.close()
    code, output = serve_once(server.data_dir)
    assert code == 3, output
    assert ("not contiguous" if which == "middle" else "acknowledged changes up to") in output, output


def test_a_deleted_data_directory_makes_writes_fail_and_the_node_unready():
    server = CairnProcess(extra_args=["--no-dns", "--health-interval", "3600"]).start()
    try:
        sd = fill(server, 2)
        assert readyz(server)[0] == 200
        shutil.rmtree(server.data_dir)
        with pytest.raises(ClientError) as e:
            sd.create_http_namespace(Name="after-delete")
        assert e.value.response["Error"]["Code"] == "ServiceUnavailable"
        status, text = readyz(server)
        assert status == 503 and "cannot commit" in text, text
        assert "after-delete" not in namespaces(server)
        assert any("store commit failed" in line for line in server.log_lines)
    finally:
        server.kill()


def test_readiness_follows_a_full_disk_and_recovers():
    mount = tempfile.mkdtemp(prefix="cairn-full-")
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", mount], capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        data_dir = os.path.join(mount, "data")
        server = CairnProcess(data_dir=data_dir, extra_args=["--no-dns", "--health-interval", "3600"]).start()
        try:
            sd = fill(server, 1)
            filler = os.path.join(mount, "filler")
            fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
            try:
                while True:
                    os.write(fd, b"\0" * 4096)
            except OSError:
                pass
            finally:
                os.close(fd)
            refused = 0
            for i in range(50):  # until the WAL has no free pages left to reuse
                try:
                    sd.create_http_namespace(Name=f"full-{i}", Description="x" * 1024)
                except ClientError as e:
                    assert e.response["Error"]["Code"] == "ServiceUnavailable"
                    refused += 1
                    break
            assert refused == 1
            assert readyz(server)[0] == 503
            os.remove(filler)
            deadline = time.time() + 30  # the probe runs at most once a second
            while readyz(server)[0] != 200 and time.time() < deadline:
                time.sleep(0.2)
            assert readyz(server)[0] == 200
            sd.create_http_namespace(Name="after-space")
        finally:
            server.stop()
    finally:
        subprocess.run(["umount", "-l", mount])
