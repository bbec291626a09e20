"""Generate the Python code and mypy stubs for protos/ into the client package.

The generated modules live in ``rating_client.v1`` (the client distribution
carries the wire types; the server depends on it). protoc names them after the
proto package (``rating.v1``), so their cross-imports are rewritten here.
Run it after every change to ``protos/``; CI runs it and fails on a diff.
"""

from __future__ import annotations

import importlib.resources
import shutil
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
OUT = ROOT / "clients" / "python" / "src" / "rating_client" / "v1"
GENERATED = ("rating_pb2.py", "rating_pb2.pyi", "rating_pb2_grpc.py", "rating_pb2_grpc.pyi")


def main() -> int:
    bindir = Path(sys.executable).parent
    well_known = str(importlib.resources.files("grpc_tools") / "_proto")
    with tempfile.TemporaryDirectory() as tmp:
        args = [
            "protoc",
            f"--plugin=protoc-gen-mypy={bindir / 'protoc-gen-mypy'}",
            f"--plugin=protoc-gen-mypy_grpc={bindir / 'protoc-gen-mypy_grpc'}",
            f"-I{PROTOS}",
            f"-I{well_known}",
            f"--python_out={tmp}",
            f"--mypy_out={tmp}",
            f"--grpc_python_out={tmp}",
            f"--mypy_grpc_out={tmp}",
            str(PROTOS / "rating" / "v1" / "rating.proto"),
        ]
        if protoc.main(args) != 0:
            print("protoc failed", file=sys.stderr)
            return 1
        OUT.mkdir(parents=True, exist_ok=True)
        for name in GENERATED:
            text = (Path(tmp) / "rating" / "v1" / name).read_text()
            text = text.replace("from rating.v1 import", "from rating_client.v1 import")
            text = text.replace("import rating.v1.rating_pb2", "import rating_client.v1.rating_pb2")
            text = text.replace("rating.v1.rating_pb2.", "rating_client.v1.rating_pb2.")
            (OUT / name).write_text(text)
    (OUT / "__init__.py").write_text(
        '"""Generated from protos/rating/v1/rating.proto by scripts/gen_protos.py."""\n'
    )
    shutil.rmtree(OUT / "__pycache__", ignore_errors=True)
    print(f"generated {', '.join(GENERATED)} in {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
