"""clients/README.md says what works: its examples run and print what it shows.

The Python example is run as it stands in the README; the TypeScript one must
be clients/node/examples/quickstart.ts (which `tsc` type-checks) and is run
compiled. The Go and Java generation commands are run verbatim when their
plugins are on PATH. The Python client builds into a typed wheel.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest
from service_process import ServiceProcess

ROOT = Path(__file__).resolve().parents[2]
NODE_PACKAGE = ROOT / "clients" / "node"
README = ROOT / "clients" / "README.md"
RUN_TIMEOUT = 120.0
"""Seconds one example, build or generation gets."""
NPM_IMPORT = 'from "rating-service-client";'
"""How the README's TypeScript imports the package (the example file imports ../src)."""


def blocks(text: str) -> list[tuple[str, str]]:
    """The README's fenced code blocks as (language, body), in order."""
    return re.findall(r"^```(\w*)\n(.*?)^```$", text, re.DOTALL | re.MULTILINE)


def example_and_output(language: str) -> tuple[str, str]:
    """The first `language` block and the first `text` block after it (what it prints)."""
    found = blocks(README.read_text())
    index = next(i for i, (lang, _) in enumerate(found) if lang == language)
    output = next(body for lang, body in found[index + 1 :] if lang == "text")
    return found[index][1], output


def command_starting(prefix: str, marker: str) -> str:
    """The README's one `sh` line that starts with `prefix` and contains `marker`."""
    lines = [
        line
        for lang, body in blocks(README.read_text())
        if lang == "sh"
        for line in body.splitlines()
        if line.startswith(prefix) and marker in line
    ]
    assert len(lines) == 1, f"expected one command with {marker!r}, found {lines}"
    return lines[0]


def run(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, (
        f"{argv} exited {result.returncode}:\n{result.stdout}{result.stderr}"
    )
    return result.stdout


def test_the_python_example_prints_what_the_readme_shows(
    server: ServiceProcess, tmp_path: Path
) -> None:
    """The README's Python program, run against a fresh server, prints its output block."""
    program, output = example_and_output("python")
    script = tmp_path / "quickstart.py"
    script.write_text(program)

    assert run([sys.executable, str(script), server.address], tmp_path) == output


def test_the_typescript_example_is_the_quickstart_and_prints_what_the_readme_shows(
    server: ServiceProcess, node: Path, node_examples: Path
) -> None:
    """The README's TypeScript is examples/quickstart.ts; compiled, it prints the output block."""
    program, output = example_and_output("ts")
    source = (NODE_PACKAGE / "examples" / "quickstart.ts").read_text()

    assert NPM_IMPORT in program
    assert program.replace(NPM_IMPORT, 'from "../src/index.js";') == source
    assert run([str(node), str(node_examples / "quickstart.js"), server.address], ROOT) == output


def test_the_python_client_builds_a_typed_wheel(tmp_path: Path) -> None:
    """clients/python is a distribution of its own: py.typed, stubs, its dependencies."""
    source = tmp_path / "src-copy"
    shutil.copytree(
        ROOT / "clients" / "python",
        source,
        ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"),
    )
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
    run([*pip_wheel, "-q", str(source), "-w", str(tmp_path / "dist")], tmp_path)
    [wheel] = (tmp_path / "dist").glob("rating_service_client-*.whl")

    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        [metadata_name] = [n for n in names if n.endswith(".dist-info/METADATA")]
        metadata = Parser().parsestr(archive.read(metadata_name).decode())
    assert {
        "rating_client/py.typed",
        "rating_client/__init__.py",
        "rating_client/v1/rating_pb2.py",
        "rating_client/v1/rating_pb2.pyi",
        "rating_client/v1/rating_pb2_grpc.pyi",
    } <= names
    assert metadata["Name"] == "rating-service-client"
    requires = {
        re.split(r"[<>=!~ ;\[]", r, maxsplit=1)[0] for r in metadata.get_all("Requires-Dist")
    }
    assert {"grpcio", "grpcio-status", "protobuf", "googleapis-common-protos"} <= requires


GENERATORS = {
    # language: (marker in the README's command, plugins it needs, files it must write)
    "go": (
        '"local":"protoc-gen-go"',
        ["protoc-gen-go", "protoc-gen-go-grpc"],
        ["gen/go/rating/v1/rating.pb.go", "gen/go/rating/v1/rating_grpc.pb.go"],
    ),
    "java": (
        '"protoc_builtin":"java"',
        ["protoc", "protoc-gen-grpc-java"],
        [
            "gen/java/com/example/rating/v1/RatingServiceGrpc.java",
            "gen/java/com/example/rating/v1/RecordOutcomeRequest.java",
        ],
    ),
}


@pytest.mark.parametrize("language", sorted(GENERATORS))
def test_the_readme_s_generation_command_writes_the_stubs(language: str, tmp_path: Path) -> None:
    """The documented `npx buf generate ...` line, verbatim, in a copy of the repository's protos."""
    marker, plugins, expected = GENERATORS[language]
    command = command_starting("npx buf generate", marker)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # Debian's package installs protoc-gen-grpc-java as grpc_java_plugin (the README says so).
    debian_java = shutil.which("grpc_java_plugin")
    if shutil.which("protoc-gen-grpc-java") is None and debian_java is not None:
        (bin_dir / "protoc-gen-grpc-java").symlink_to(debian_java)
    path = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
    missing = [plugin for plugin in plugins if shutil.which(plugin, path=path) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not on PATH: the {language} command cannot run here")
    if not (ROOT / "node_modules" / ".bin" / "buf").exists():
        pytest.skip("node_modules/.bin/buf is missing: run `npm ci` at the repository root")
    work = tmp_path / "repo"
    work.mkdir()
    shutil.copytree(ROOT / "protos", work / "protos")
    shutil.copy(ROOT / "buf.yaml", work / "buf.yaml")
    (work / "node_modules").symlink_to(ROOT / "node_modules")

    run(["bash", "-c", command], work, env={**os.environ, "PATH": path})

    written = sorted(str(p.relative_to(work)) for p in (work / "gen").rglob("*") if p.is_file())
    assert set(expected) <= set(written), written
    assert not any("/google/" in name for name in written), "the vendored google/ files leaked"
