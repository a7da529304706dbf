#!/usr/bin/env python3
"""Runs every archivist.dev/<Kind>/health.lua on its health_test.yaml cases with a real Lua 5.1
interpreter (Argo CD runs health checks in gopher-lua, a Lua 5.1), and checks that
argocd-cm.yaml and charts/README.md carry each script verbatim. Prints one line per case; exits 1 on a failure.

    python3 charts/argocd/test_health.py [LUA]    (default: lua5.1)
"""
import json, os, subprocess, sys, tempfile
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
LUA = sys.argv[1] if len(sys.argv) > 1 else "lua5.1"


def lua_literal(value):
    """A JSON-like value as a Lua table constructor (strings quoted with escapes)."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"[{lua_literal(k)}] = {lua_literal(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "{" + ", ".join(lua_literal(v) for v in value) + "}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if value is None:
        return "nil"
    return json.dumps(str(value))  # JSON string escapes are valid Lua escapes for these texts


def run_case(script, obj):
    harness = (
        f"obj = {lua_literal(obj)}\n"
        f"local hs = dofile({json.dumps(script)})\n"
        "io.write(hs.status, '\\n', hs.message or '', '\\n')\n"
    )
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(harness)
    try:
        out = subprocess.run([LUA, f.name], capture_output=True, text=True, check=False)
    finally:
        os.unlink(f.name)
    if out.returncode != 0:
        return None, out.stderr.strip()
    status, message = (out.stdout.split("\n") + ["", ""])[:2]
    return status, message


failures = 0
config = yaml.safe_load(open(os.path.join(HERE, "argocd-cm.yaml")))
readme = open(os.path.join(HERE, "..", "README.md")).read()
kinds = sorted(os.listdir(os.path.join(HERE, "archivist.dev")))
for kind in kinds:
    folder = os.path.join(HERE, "archivist.dev", kind)
    script = os.path.join(folder, "health.lua")
    key = f"resource.customizations.health.archivist.dev_{kind}"
    if config["data"].get(key, "").strip() != open(script).read().strip():
        print(f"FAIL argocd-cm.yaml {key} is not {os.path.relpath(script, HERE)}")
        failures += 1
    block = f"#### `archivist.dev/{kind}`\n```lua\n{open(script).read().rstrip()}\n```"
    if block not in readme:
        print(f"FAIL charts/README.md does not carry {os.path.relpath(script, HERE)} verbatim")
        failures += 1
    for case in yaml.safe_load(open(os.path.join(folder, "health_test.yaml")))["cases"]:
        status, message = run_case(script, case["object"])
        want = case["want"]
        ok = status == want["status"] and message == want["message"]
        print(f"{'ok  ' if ok else 'FAIL'} {kind}: {case['name']}" + ("" if ok else f": got {status!r} {message!r}, want {want['status']!r} {want['message']!r}"))
        failures += 0 if ok else 1
sys.exit(1 if failures else 0)
