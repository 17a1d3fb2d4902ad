"""README.md's runnable blocks, run in order against a real ``mission-control dev``: the README cannot drift.

Issue 14 found README blocks that failed when copied: a bare ``mission-control`` that is not on a new
shell's PATH, an example without ``import os``, ``mc`` used before it was defined. A fenced block
whose info string carries the word ``runnable`` (```` ```sh runnable ````, ```` ```python runnable
````; GitHub reads only the first word) is run here as a newcomer would copy it: at the repository
root, after ``make dev`` in another shell, in the order the README gives.

- Shell blocks run one by one in ``bash`` with ``set -euo pipefail`` and what ``source
  .mission-control/dev.env`` gives (``MC_URL``, ``MC_ADMIN_TOKEN``, ``MC_SIGNING_SECRET``). The
  virtualenv is not on PATH, as in a new shell, and a bare ``mission-control`` is shadowed by a
  script that fails, so a block must say ``.venv/bin/mission-control`` even on a machine where the
  command happens to be installed.
- Python blocks run in one interpreter session (the venv's), in order, so a later block may use what
  an earlier one defined, as when they are pasted into one file or REPL.
- ``check=NAME`` runs ``CHECKS[NAME]`` in that session after the block: an example that only defines
  something (a Flask receiver, a test function) is also called.
- ``timeout=S`` overrides the 60 s a block may take.
- A shell comment giving the expected JSON answer (``# {"status":"ok","checks":{}}``, ``# 401
  {"error":...}``) is checked loosely: every piece between ``...`` must appear in the block's output.

The stack runs in a temporary directory that looks like the repository root (its entries linked,
``.venv`` the environment running the tests), so the ``.mission-control/`` directory and SQLite files
``mission-control dev`` writes into its working directory stay there, on spare ports. Traffic stays
on this machine: this process is guarded by tests/network_guard.py, and every Python process the test
starts (the stack, the CLI, the Python session) loads the same guard from a sitecustomize on
PYTHONPATH, which also refuses to resolve any name but ``localhost``. Runnable blocks still register
only targets on the stack itself (curl is not guarded); a block whose targets are off this machine
stays unmarked.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.conftest import free_port, wait_until

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
RUNNABLE = "runnable"
SHELLS = frozenset({"sh", "bash", "shell", "console"})
DEFAULT_TIMEOUT_S = 60.0
# An opening or closing fence; fences inside list items are indented, so any indentation counts.
_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
# An expected answer in a shell comment: `# {...}`, `# 401 {...}`, `# 202, {...}`.
_EXPECTED = re.compile(r"(?:^|\s)#\s+(?:\d{3},?\s+)?(?P<json>\{.*)$")
_ELLIPSIS = re.compile(r"\.\.\.|…")
_DONE = "\x1emc-readme-block-done"


@dataclass(frozen=True)
class Block:
    """One fenced block: where it opens (1-based line), its language, the rest of its info string."""

    line: int
    language: str
    words: tuple[str, ...]
    code: str

    @property
    def runnable(self) -> bool:
        return RUNNABLE in self.words

    def option(self, key: str) -> str | None:
        for word in self.words:
            name, sep, value = word.partition("=")
            if sep and name == key:
                return value
        return None

    @property
    def timeout_s(self) -> float:
        value = self.option("timeout")
        return float(value) if value else DEFAULT_TIMEOUT_S

    def __str__(self) -> str:
        info = " ".join([self.language, *self.words])
        return f"README.md:{self.line} ```{info}\n{self.code}```"


class BlockFailed(AssertionError):
    """A runnable block exited non-zero, ran past its timeout or did not print what it promises."""

    def __init__(self, block: Block, why: str, output: str) -> None:
        super().__init__(f"{why}\n--- block ---\n{block}\n--- output ---\n{output.rstrip()}\n---")


def parse_blocks(text: str) -> list[Block]:
    """The fenced blocks of a Markdown text, in order (a CommonMark subset: backtick and tilde fences,
    a closing fence at least as long as its opening, an unclosed fence running to the end)."""
    lines = text.splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if opening is None or (opening["fence"][0] == "`" and "`" in opening["info"]):
            index += 1
            continue
        fence, indent = opening["fence"], len(opening["indent"])
        body: list[str] = []
        end = index + 1
        while end < len(lines):
            closing = _FENCE.match(lines[end])
            if (
                closing is not None
                and closing["fence"][0] == fence[0]
                and len(closing["fence"]) >= len(fence)
                and not closing["info"].strip()
            ):
                break
            line = lines[end]
            body.append(line[min(indent, len(line) - len(line.lstrip(" "))) :])  # the fence's indentation
            end += 1
        info = opening["info"].split()
        code = "".join(f"{line}\n" for line in body)
        blocks.append(Block(index + 1, info[0] if info else "", tuple(info[1:]), code))
        index = end + 1
    return blocks


def expected_fragments(block: Block) -> list[str]:
    """The pieces of the JSON answers a shell block's comments promise, to be found in its output."""
    fragments = []
    for line in block.code.splitlines():
        found = _EXPECTED.search(line)
        if found is not None:
            fragments += [piece.strip() for piece in _ELLIPSIS.split(found["json"]) if piece.strip()]
    return fragments


