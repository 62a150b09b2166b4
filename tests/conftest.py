import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

# Real benchmark slices live outside the repo; point the suite at them by path.
if "PARAMMEM_DATA_DIR" not in os.environ and SHARED_DATA.is_dir():
    os.environ["PARAMMEM_DATA_DIR"] = str(SHARED_DATA)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = Path(os.environ.get("PARAMMEM_DATA_DIR", SHARED_DATA))
    if not path.is_dir():
        pytest.fail(f"benchmark data not found at {path}; set PARAMMEM_DATA_DIR")
    return path


@pytest.fixture(scope="session")
def smoke_model_dir() -> str:
    """The real tiny instruct model (converted once, cached outside the repo)."""
    from parammem.models import resolve_model

    return resolve_model("package:qwen2.5-coder-0.5b-instruct")
