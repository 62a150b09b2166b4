"""`parammem model SPEC`: resolve a backbone (assembling/converting a packaged one)."""

from __future__ import annotations

from parammem.models import resolve_model


def register(parser) -> None:
    parser.add_argument("spec", help="hub id, local directory, or package:<name>")


def run(args) -> int:
    print(resolve_model(args.spec))
    return 0