# Run in the Python session after a block that says check=NAME; they see the block's names.
CHECKS: dict[str, str] = {
    # The receiver refuses an unsigned request and accepts a trigger the dev stack really signs (billing
    # has no secret of its own, so its jobs are signed with MC_SIGNING_SECRET).
    "receiver": textwrap.dedent(
        """
        import os, threading
        from werkzeug.serving import make_server
        from mission_control.client import MissionControl

        os.environ["BILLING_SIGNING_SECRET"] = os.environ["MC_SIGNING_SECRET"]
        unsigned = app.test_client().post("/nightly-report", json={"format": "pdf"})
        assert unsigned.status_code == 401, unsigned
        server = make_server("127.0.0.1", 0, app)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        client = MissionControl(os.environ["MC_URL"], token=os.environ["MC_ADMIN_TOKEN"])
        try:
            client.put_job(
                {
                    "name": "billing.readme-receiver",
                    "service": "billing",
                    "target": {"url": f"http://127.0.0.1:{server.server_port}/nightly-report"},
                    "schedule": {"every_s": 86400},
                }
            )
            run = client.trigger("billing.readme-receiver", wait=True, timeout_s=30)
            assert run["status"] == "succeeded", run
        finally:
            client.delete_job("billing.readme-receiver")
            server.shutdown()
        """
    ),
    "test_approval": "test_approval()\n",
}

# A Python session: reads one JSON request a line, runs its code in one namespace (or a copy of it),
# prints its traceback if it raised, then a line with the marker and "ok" or "failed".
_SESSION = textwrap.dedent(
    f"""
    import json, linecache, signal, sys, traceback

    namespace = {{"__name__": "__main__"}}

    def expired(signum, frame):
        raise TimeoutError("the block ran past its timeout")

    signal.signal(signal.SIGALRM, expired)
    for request in sys.stdin:
        request = json.loads(request)
        code, filename = request["code"], request["filename"]
        linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
        ok = True
        signal.setitimer(signal.ITIMER_REAL, request["timeout_s"])
        try:
            exec(compile(code, filename, "exec"), dict(namespace) if request["isolated"] else namespace)
        except BaseException:
            ok = False
            traceback.print_exc(file=sys.stdout)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        print("\\n{_DONE}", "ok" if ok else "failed", flush=True)
    """
)


