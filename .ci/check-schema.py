#!/usr/bin/env python3
"""Every scenario pitcrew ships (and the one `pitcrew init` writes) must satisfy the committed
JSON Schema, as an editor's YAML language server would check it; every bad file the schema
can see must fail it. Usage: check-schema.py SCHEMA GOOD_DIR... -- BAD_FILE..."""
import json
import sys

import jsonschema
import yaml

args = sys.argv[1:]
schema_path, rest = args[0], args[1:]
split = rest.index("--") if "--" in rest else len(rest)
good, bad = rest[:split], rest[split + 1:]
with open(schema_path) as f:
    schema = json.load(f)
jsonschema.Draft7Validator.check_schema(schema)
validator = jsonschema.Draft7Validator(schema)
failed = False
for path in good:
    with open(path) as f:
        document = yaml.safe_load(f)
    errors = list(validator.iter_errors(document))
    for e in errors:
        print(f"{path}: {'/'.join(map(str, e.path))}: {e.message}")
    failed |= bool(errors)
for path in bad:
    with open(path) as f:
        document = yaml.safe_load(f)
    if not list(validator.iter_errors(document)):
        print(f"{path}: the schema accepts it, but pitcrew rejects it")
        failed = True
print(f"schema: {len(good)} good file(s) pass, {len(bad)} bad file(s) fail")
sys.exit(1 if failed else 0)
