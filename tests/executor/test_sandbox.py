"""Attacks of a source on the worker's secrets (C2 of issue 9): the environment of its parent, the
worker's files and directory. Sources run as SOURCE_USER when the worker is root, in a private directory;
the worker is non-dumpable, so even a source of its own user cannot read it through /proc."""

import os
import shutil
import stat
import subprocess
import textwrap
from pathlib import Path

import pytest
from bson import ObjectId

from executor.runner import SubprocessRunner
from executor.sandbox import removals_done
from models.execution import ExecutionStatus
from models.namespaces import workspace_database
from models.secrets import SecretKeyInvalid, secret_box_from
from tests.executor.runs import request_for
from tests.interpreters import script_python

PROJECT = Path(__file__).resolve().parents[2]
PLANTED = """
    import pwd
    targets = {
        "parent_environ": f"/proc/{os.getppid()}/environ",
        "parent_mem_maps": f"/proc/{os.getppid()}/maps",
        "key_file": spec["source"]["config"]["key_file"],
    }
    found = {}
    for name, path in targets.items():
        try:
            with open(path, "rb") as file:
                found[name] = file.read().decode(errors="replace")
        except OSError as error:
            found[name] = "denied: " + error.strerror
    try:
        found["parent_cwd"] = os.listdir(f"/proc/{os.getppid()}/cwd")
    except OSError as error:
        found["parent_cwd"] = "denied: " + error.strerror
    found["user"] = pwd.getpwuid(os.getuid()).pw_name
    found["groups"] = os.getgroups()
    found["cwd"] = os.getcwd()
    found["home"] = os.environ.get("HOME")
    emit(type="record", entity="loot", data={"id": 1, **found})
    emit(type="result", status="succeeded")
"""


@pytest.fixture
def worker_key_file(tmp_path):
    """A key file as an operator keeps it: readable by the worker's user alone."""
    secret_dir = tmp_path / "secrets"
    secret_dir.mkdir(mode=0o700)
    key = secret_dir / "secret_key"
    key.write_text("WORKER-KEY-CANARY-0123456789")
    key.chmod(0o600)
    return str(key)


def gone(path: str) -> bool:
    return not Path(path).exists()


async def loot_of(runner, script, make_job, db, clock, key_file) -> dict:
    name = await script(PLANTED)
    job = await make_job(name, sync_mode="incremental")
    await db.data_sources.update_one(
        {"_id": ObjectId(job["dataSourceId"])}, {"$set": {"config": {"key_file": key_file}}}
    )
    outcome = await runner.run(request_for(job, clock))
    assert outcome.status == ExecutionStatus.SUCCEEDED, (outcome.error, outcome.log_tail)
    loot = await db.client[workspace_database("ws-a", "warehouse")]["loot"].find_one({"_id": 1})
    await db.client[workspace_database("ws-a", "warehouse")]["loot"].delete_many({})
    return loot


async def test_a_planted_source_reads_nothing_of_the_worker(
    script, make_job, db, clock, secrets, fast_settings, worker_key_file
):
    if os.geteuid() != 0:
        pytest.skip("sources change user only when the worker runs as root")
    # The attack is real: a source running as the worker's own user (root) gets everything.
    as_root = SubprocessRunner(
        db, secrets=secrets, settings=fast_settings.model_copy(update={"source_user": "root"})
    )
    loot = await loot_of(as_root, script, make_job, db, clock, worker_key_file)
    assert loot["key_file"] == "WORKER-KEY-CANARY-0123456789"
    assert "PATH=" in loot["parent_environ"]

    runner = SubprocessRunner(db, secrets=secrets, settings=fast_settings)
    loot = await loot_of(runner, script, make_job, db, clock, worker_key_file)
    assert loot["user"] == "nobody" and loot["groups"] in ([], [65534])
    assert loot["parent_environ"].startswith("denied")
    assert loot["parent_mem_maps"].startswith("denied")
    assert loot["parent_cwd"].startswith("denied")
    assert loot["key_file"].startswith("denied")
    assert loot["cwd"].startswith("/tmp/syncjobs-source-") and loot["home"] == loot["cwd"]
    await removals_done()
    assert gone(loot["cwd"]), "the private directory outlives the run"


