"""The locked dependency sets: compiled from the short top-level inputs, every package pinned and hashed."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==(\S+) \\$")


def _top_level(path: Path) -> set[str]:
    names = set()
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            names.add(re.split(r"[\[<>=!~ ]", line, maxsplit=1)[0].lower().replace("_", "-"))
    return names


def _pins(path: Path) -> dict[str, str]:
    return {m.group(1).lower(): m.group(2) for m in map(PIN.match, path.read_text().splitlines()) if m}


def _locked(path: Path) -> dict[str, int]:
    """package -> number of hashes, for each `name==version` entry of a compiled file."""
    locked, current = {}, None
    for line in path.read_text().splitlines():
        if match := PIN.match(line):
            current = match.group(1).lower()
            locked[current] = 0
        elif line.strip().startswith("--hash=sha256:") and current:
            locked[current] += 1
    return locked


@pytest.mark.parametrize(
    ("compiled", "inputs"),
    [("requirements.txt", ["requirements.in"]), ("requirements-test.txt", ["requirements-test.in"])],
)
def test_every_package_is_pinned_and_hashed_and_every_input_is_locked(compiled, inputs):
    locked = _locked(ROOT / compiled)
    text = (ROOT / compiled).read_text()

    assert locked and all(count > 0 for count in locked.values()), "a package without its hashes"
    assert not [line for line in text.splitlines() if re.match(r"^[A-Za-z]", line) and "==" not in line]
    for name in _top_level(ROOT / inputs[0]):
        assert name in locked, f"{name} is in {inputs[0]} but not locked in {compiled}"
    assert "file://" not in text and "--find-links" not in text and "--index-url" not in text


def test_the_test_set_locks_the_runtime_set_at_the_same_versions():
    runtime, test = (_pins(ROOT / name) for name in ("requirements.txt", "requirements-test.txt"))

    assert {name: test.get(name) for name in runtime} == runtime
    assert "factory-boy" not in test  # unused: removed
