"""The README says what a fresh machine needs, and the repository's examples copy whole.

The README's two commands (``pip install . && spillover demo``; ``pip install ".[test]" &&
python -m pytest``) must pass as written on a machine with only what the README names
installed: the README's "Requirements" names every system package, ``.ci/run`` installs
exactly that list, and every package a test asks for when it is missing is on it.
"""

from __future__ import annotations

import filecmp
import re
import shlex
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
CI_RUN = ROOT / ".ci" / "run"
DEMO = "pip install . && spillover demo"
TESTS = 'pip install ".[test]" && python -m pytest'


def _section(text: str, title: str) -> str:
    found = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", text, re.S | re.M)
    assert found, f"README.md has no '## {title}' section"
    return found.group(1)


def _apt_packages(command: str) -> list[str]:
    words = shlex.split(command)
    return [w for w in words[words.index("install") + 1 :] if not w.startswith("-")]


def readme_packages() -> list[str]:
    """The Debian packages the README's Requirements section installs."""
    section = _section(README.read_text(encoding="utf-8"), "Requirements")
    commands = re.findall(r"^\s*(?:sudo )?apt-get install [^\n]+$", section, re.M)
    assert len(commands) == 1, "the Requirements name the packages in one apt-get command"
    return _apt_packages(commands[0])


def ci_packages() -> list[str]:
    """The system packages .ci/run installs before it runs the README's commands."""
    found = re.search(r"^SYSTEM_PACKAGES=\(([^)]*)\)", CI_RUN.read_text(encoding="utf-8"), re.M)
    assert found, ".ci/run lists its system packages as SYSTEM_PACKAGES=(...)"
    return found.group(1).split()


def test_the_readme_names_every_requirement_before_its_commands():
    text = README.read_text(encoding="utf-8")
    requirements = text.index("## Requirements\n")
    assert requirements < text.index("## Quick start\n")
    assert requirements < text.index(DEMO) < text.index(TESTS)
    section = _section(text, "Requirements")
    for named in ("Python 3.11", "Java 17", "Maven", "Chromium", "CJK"):
        assert named in section, named
    packages = readme_packages()
    for package in ("python3-venv", "maven", "chromium", "fonts-noto-cjk"):
        assert package in packages, package
    assert any(re.fullmatch(r"openjdk-17-(jre|jdk)(-headless)?", p) for p in packages)


def test_ci_installs_exactly_what_the_readme_names():
    assert ci_packages() == readme_packages()
    run = CI_RUN.read_text(encoding="utf-8")
    # and then runs the README's two commands' steps, in a fresh virtual environment
    assert 'python -m pip install -q ".[test]"' in run
    assert re.search(r"^python -m pytest$", run, re.M)


def test_every_package_a_test_asks_for_is_in_the_readme():
    """A test that needs a system package fails naming it ("apt-get install X"): X must be
    one the README tells a new user to install."""
    asked: set[str] = set()
    for path in sorted((ROOT / "tests").glob("*.py")):
        for command in re.findall(
            r"apt(?:-get)? install ([a-z0-9][a-z0-9 .+-]*)", path.read_text()
        ):
            asked |= {w for w in command.split() if not w.startswith("-")}
    assert {"chromium", "fonts-noto-cjk"} <= asked
    assert asked <= set(readme_packages())


def test_the_readme_packages_give_what_the_tests_look_for():
    """What the tests run, on this machine (which has the README's packages): the chromium
    command, a Noto Sans CJK font that fontconfig finds, java and mvn."""
    for program in ("chromium", "java", "mvn", "fc-list"):
        assert shutil.which(program), f"{program} missing: apt-get install " + " ".join(
            readme_packages()
        )
    fonts = subprocess.run(["fc-list", ":lang=zh-cn", "family"], capture_output=True, text=True)
    assert "Noto Sans CJK" in fonts.stdout


# --- the examples -------------------------------------------------------------------


def test_no_example_folder_holds_a_symlink():
    """``cp -r examples/jiang_case`` copies the files, not a link that breaks elsewhere."""
    examples = ROOT / "examples"
    links = [p for p in [examples, *examples.rglob("*")] if p.is_symlink()]
    assert links == []


def test_the_examples_equal_the_packaged_ones(tmp_path):
    """examples/ (what a clone shows) and the package's copies (what ``spillover demo`` and
    ``spillover.examples`` read) hold the same files, byte for byte; a copy made with
    ``cp -r`` is complete."""
    packaged = ROOT / "src" / "spillover" / "examples"
    folders = sorted(p.name for p in (ROOT / "examples").iterdir())
    assert folders == sorted(p.name for p in packaged.iterdir() if p.is_dir() and p.name[0] != "_")
    for name in folders:
        copy = tmp_path / name
        subprocess.run(["cp", "-r", str(ROOT / "examples" / name), str(copy)], check=True)
        assert copy.is_dir() and not copy.is_symlink()
        files = sorted(p.name for p in (packaged / name).iterdir())
        assert sorted(p.name for p in copy.iterdir()) == files
        _, differ, errors = filecmp.cmpfiles(packaged / name, copy, files, shallow=False)
        assert (differ, errors) == ([], []), name
