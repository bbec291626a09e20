"""The container starts the service with the very command the README tells people to run."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = ".venv/bin/"
"""The README runs the venv's console script; the image has that venv on its PATH."""


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, comments dropped and continuation lines joined."""
    joined = re.sub(
        r"\\\n",
        " ",
        "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")),
    )
    instructions = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, arguments = line.strip().partition(" ")
            instructions.append((keyword.upper(), arguments.strip()))
    return instructions


def final_stage(instructions: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The instructions of the last stage (the image that runs)."""
    starts = [i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM"]
    return instructions[starts[-1] :]


def exec_form(arguments: str) -> list[str]:
    """The argv of an exec-form (JSON array) CMD or ENTRYPOINT."""
    argv = json.loads(arguments)
    assert isinstance(argv, list), f"not the exec form: {arguments}"
    assert all(isinstance(arg, str) for arg in argv)
    return argv


def readme_start_command(readme: str) -> list[str]:
    """The argv that starts the service in the README's first set-up command.

    That command is `python3 -m venv .venv && ... && .venv/bin/rating-service
    serve`: the part after the last `&&` is what runs the service.
    """
    setup = readme.split("## Set up", 1)[1]
    block = re.search(r"```sh\n(.*?)```", setup, re.DOTALL)
    assert block is not None, "no sh block under '## Set up'"
    first_command = block.group(1).strip().splitlines()[0]
    return shlex.split(first_command.rsplit("&&", 1)[-1])


def test_the_image_runs_the_readme_s_start_command() -> None:
    """The Dockerfile's CMD is the README's run command, less the venv's bin/ prefix."""
    stage = final_stage(dockerfile_instructions((ROOT / "Dockerfile").read_text()))
    commands = [arguments for keyword, arguments in stage if keyword == "CMD"]
    entrypoints = [arguments for keyword, arguments in stage if keyword == "ENTRYPOINT"]
    readme_argv = readme_start_command((ROOT / "README.md").read_text())

    assert entrypoints == [], "an ENTRYPOINT would run before (and change) the CMD"
    assert commands, "the image has no CMD"
    assert readme_argv[0].startswith(VENV_BIN), readme_argv
    assert exec_form(commands[-1]) == [readme_argv[0].removeprefix(VENV_BIN), *readme_argv[1:]]
    assert exec_form(commands[-1]) == ["rating-service", "serve"]


def test_the_readme_command_is_parsed_from_the_set_up_section() -> None:
    """The parser takes the first command's last `&&` part, and only that."""
    readme = (
        "# x\n\n## Set up\n\nRun it:\n\n```sh\n"
        "python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/rating-service serve\n"
        "```\n\n```sh\n.venv/bin/pytest\n```\n"
    )

    assert readme_start_command(readme) == [".venv/bin/rating-service", "serve"]
