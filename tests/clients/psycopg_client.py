"""psycopg 3 against Sundial: connect, discover tables and columns, a time-bucketed
aggregate with a bound timestamptz parameter (text and binary results), a timestamp
round-trip. Prints one JSON object; any failure exits non-zero."""
import datetime
import json
import sys

import psycopg

dsn = sys.argv[1]
out = {}
with psycopg.connect(dsn) as conn:
    out["server_version"] = conn.info.server_version
    out["parameter_timezone"] = conn.info.parameter_status("TimeZone")
    cur = conn.cursor()
    cur.execute(
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_schema = 'public' ORDER BY table_name"
    )
    out["tables"] = [r[0] for r in cur.fetchall()]
    cur.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_name = %s ORDER BY ordinal_position",
        ("cpu",),
    )
    out["columns"] = [list(r) for r in cur.fetchall()]
    start = datetime.datetime(2024, 5, 1, 10, 0, tzinfo=datetime.timezone.utc)
    sql = (
        "SELECT date_bin(INTERVAL '5 minutes', time) AS t, avg(usage_user) AS v, count(*) AS n "
        "FROM cpu WHERE time >= %s GROUP BY 1 ORDER BY 1"
    )
    for binary in (False, True):
        c = conn.cursor(binary=binary)
        c.execute(sql, (start,))
        out["buckets_binary" if binary else "buckets_text"] = [
            [r[0].isoformat(), r[1], r[2]] for r in c.fetchall()
        ]
    cur.execute("SELECT time FROM cpu ORDER BY time LIMIT 1")
    t = cur.fetchone()[0]
    cur.execute("SELECT %s::timestamptz AS echo", (t,))
    echo = cur.fetchone()[0]
    out["roundtrip"] = [t.isoformat(), echo.isoformat()]
    conn.commit()
print(json.dumps(out))
