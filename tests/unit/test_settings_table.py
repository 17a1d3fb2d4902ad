"""README.md's table of variables is the one the settings generate, and lists every variable read.

When the settings change, regenerate the table with the command the failure prints.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path

from mission_control.base.config import Settings
from mission_control.base.settings_doc import BEGIN, END, READ_ELSEWHERE, REGENERATE, settings_table

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "mission_control"
# The server's processes: they read the environment only through Settings (base/config.py).
SERVER_SOURCES = [
    *(
        path
        for part in ("base", "db", "outbound", "jobs", "monitoring", "missions", "execution", "scheduling",
                     "runtime", "web")
        for path in sorted((PACKAGE / part).rglob("*.py"))
    ),
    *(PACKAGE / "cli" / name for name in ("web.py", "beat.py", "db.py", "serving.py")),
    PACKAGE / "celery_app.py",
    PACKAGE / "scheduler.py",
    ROOT / "celeryconfig.py",
    ROOT / "beat_schedule.py",
]  # fmt: skip
_READS = [
    re.compile(r"""os\.environ\.get\(\s*["'](\w+)["']"""),
    re.compile(r"""os\.environ\[\s*["'](\w+)["']\s*\]"""),
    re.compile(r"""getenv\(\s*["'](\w+)["']"""),
    re.compile(r"""envvar\s*=\s*["'](\w+)["']"""),
]
_ENVVAR_LIST = re.compile(r"""envvar\s*=\s*\[([^\]]*)\]""")
_SHELL_VARIABLE = re.compile(r"\$\{?([A-Z_][A-Z0-9_]*)")


def readme_table() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert BEGIN in text and END in text, f"README.md lacks {BEGIN} ... {END}; run `{REGENERATE}`"
    return text[text.index(BEGIN) + len(BEGIN) : text.index(END)].strip("\n")


def variables_read() -> dict[str, set[str]]:
    """Every variable name read literally by Mission Control's code and its Procfile, and where."""
    found: dict[str, set[str]] = {}
    for path in [*PACKAGE.rglob("*.py"), ROOT / "celeryconfig.py", ROOT / "beat_schedule.py"]:
        source = path.read_text(encoding="utf-8")
        names = {name for pattern in _READS for name in pattern.findall(source)}
        for listed in _ENVVAR_LIST.findall(source):
            names |= set(re.findall(r"""["'](\w+)["']""", listed))
        for name in names:
            found.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    for name in _SHELL_VARIABLE.findall((ROOT / "Procfile").read_text(encoding="utf-8")):
        found.setdefault(name, set()).add("Procfile")
    return found


def test_the_readme_table_is_the_generated_one():
    generated = settings_table()
    current = readme_table()
    if current != generated:
        diff = "\n".join(
            difflib.unified_diff(
                current.splitlines(), generated.splitlines(), "README.md", "generated", lineterm=""
            )
        )
        raise AssertionError(f"README.md's table of settings is out of date; run `{REGENERATE}`\n{diff}")


def test_every_variable_read_anywhere_is_in_the_table():
    table = readme_table()
    listed = set(re.findall(r"^\| `(\w+)`(?: \(alias(?:es)? ([^)]*)\))?", table, flags=re.MULTILINE))
    names = {name for first, _ in listed for name in (first,)} | {
        alias for _, aliases in listed for alias in re.findall(r"`(\w+)`", aliases)
    }
    read = variables_read()
    assert {"MC_DATABASE_URL", "WEB_THREADS", "WORKER_CONCURRENCY"} <= set(read) | names  # the scan works
    missing = {name: sorted(where) for name, where in read.items() if name not in names}
    assert not missing, (
        f"read but not in README.md's table (add a Settings field or READ_ELSEWHERE): {missing}"
    )


def test_the_table_has_every_field_with_a_description_and_names_each_variable_once():
    names = [name for field in Settings.model_fields for name in Settings.env_names(field)]
    names += [variable.name for variable in READ_ELSEWHERE]
    assert len(names) == len(set(names))
    assert all(field.description for field in Settings.model_fields.values())
    for field in Settings.model_fields:
        assert f"| `{Settings.env_names(field)[0]}`" in settings_table()


def test_the_server_reads_the_environment_only_through_its_settings():
    readers = [
        str(path.relative_to(ROOT))
        for path in SERVER_SOURCES
        if path != PACKAGE / "base" / "config.py"
        and re.search(r"os\.environ|getenv\(", path.read_text(encoding="utf-8"))
    ]
    assert not readers, f"read the environment themselves instead of taking a Settings: {readers}"
