# Test cases for lowart-rules.yml: `semgrep --test .ci/semgrep` checks that each rule fires on
# the lines marked `ruleid` and stays quiet on those marked `ok`. Never imported or run.
# ruff: noqa
import asyncio
import hashlib
import hmac
import os
import pickle
import ssl
import subprocess

import httpx
import sqlalchemy as sa
import yaml


async def cases(session, conn, log, raw, key_hash, user_input, headers, api_key):
    # ruleid: subprocess-shell
    subprocess.run(user_input, shell=True)
    # ok: subprocess-shell
    subprocess.run(["ls", user_input])
    # ruleid: subprocess-shell
    os.system(user_input)
    # ruleid: subprocess-shell
    await asyncio.create_subprocess_shell(user_input)

    # ruleid: yaml-unsafe-load
    yaml.load(raw)
    # ruleid: yaml-unsafe-load
    yaml.load(raw, Loader=yaml.Loader)
    # ok: yaml-unsafe-load
    yaml.load(raw, Loader=yaml.SafeLoader)
    # ok: yaml-unsafe-load
    yaml.safe_load(raw)

    # ruleid: pickle-or-marshal-load
    pickle.loads(raw)

    # ruleid: digest-compare-not-constant-time
    if hash_key(user_input) == key_hash:
        pass
    # ruleid: digest-compare-not-constant-time
    if hmac.new(b"k", raw, hashlib.sha256).hexdigest() == user_input:
        pass
    # ok: digest-compare-not-constant-time
    if hmac.compare_digest(hash_key(user_input), key_hash):
        pass

    # ruleid: credential-in-log-keyword
    log.info("upstream_call", headers=headers)
    # ruleid: credential-in-log-keyword
    log.warning("bad_key", api_key=api_key)
    # ruleid: credential-in-log-keyword
    log.error("refused", authorization=raw)
    # ok: credential-in-log-keyword
    log.info("upstream_call", api_key_set=bool(api_key), model_id="m")

    # ruleid: credential-in-log-fstring
    log.info(f"calling with {api_key}")
    # ok: credential-in-log-fstring
    log.info(f"calling model {user_input}")

    # ruleid: upstream-request-follows-redirects
    await session.post("http://vendor/v1", data=raw)
    # ruleid: upstream-request-follows-redirects, httpx-follows-redirects
    await session.request("GET", "http://vendor/view", allow_redirects=True)
    # ok: upstream-request-follows-redirects
    await session.post("http://vendor/v1", data=raw, allow_redirects=False)

    # ruleid: httpx-follows-redirects
    httpx.AsyncClient(follow_redirects=True)

    # ruleid: tls-verification-off
    httpx.AsyncClient(verify=False)
    # ruleid: tls-verification-off
    await session.post("https://vendor/v1", ssl=False, allow_redirects=False)
    # ruleid: tls-verification-off
    ssl._create_unverified_context()

    # ruleid: sql-built-from-strings
    await conn.execute(sa.text(f"SELECT * FROM users WHERE user_id = '{user_input}'"))
    # ruleid: sql-built-from-strings
    await conn.exec_driver_sql(f"DELETE FROM jobs WHERE job_id = '{user_input}'")
    # ruleid: sql-built-from-strings
    conn.execute("SELECT %s" % user_input)
    # ok: sql-built-from-strings
    conn.execute(f"PRAGMA busy_timeout={int(user_input)}")
    # ok: sql-built-from-strings
    await conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_LOCK_ID})")
    # ok: sql-built-from-strings
    await conn.execute(sa.text("SELECT 1 WHERE x = :x"), {"x": user_input})
