# Test cases for shared-rules.yml (a copy of the project's shared rules): `semgrep
# --test .ci/semgrep` checks each rule against these lines. Never imported or run.
# ruff: noqa
import ast
import importlib

import jinja2


def cases(request, log, api_key, stored_hash, given_hash, name):
    # ruleid: jinja2-unsandboxed-template
    jinja2.Template(request.body).render()
    # ruleid: dynamic-import-from-data
    importlib.import_module(name)
    # ok: dynamic-import-from-data
    importlib.import_module("json")
    # ruleid: eval-or-exec
    eval(request.body)
    # ruleid: eval-or-exec
    ast.literal_eval(request.body)
    # ruleid: secret-compare-not-constant-time
    if api_key == request.headers["x-api-key"]:
        pass
    # ruleid: secret-compare-not-constant-time
    if stored_hash.key_hash != given_hash:
        pass
    # ok: secret-compare-not-constant-time
    if api_key == None:
        pass
    # ruleid: secret-in-log-call
    log.info("key is", api_key)
    # ruleid: secret-in-log-call
    log.warning("refused", key=api_key)