class BlockRunner:
    """Runs blocks in order in ``cwd`` with ``env``: shell blocks each in bash, Python ones in one session."""

    def __init__(self, cwd: Path, env: Mapping[str, str], python: str = sys.executable) -> None:
        self.cwd = cwd
        self.env = dict(env)
        self.python = python
        self._session: subprocess.Popen[str] | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()

    def __enter__(self) -> BlockRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(self, block: Block) -> str:
        """Run one block; its output (stdout and stderr), or BlockFailed."""
        if block.language in SHELLS:
            output = self._bash(block)
            missing = [piece for piece in expected_fragments(block) if piece not in output]
            if missing:
                raise BlockFailed(block, f"the output lacks what its comments promise: {missing}", output)
            return output
        if block.language == "python":
            output = self._python(block, block.code, isolated=False)
            name = block.option("check")
            if name is not None:
                if name not in CHECKS:
                    raise BlockFailed(block, f"check={name} names no check in tests/test_readme.py", output)
                output += self._python(block, CHECKS[name], isolated=True, what=f"its check {name!r}")
            return output
        raise BlockFailed(block, f"a {block.language or 'plain'} block cannot be run", "")

    def close(self) -> None:
        if self._session is not None and self._session.poll() is None:
            self._session.stdin.close()  # type: ignore[union-attr]
            try:
                self._session.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self._session.pid, signal.SIGKILL)
                self._session.wait()

    def _bash(self, block: Block) -> str:
        process = subprocess.Popen(
            ["bash", "-c", "set -euo pipefail\n" + block.code],
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # one group: a timeout kills what the block started too
        )
        try:
            output, _ = process.communicate(timeout=block.timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            output, _ = process.communicate()
            raise BlockFailed(block, f"still running after {block.timeout_s} s", output) from None
        if process.returncode != 0:
            raise BlockFailed(block, f"bash exited with {process.returncode}", output)
        return output

    def _python(self, block: Block, code: str, *, isolated: bool, what: str = "it") -> str:
        session = self._start_session()
        request = {
            "code": code,
            "filename": f"README.md:{block.line}" if not isolated else f"<check of README.md:{block.line}>",
            "timeout_s": block.timeout_s,
            "isolated": isolated,
        }
        session.stdin.write(json.dumps(request) + "\n")  # type: ignore[union-attr]
        session.stdin.flush()  # type: ignore[union-attr]
        deadline = time.monotonic() + block.timeout_s + 15  # the session's own alarm fires first
        output: list[str] = []
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                os.killpg(session.pid, signal.SIGKILL)
                raise BlockFailed(
                    block, f"the Python session did not finish {what}", "".join(output)
                ) from None
            if line is None:
                raise BlockFailed(block, f"the Python session exited running {what}", "".join(output))
            if line.startswith(_DONE):
                text = "".join(output).removesuffix("\n")
                if line.split()[-1] != "ok":
                    raise BlockFailed(block, f"{what} raised", text)
                return text
            output.append(line)

    def _start_session(self) -> subprocess.Popen[str]:
        if self._session is None:
            self._session = subprocess.Popen(
                [self.python, "-u", "-c", _SESSION],
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                start_new_session=True,
            )
            threading.Thread(target=self._read, args=(self._session,), daemon=True).start()
        if self._session.poll() is not None:
            raise AssertionError(f"the Python session exited with {self._session.returncode}")
        return self._session

    def _read(self, session: subprocess.Popen[str]) -> None:
        for line in session.stdout:  # type: ignore[union-attr]
            self._lines.put(line)
        self._lines.put(None)


def run_readme(text: str, runner: BlockRunner) -> list[Block]:
    """Run the runnable blocks of ``text`` in order, stopping at the first that fails; the blocks run.
    Each block's output is printed, so a failure shows what the blocks before it answered."""
    blocks = [block for block in parse_blocks(text) if block.runnable]
    for block in blocks:
        print(f"=== {block}\n--- output ---\n{runner.run(block)}")
    return blocks


# --- the README against a dev stack -------------------------------------------------------------------

# Variables that would point the stack elsewhere than its own embedded defaults.
_FOREIGN = ("DATABASE_URL", "REDIS_URL", "PORT", "PROMETHEUS_MULTIPROC_DIR", "VIRTUAL_ENV", "PYTHONPATH")

_GUARD = textwrap.dedent(
    """
    # Loaded by every Python process tests/test_readme.py starts: tests/network_guard.py's rule there too.
    import importlib.util
    import socket

    _spec = importlib.util.spec_from_file_location("_mc_readme_network_guard", {guard!r})
    _guard = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_guard)
    socket.socket.connect = _guard.loopback_only(socket.socket.connect)
    socket.socket.connect_ex = _guard.loopback_only(socket.socket.connect_ex, returns_errno=True)
    _resolve = socket.getaddrinfo


    def _getaddrinfo(host, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else host
        if name and not _guard.is_this_machine(name):
            raise socket.gaierror(socket.EAI_NONAME, f"tests resolve no name but localhost, not {{name!r}}")
        return _resolve(host, *args, **kwargs)


    socket.getaddrinfo = _getaddrinfo
    """
)

_NOT_ON_PATH = """#!/bin/sh
echo "mission-control is not on a new shell's PATH: write .venv/bin/mission-control" >&2
exit 127
"""


@dataclass(frozen=True)
class DevStack:
    root: Path
    env: dict[str, str]  # for the blocks: a new shell's, plus what dev.env gives
    python: str


def _look_like_the_repository(root: Path) -> None:
    """Link the repository's entries into ``root`` (not its state or git), ``.venv`` the tests' own."""
    for entry in REPO.iterdir():
        if entry.name in {".git", ".venv", ".mission-control"} or entry.name.startswith("mission-control"):
            continue
        (root / entry.name).symlink_to(entry)
    (root / ".venv").symlink_to(Path(sys.prefix))


def newcomer_env(work: Path) -> dict[str, str]:
    """The environment of a new shell (no Mission Control settings, no virtualenv on PATH, a bare
    ``mission-control`` that fails) whose Python processes load the network guard; files go in ``work``."""
    (work / "sitecustomize.py").write_text(_GUARD.format(guard=str(REPO / "tests" / "network_guard.py")))
    tools = work / "bin"
    tools.mkdir()
    (tools / "mission-control").write_text(_NOT_ON_PATH)
    (tools / "mission-control").chmod(0o755)
    venv_bin = str(Path(sys.prefix) / "bin")
    path = [str(tools), *(p for p in os.environ.get("PATH", "").split(os.pathsep) if p and p != venv_bin)]
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("MC_", "FLOWER_", "WEB_")) and key not in _FOREIGN
    }
    return {**env, "PATH": os.pathsep.join(path), "PYTHONPATH": str(work)}


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (from /proc; empty where there is none)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _stop(process: subprocess.Popen[bytes], grace_s: float = 20) -> list[int]:
    """Ctrl-C ``mission-control dev``, as the README says; kill what is still running ``grace_s`` later
    (honcho may exit while a process below the shell it started is still stopping). Those pids."""
    started = _descendants(process.pid)
    deadline = time.monotonic() + grace_s
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    while time.monotonic() < deadline and any(_alive(pid) for pid in started):
        time.sleep(0.1)
    left = [pid for pid in started if _alive(pid)]
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return left


