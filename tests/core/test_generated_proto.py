"""The committed gRPC/protobuf modules are exactly what the pinned grpcio-tools makes from
proto/blit.proto (so an edited .proto cannot ship with stale generated code)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
GENERATED = ["blit_pb2.py", "blit_pb2.pyi", "blit_pb2_grpc.py"]


def test_generated_code_matches_the_proto(tmp_path: Path) -> None:
    (tmp_path / "proto").mkdir()
    shutil.copy(REPO / "proto" / "blit.proto", tmp_path / "proto" / "blit.proto")
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", "-Iblit_core/net/generated=proto",
         "--python_out=.", "--grpc_python_out=.", "--pyi_out=.", "proto/blit.proto"],
        cwd=tmp_path, check=True, capture_output=True)
    for name in GENERATED:
        made = (tmp_path / "blit_core" / "net" / "generated" / name).read_text()
        committed = (REPO / "blit_core" / "net" / "generated" / name).read_text()
        assert made == committed, f"{name} is stale: regenerate it (see proto/README.md)"
