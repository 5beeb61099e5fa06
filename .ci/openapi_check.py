#!/usr/bin/env python3
"""Validates the clinic API's OpenAPI document with an independent tool.

    openapi_check.py URL

URL is where the document is served, such as http://127.0.0.1:8080/api/v1/openapi.json from
`itb serve` (a file:// URL works too). The document is fetched with urllib and validated as
OpenAPI 3.1 by the `openapi-spec-validator` package, which shares no code with the Rust that
writes it. Prints one line: PASS with the number of paths and operations, or FAIL with why;
exits 0 on PASS and 1 otherwise.
"""

import json
import sys
import urllib.request

from openapi_spec_validator import OpenAPIV31SpecValidator, validate

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
TIMEOUT_S = 30


def main(argv):
    if len(argv) != 2:
        print("usage: openapi_check.py URL", file=sys.stderr)
        return 2
    url = argv[1]
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            document = json.loads(response.read().decode("utf-8"))
    except Exception as e:  # the fetch or the JSON: either way there is nothing to validate
        print(f"openapi: FAIL: could not read a JSON document from {url}: {e}")
        return 1
    if not isinstance(document, dict) or not str(document.get("openapi", "")).startswith("3.1."):
        print(f"openapi: FAIL: {url} is not an OpenAPI 3.1 document (openapi: {document.get('openapi') if isinstance(document, dict) else None!r})")
        return 1
    try:
        validate(document, cls=OpenAPIV31SpecValidator)
    except Exception as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        print(f"openapi: FAIL: {url}: {first}")
        return 1
    paths = document.get("paths") or {}
    operations = sum(1 for item in paths.values() for method in item if method in METHODS)
    print(f"openapi: PASS: {url} is valid OpenAPI {document['openapi']}: {len(paths)} paths, {operations} operations")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
