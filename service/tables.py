"""YAML files of the service (``endpoints.yaml``, the client keys file) read and checked against their JSON Schema."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from translator import SpecError


def read_checked(path: Path | str, schema_path: Path | str) -> Any:
    """The YAML document at ``path``, valid for the schema; else a SpecError naming the file and the place."""
    try:
        document = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        schema = json.loads(Path(schema_path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, ValueError) as exc:
        raise SpecError(f"{path}: cannot be read: {exc}") from exc
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(document))
    if error is not None:
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path).lstrip(".")
        raise SpecError(f"{path}: at {where or '(document root)'}: {error.message}")
    return document