@pytest.fixture(scope="module")
def dev_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    """``mission-control dev`` on spare ports in a directory that looks like the repository root."""
    root = tmp_path_factory.mktemp("readme-root")
    _look_like_the_repository(root)
    work = tmp_path_factory.mktemp("readme-env")
    env = newcomer_env(work)
    port = free_port()
    flower_port = free_port()
    while flower_port == port:
        flower_port = free_port()
    log_path = work / "dev.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(root / ".venv" / "bin" / "mission-control"), "dev"],
            cwd=root,
            env={**env, "PORT": str(port), "FLOWER_PORT": str(flower_port)},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    left: list[int] = []
    try:
        saved = root / ".mission-control" / "dev.env"
        url = f"http://127.0.0.1:{port}"

        def ready() -> bool:
            if process.poll() is not None:
                raise AssertionError(
                    f"mission-control dev exited with {process.returncode}:\n{log_path.read_text()}"
                )
            try:
                return saved.exists() and requests.get(f"{url}/readyz", timeout=2).status_code == 200
            except requests.RequestException:
                return False

        wait_until(ready, 90, "mission-control dev to answer /readyz", interval_s=0.2)
        values = dict(
            line.removeprefix("export ").split("=", 1)
            for line in saved.read_text().splitlines()
            if "=" in line
        )
        assert values["MC_URL"] == url, values["MC_URL"]
        yield DevStack(root, {**env, **values}, str(root / ".venv" / "bin" / "python"))
    finally:
        left = _stop(process)
    assert not left, (
        f"Ctrl-C left processes of mission-control dev running: {left}\n{log_path.read_text()[-3000:]}"
    )


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_every_runnable_readme_block_runs_in_order_against_a_dev_stack(dev_stack: DevStack) -> None:
    with BlockRunner(dev_stack.root, dev_stack.env, python=dev_stack.python) as runner:
        ran = run_readme(README.read_text(), runner)
    assert len(ran) >= 10, [str(block) for block in ran]  # the tour, the CLI and the client at least


# --- the parser and the runner --------------------------------------------------------------------------


@pytest.fixture
def runner(tmp_path: Path) -> Iterator[BlockRunner]:
    with BlockRunner(tmp_path, {**os.environ}) as runner:
        yield runner


def test_it_parses_fences_with_their_language_words_and_indentation() -> None:
    text = (
        "intro\n"
        "```sh runnable timeout=5\necho one\n```\n"
        "- a list item:\n\n  ```python\n  x = 1\n  if x:\n      print(x)\n  ```\n"
        "~~~~\n```sh runnable\nnot a fence inside a longer one\n```\n~~~~\n"
        "```\nplain\n```\n"
    )
    blocks = parse_blocks(text)
    assert [(b.line, b.language, b.words) for b in blocks] == [
        (2, "sh", ("runnable", "timeout=5")),
        (7, "python", ()),
        (12, "", ()),
        (17, "", ()),
    ]
    assert blocks[0].runnable and blocks[0].timeout_s == 5
    assert blocks[1].code == "x = 1\nif x:\n    print(x)\n"
    assert not blocks[1].runnable
    assert blocks[2].code == "```sh runnable\nnot a fence inside a longer one\n```\n"


def test_a_block_not_marked_runnable_is_not_run(runner: BlockRunner, tmp_path: Path) -> None:
    text = (
        "```sh\ntouch unmarked\n```\n\n"
        "```python\nopen('unmarked-py', 'w')\n```\n\n"
        "```sh runnable\ntouch marked\n```\n"
    )
    ran = run_readme(text, runner)
    assert [block.line for block in ran] == [9]
    assert (tmp_path / "marked").exists()
    assert not (tmp_path / "unmarked").exists() and not (tmp_path / "unmarked-py").exists()


