#!/usr/bin/env python3
"""Every TRICKLE_* variable the chart's ConfigMap sets reaches trickled.

The chart configures trickled only through the environment; a variable
trickled does not read would be a setting silently ignored. For each one,
trickled is started with an invalid value and must stop at once with exit
code 2 and a message naming the setting (no database is needed: the
configuration is checked before any connection).

  env_settings_test.py TRICKLED
"""
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

# variable -> (invalid value, what the error must say)
INVALID = {
    "TRICKLE_SLOT_NAME": ("", "--slot-name, --publication-name and --data-dir must not be empty"),
    "TRICKLE_PUBLICATION_NAME": ("", "--slot-name, --publication-name and --data-dir must not be empty"),
    "TRICKLE_DATA_DIR": ("", "--slot-name, --publication-name and --data-dir must not be empty"),
    "TRICKLE_LOG_LEVEL": ("chatty", "chatty"),
    "TRICKLE_CREATE_MISSING": ("maybe", "TRICKLE_CREATE_MISSING"),
    "TRICKLE_SET_REPLICA_IDENTITY": ("maybe", "TRICKLE_SET_REPLICA_IDENTITY"),
    "TRICKLE_PROTOCOL_VERSION": ("3", "--protocol-version=3"),
    "TRICKLE_STATUS_INTERVAL": ("soon", "TRICKLE_STATUS_INTERVAL"),
    "TRICKLE_SYNC_INTERVAL": ("soon", "TRICKLE_SYNC_INTERVAL"),
    "TRICKLE_MAX_PARALLEL_WORKERS": ("33", "--max-parallel-workers=33"),
    "TRICKLE_MAX_CONSECUTIVE_FAILURES": ("0", "--max-consecutive-failures"),
    "TRICKLE_DEBOUNCE": ("soon", "TRICKLE_DEBOUNCE"),
    "TRICKLE_HISTORY_RETENTION_DAYS": ("-1", "--history-retention-days"),
    "TRICKLE_HISTORY_MAX_ROWS": ("-1", "--history-max-rows"),
    "TRICKLE_GRPC_ADDRESS": ("7433", "--grpc-address=7433"),
}
# Read, but not checked before trickled binds it (after connecting):
# TRICKLE_HTTP_ADDRESS. Not trickled's: TRICKLE_ADDRESS (the CLI's).
NOT_CHECKED_HERE = {"TRICKLE_HTTP_ADDRESS", "TRICKLE_ADDRESS"}


def main(trickled):
    template = open(os.path.join(ROOT, "charts", "trickle", "templates", "configmap.yaml")).read()
    keys = set(re.findall(r"^\s+(TRICKLE_[A-Z_]+):", template, re.M))
    passed, failed = 0, 0

    def check(cond, what):
        nonlocal passed, failed
        print(("ok   " if cond else "FAIL ") + what)
        if cond:
            passed += 1
        else:
            failed += 1

    check(keys - NOT_CHECKED_HERE == set(INVALID),
          f"the ConfigMap's variables are the ones checked here (ConfigMap only: "
          f"{sorted(keys - NOT_CHECKED_HERE - set(INVALID))}, here only: {sorted(set(INVALID) - keys)})")
    base = {k: v for k, v in os.environ.items() if not k.startswith("TRICKLE_")}
    base["TRICKLE_DSN"] = "host=/nonexistent dbname=none"
    # Should a setting be ignored, trickled goes on to open its change log:
    # somewhere harmless.
    scratch = tempfile.mkdtemp(prefix="trickle-env-test-")
    base["TRICKLE_DATA_DIR"] = os.path.join(scratch, "data")
    for var, (value, expect) in sorted(INVALID.items()):
        env = dict(base, **{var: value})
        r = subprocess.run([trickled], env=env, cwd=scratch, capture_output=True, text=True, timeout=30)
        ok = r.returncode == 2 and expect in r.stderr
        check(ok, f"{var}={value!r}: exit 2 naming it (exit {r.returncode}: {r.stderr.strip()[:160]})")
    subprocess.run(["rm", "-rf", scratch])
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