async def test_a_source_user_that_does_not_exist_fails_the_run_instead_of_running_as_root(
    script, make_job, db, clock, secrets, fast_settings
):
    if os.geteuid() != 0:
        pytest.skip("SOURCE_USER matters only when the worker runs as root")
    settings = fast_settings.model_copy(update={"source_user": "no-such-user-here"})
    runner = SubprocessRunner(db, secrets=secrets, settings=settings)
    outcome = await runner.run(request_for(await make_job(await script("pass")), clock))
    assert outcome.status == ExecutionStatus.FAILED and outcome.pid is None
    assert "SOURCE_USER 'no-such-user-here' does not exist" in outcome.error


PEEK_AT_PARENT = textwrap.dedent("""
    import os, subprocess, sys
    from sandbox import make_non_dumpable
    if sys.argv[1] == "harden":
        assert make_non_dumpable()
    child = subprocess.run(["cat", f"/proc/{os.getpid()}/environ"], capture_output=True)
    print("read" if b"PARENT-ENV-CANARY" in child.stdout else "denied")
""")


def peek(mode: str, module_dir: str) -> str:
    """A "worker" (hardened or not) whose child of the same user tries to read its environment."""
    as_nobody = {"user": "nobody", "group": "nogroup", "extra_groups": []} if os.geteuid() == 0 else {}
    result = subprocess.run(
        [script_python(), "-c", PEEK_AT_PARENT, mode],
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": module_dir, "SECRET": "PARENT-ENV-CANARY"},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
        cwd="/",
        **as_nobody,
    )
    return result.stdout.strip()


def test_a_non_dumpable_worker_hides_its_environment_from_children_of_its_own_user(readable_dir):
    # A copy the unprivileged user can import wherever the checkout lives (sandbox.py imports only stdlib).
    shutil.copy(PROJECT / "executor" / "sandbox.py", readable_dir)
    Path(readable_dir, "sandbox.py").chmod(0o644)
    assert peek("plain", readable_dir) == "read"
    assert peek("harden", readable_dir) == "denied"


def test_the_secret_key_may_come_from_a_file(settings, worker_key_file, tmp_path):
    from cryptography.fernet import Fernet

    key = Fernet.generate_key().decode()
    Path(worker_key_file).write_text(key + "\n")
    box = secret_box_from(
        settings.model_copy(update={"syncjobs_secret_key": None, "syncjobs_secret_key_file": worker_key_file})
    )
    assert box.open(box.seal("x")) == "x"
    assert stat.S_IMODE(os.stat(worker_key_file).st_mode) == 0o600
    missing = settings.model_copy(
        update={"syncjobs_secret_key": None, "syncjobs_secret_key_file": str(tmp_path / "absent")}
    )
    with pytest.raises(SecretKeyInvalid, match="SYNCJOBS_SECRET_KEY_FILE cannot be read"):
        secret_box_from(missing)


async def test_the_private_directory_is_removed_with_whatever_the_source_left_in_it(
    runner, script, make_job, db, clock
):
    name = await script("""
        os.makedirs("left/behind")
        with open("left/behind/file", "w") as file:
            file.write("x")
        emit(type="record", entity="where", data={"id": 1, "cwd": os.getcwd()})
        emit(type="result", status="succeeded")
    """)
    outcome = await runner.run(request_for(await make_job(name, sync_mode="incremental"), clock))
    assert outcome.status == ExecutionStatus.SUCCEEDED, (outcome.error, outcome.log_tail)
    where = await db.client[workspace_database("ws-a", "warehouse")]["where"].find_one({"_id": 1})
    assert where["cwd"].startswith("/tmp/syncjobs-source-")
    await removals_done()  # the run does not wait for its directory's removal
    assert gone(where["cwd"])