def test_a_marked_shell_block_that_fails_fails_and_stops_the_run(runner: BlockRunner, tmp_path: Path) -> None:
    text = "```sh runnable\necho before\nfalse\necho after\n```\n```sh runnable\ntouch later\n```\n"
    with pytest.raises(BlockFailed) as failed:
        run_readme(text, runner)
    message = str(failed.value)
    assert "README.md:1" in message and "bash exited with 1" in message
    assert "before" in message and "after\n---" not in message
    assert not (tmp_path / "later").exists()


def test_a_pipeline_or_an_unset_variable_fails_a_shell_block(runner: BlockRunner) -> None:
    for code in ("false | cat\n", "echo $NOT_SET_ANYWHERE\n"):
        with pytest.raises(BlockFailed):
            runner.run(Block(1, "sh", (RUNNABLE,), code))


def test_python_blocks_share_one_session_and_a_failing_one_fails(runner: BlockRunner) -> None:
    text = "```python runnable\nx = 41\n```\n\n```python runnable\nassert x + 1 == 42\nprint('seen')\n```\n"
    run_readme(text, runner)
    with pytest.raises(BlockFailed) as failed:
        run_readme("```python runnable\nimport os\nos.environ['NOT_SET_ANYWHERE']\n```\n", runner)
    assert "KeyError: 'NOT_SET_ANYWHERE'" in str(failed.value)
    assert 'File "README.md:1", line 2' in str(failed.value)


def test_a_check_runs_after_its_block_and_an_unknown_one_fails(runner: BlockRunner) -> None:
    runner.run(
        Block(1, "python", (RUNNABLE, "check=test_approval"), "def test_approval():\n    assert 1 == 1\n")
    )
    with pytest.raises(BlockFailed, match="raised"):
        runner.run(
            Block(1, "python", (RUNNABLE, "check=test_approval"), "def test_approval():\n    assert 1 == 2\n")
        )
    with pytest.raises(BlockFailed, match="names no check"):
        runner.run(Block(1, "python", (RUNNABLE, "check=nothing-of-that-name"), "pass\n"))


def test_a_block_past_its_timeout_fails(runner: BlockRunner) -> None:
    started = time.monotonic()
    with pytest.raises(BlockFailed, match="still running"):
        runner.run(Block(1, "sh", (RUNNABLE, "timeout=0.5"), "sleep 30\n"))
    with pytest.raises(BlockFailed, match="raised"):
        runner.run(Block(1, "python", (RUNNABLE, "timeout=0.5"), "import time\ntime.sleep(30)\n"))
    assert time.monotonic() - started < 10


def test_the_json_a_comment_promises_must_appear_in_the_output(runner: BlockRunner) -> None:
    promise = '  # 401 {"error":{"code":"unauthorized",...}}\n'
    runner.run(Block(1, "sh", (RUNNABLE,), 'echo \'{"error":{"code":"unauthorized","x":1}}\'' + promise))
    with pytest.raises(BlockFailed, match="lacks what its comments promise"):
        runner.run(Block(1, "sh", (RUNNABLE,), 'echo \'{"error":{"code":"not_found"}}\'' + promise))
    assert expected_fragments(Block(1, "sh", (), "curl -s x   # the database answers\n")) == []


def test_the_newcomer_env_refuses_a_bare_command_and_names_beyond_this_machine(tmp_path: Path) -> None:
    env = newcomer_env(tmp_path)
    bare = subprocess.run(["bash", "-c", "mission-control --help"], env=env, capture_output=True, text=True)
    assert bare.returncode == 127 and ".venv/bin/mission-control" in bare.stderr
    # The child asserts the guard is in place before it tries anything, so a missing guard sends nothing.
    probe = textwrap.dedent(
        """
        import errno, socket
        assert socket.getaddrinfo.__name__ == "_getaddrinfo", "the guard is not loaded"
        try:
            socket.getaddrinfo("billing.example.com", 443)
        except socket.gaierror as exc:
            assert "resolve no name but localhost" in str(exc), exc
        else:
            raise AssertionError("billing.example.com was resolved")
        with socket.socket() as sock:
            assert sock.connect_ex(("10.0.0.1", 80)) == errno.ENETUNREACH
        socket.getaddrinfo("localhost", 80)
        print("guarded")
        """
    )
    child = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=30)
    assert child.stdout.strip() == "guarded", child.stderr
