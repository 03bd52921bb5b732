"""DuckDB peer for benches/tsbs: one JSON request per stdin line, one JSON answer per line.

{"load": "/path/cpu.csv", "memory_limit": "4GB"}  -> {"ms": load time}
{"sql": "...", "runs": N}                          -> {"rows": n, "sum": s, "ms": [t1, ..., tN]}

Each run is execute + fetchall, timed here (DuckDB runs in this process, so there is no
wire); the fingerprint (row count, sum of every numeric value) is taken from the first run.
"""
import datetime
import decimal
import json
import sys
import time

import duckdb

con = duckdb.connect(":memory:")
con.execute("SET TimeZone = 'UTC'")


def fingerprint(rows):
    total = 0.0
    for row in rows:
        for v in row:
            if isinstance(v, bool) or v is None:
                continue
            if isinstance(v, (int, float, decimal.Decimal)):
                total += float(v)
    return len(rows), total


for line in sys.stdin:
    req = json.loads(line)
    try:
        if "load" in req:
            con.execute(f"SET memory_limit = '{req.get('memory_limit', '4GB')}'")
            con.execute(f"SET threads = {int(req.get('threads', 2))}")
            t = time.perf_counter()
            con.execute(
                "CREATE TABLE cpu AS SELECT * FROM read_csv(?, header = true, columns = {"
                "'time': 'TIMESTAMPTZ', 'hostname': 'VARCHAR', 'region': 'VARCHAR', "
                "'datacenter': 'VARCHAR', 'rack': 'VARCHAR', 'os': 'VARCHAR', 'arch': 'VARCHAR', "
                "'team': 'VARCHAR', 'service': 'VARCHAR', 'service_version': 'VARCHAR', "
                "'service_environment': 'VARCHAR', 'usage_user': 'BIGINT', "
                "'usage_system': 'BIGINT', 'usage_idle': 'BIGINT', 'usage_nice': 'BIGINT', "
                "'usage_iowait': 'BIGINT', 'usage_irq': 'BIGINT', 'usage_softirq': 'BIGINT', "
                "'usage_steal': 'BIGINT', 'usage_guest': 'BIGINT', 'usage_guest_nice': 'BIGINT'})",
                [req["load"]],
            )
            answer = {"ms": (time.perf_counter() - t) * 1000.0}
        else:
            times = []
            first = None
            for _ in range(int(req.get("runs", 1))):
                t = time.perf_counter()
                rows = con.execute(req["sql"]).fetchall()
                times.append((time.perf_counter() - t) * 1000.0)
                if first is None:
                    first = fingerprint(rows)
            answer = {"rows": first[0], "sum": first[1], "ms": times}
    except Exception as e:  # noqa: BLE001 - reported to the harness, which fails the query
        answer = {"error": str(e)}
    sys.stdout.write(json.dumps(answer) + "\n")
    sys.stdout.flush()
