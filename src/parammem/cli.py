"""`parammem <command>`: the entry point people and workflow/scripts use.

Each command lives in the module that owns it and exposes `register(parser)` and
`run(args) -> int`; modules are imported lazily so `parammem grade` never imports torch.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS = {
    "grade": ("parammem.grading.cli", "grade predictions of a dataset in the sandbox"),
    "evaluate": ("parammem.methods.cli", "run one (method, dataset, backbone) cell"),
    "synthesize": ("parammem.training.synthesis_cli", "teacher reflection synthesis"),
    "train-reflector": ("parammem.training.sft_cli", "LoRA SFT of the ParamMem reflector"),
    "train-retroformer": ("parammem.training.pg_cli", "policy-gradient Retroformer reflector"),
    "report": ("parammem.report.cli", "per-cell CSVs, paper table and HTML report"),
    "model": ("parammem.models_cli", "resolve / prepare a backbone model"),
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="parammem", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        parser.parse_args(argv)  # prints help / the error for an unknown command
        return 2
    module = importlib.import_module(COMMANDS[argv[0]][0])
    cmd_parser = argparse.ArgumentParser(prog=f"parammem {argv[0]}")
    module.register(cmd_parser)
    return int(module.run(cmd_parser.parse_args(argv[1:])) or 0)


if __name__ == "__main__":
    sys.exit(main())
