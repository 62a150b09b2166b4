"""Grading: knows nothing of tasks.

- `parammem.grading.sandbox`  -- one sandboxed process per candidate (`Sandbox`,
  `Limits`, `get_sandbox`), fork server under full isolation;
- `parammem.grading.code`     -- `run_asserts` / `run_script` / `run_stdio` /
  `run_functional`, `extract_code`, Reflexion-style `format_feedback`;
- `parammem.grading.math`     -- `extract_answer`, `is_equivalent` (math-verify);
- `parammem.grading.qa`       -- `normalize_answer`, `exact_match`, `f1_score`,
  `extract_answer`;
- `parammem.grading.cli`      -- ``parammem grade``.

Submodules are imported on use (``parammem grade`` never imports torch).
"""
