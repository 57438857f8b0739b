"""The package is whole: the built wheel, installed into a fresh virtual environment, runs
`flywheel --help`, applies its migrations and renders a prompt without the checkout.

The wheel is built from a copy of the sources, so the build leaves nothing in the checkout.
The fresh environment gets Flywheel's dependencies from the environment running the tests,
through a `.pth` line naming its site-packages: Python reads no `.pth` file inside that
directory, so an editable install of the checkout there stays invisible, and the only
Flywheel the fresh environment can import is the one the wheel installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("pyproject.toml", "README.md", "bot", "handlers", "adapters", "storage", "prompts")
# What a run-time read needs besides the Python modules.
DATA = (
    "prompts/outline.yml",
    "storage/migrations/env.py",
    "storage/migrations/script.py.mako",
    "adapters/web/templates/page.html",
    "adapters/web/static/program.css",
)

RENDER = """
import handlers, sys
from pathlib import Path
from handlers.drafting.ai import LIMITS, DraftInput, request_data
from handlers.drafting.prompts import PROMPTS_DIR, load_prompt

data = DraftInput(topic="Zero-downtime upgrades", context="", audience="", tags=(),
                  requester_name="Rita", expert_name="Alice", expert_bio="", notes="")
prompt = load_prompt("outline").render(request=request_data(data), limits=LIMITS)
print(Path(handlers.__file__).resolve())
print(PROMPTS_DIR.resolve())
print(prompt.messages[-1].content)
"""

pytestmark = pytest.mark.slow


def run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{' '.join(args)}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def outside_env(venv: Path) -> dict[str, str]:
    """An environment in which only the fresh venv's Flywheel can be imported."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["PATH"] = os.pathsep.join((str(venv / "bin"), env.get("PATH", "")))
    env["VIRTUAL_ENV"] = str(venv)
    return env


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("build")
    source = work / "source"
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            source.mkdir(exist_ok=True)
            shutil.copy2(path, source / name)
    run([sys.executable, "-m", "build", "--wheel", "--outdir", str(work / "dist"), "."], source)
    [built] = (work / "dist").glob("flywheel-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp("venv") / "env"
    run([sys.executable, "-m", "venv", str(venv)], venv.parent)
    python = venv / "bin" / "python"
    purelib = Path(
        run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            venv.parent,
        ).strip()
    )
    # Dependencies come from the environment running the tests, so nothing is downloaded.
    (purelib / "dependencies.pth").write_text(
        "\n".join({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}) + "\n"
    )
    run([str(python), "-m", "pip", "install", "--no-deps", "--no-index", str(wheel)], venv.parent)
    return venv


def test_the_wheel_carries_the_prompts_and_the_migrations(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert set(DATA) <= names
    assert any(n.startswith("storage/migrations/versions/") for n in names)
    assert not [n for n in names if n.split("/")[0] in ("tests", "testing", "benchmarks")]


def test_the_installed_command_answers_help(installed: Path, tmp_path: Path) -> None:
    out = run([str(installed / "bin" / "flywheel"), "--help"], tmp_path, outside_env(installed))
    assert "console" in out and "db" in out


def test_the_installed_copy_renders_a_prompt_from_its_own_files(
    installed: Path, tmp_path: Path
) -> None:
    out = run([str(installed / "bin" / "python"), "-c", RENDER], tmp_path, outside_env(installed))
    module, prompts, *rendered = out.splitlines()
    assert Path(module).is_relative_to(installed)
    assert Path(prompts).is_relative_to(installed)
    assert not Path(module).is_relative_to(ROOT)
    assert "Zero-downtime upgrades" in "\n".join(rendered)


def test_the_installed_copy_applies_its_migrations(installed: Path, tmp_path: Path) -> None:
    env = outside_env(installed)
    env["DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path / 'flywheel.db'}"
    for key in [k for k in env if k.startswith(("SLACK_", "MICROSOFT_", "FLYWHEEL_", "OPENAI_"))]:
        del env[key]
    run([str(installed / "bin" / "flywheel"), "db", "upgrade"], tmp_path, env)
    assert (tmp_path / "flywheel.db").stat().st_size > 0
