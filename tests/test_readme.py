"""The README's commands are the ones CI runs, and the files it points to exist."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def readme_commands() -> list[str]:
    return re.findall(r"```bash\n(.+?)\n```", (ROOT / "README.md").read_text(), flags=re.S)


def test_the_readme_opens_with_two_commands_install_and_run():
    commands = readme_commands()
    assert len(commands) >= 2
    assert "pip install -r requirements.txt" in commands[0] and "streamlit run app.py" in commands[0]
    assert "pytest" in commands[1] and "chromium" in commands[1]


def test_ci_runs_the_readme_test_command_exactly():
    ci = (ROOT / ".ci" / "run").read_text()
    assert f"TEST_COMMAND='{readme_commands()[1]}'" in ci
    assert 'bash -c "$TEST_COMMAND"' in ci and "set -euo pipefail" in ci


def test_linked_files_exist():
    text = (ROOT / "README.md").read_text()
    for target in re.findall(r"\]\(([^)#]+)\)", text):
        if not target.startswith("http"):
            assert (ROOT / target).exists(), f"README links to missing {target}"


def test_requirements_pin_a_torch_torchvision_pair():
    requirements = (ROOT / "requirements.txt").read_text()
    assert re.search(r"^torch==\d", requirements, flags=re.M) and re.search(
        r"^torchvision==\d", requirements, flags=re.M
    )
    for package in ("streamlit", "matplotlib", "numpy", "pillow"):
        assert re.search(rf"^{package}\b", requirements, flags=re.M), package


def test_readme_and_pyproject_agree_on_the_python_version():
    readme = re.search(r"Python (3\.\d+) or newer", (ROOT / "README.md").read_text())
    pyproject = re.search(r'requires-python = ">=(3\.\d+)"', (ROOT / "pyproject.toml").read_text())
    assert readme and pyproject and readme.group(1) == pyproject.group(1)


def test_requirements_comments_name_only_the_pinned_torch():
    text = (ROOT / "requirements.txt").read_text()
    pinned = re.search(r"^torch==([\d.]+)", text, flags=re.M).group(1)
    comments = " ".join(line for line in text.splitlines() if line.startswith("#"))
    for version in re.findall(r"torch (\d+\.\d+(?:\.\d+)?)", comments):
        assert pinned.startswith(version), f"requirements.txt comments on torch {version}, but pins {pinned}"


def _requirement_lines(name: str) -> list[str]:
    return [
        line.strip()
        for line in (ROOT / name).read_text().splitlines()
        if line.strip() and not line.startswith("#") and not line.startswith("-")
    ]


def _normalised(package: str) -> str:
    """A package's name as pip compares them (PEP 503): segmentation_models_pytorch is segmentation-models-pytorch."""
    return re.sub(r"[-_.]+", "-", package).lower()


def test_every_install_is_pinned_by_the_constraints_file():
    """A fresh machine gets exactly the versions the suite passed with: both requirements files read
    constraints.txt, every requirement is ==, and it agrees with the constraints' line for that package."""
    constraints = dict(line.split("==") for line in _requirement_lines("constraints.txt"))
    constraints = {_normalised(name): version for name, version in constraints.items()}
    assert "-c constraints.txt" in (ROOT / "requirements.txt").read_text().splitlines()
    assert "-r requirements.txt" in (ROOT / "requirements-dev.txt").read_text().splitlines()
    for name in ("requirements.txt", "requirements-dev.txt"):
        for line in _requirement_lines(name):
            package, _, version = line.partition("==")
            assert version, f"{name}: {line!r} is not pinned with =="
            assert constraints.get(_normalised(package)) == version, f"{name}: {line} disagrees with constraints.txt"
    for package in ("pytest", "ruff", "streamlit", "torch", "torchvision", "numpy", "pillow", "matplotlib"):
        assert package in constraints, f"constraints.txt lacks {package}"


def test_the_cpu_wheel_route_installs_the_pinned_pair_and_keeps_the_default_commands():
    """The optional CPU-only route names requirements.txt's torch and torchvision, which its +cpu builds satisfy."""
    from packaging.specifiers import SpecifierSet

    commands = readme_commands()
    cpu = next(c for c in commands if "download.pytorch.org/whl/cpu" in c)
    assert commands.index(cpu) >= 2  # after the install-and-run and the test command, which stay first
    requirements = (ROOT / "requirements.txt").read_text()
    for package in ("torch", "torchvision"):
        pinned = re.search(rf"^{package}==([\d.]+)$", requirements, flags=re.M).group(1)
        assert f"{package}=={pinned}" in cpu.split(), (package, pinned)
        assert SpecifierSet(f"=={pinned}").contains(f"{pinned}+cpu")  # so the default command keeps that build
    assert "pip install -r requirements.txt" in cpu
