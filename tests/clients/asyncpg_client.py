"""asyncpg against Sundial: connect, type introspection (set_type_codec queries pg_type),
table and column discovery, a time-bucketed aggregate with a bound timestamptz parameter
(binary), a timestamp round-trip, and the pool's reset query. Prints one JSON object."""
import asyncio
import datetime
import json
import sys

import asyncpg


async def main(dsn):
    out = {}
    conn = await asyncpg.connect(dsn)
    out["server_version"] = list(conn.get_server_version())[:2]
    # Runs asyncpg's type introspection query against pg_catalog.pg_type.
    await conn.set_type_codec("json", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    rows = await conn.fetch(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1",
        "public",
    )
    out["tables"] = [r["table_name"] for r in rows]
    rows = await conn.fetch(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_name = $1 ORDER BY ordinal_position",
        "cpu",
    )
    out["columns"] = [[r[0], r[1]] for r in rows]
    start = datetime.datetime(2024, 5, 1, 10, 0, tzinfo=datetime.timezone.utc)
    rows = await conn.fetch(
        "SELECT date_bin(INTERVAL '5 minutes', time) AS t, avg(usage_user) AS v, count(*) AS n "
        "FROM cpu WHERE time >= $1 GROUP BY 1 ORDER BY 1",
        start,
    )
    out["buckets"] = [[r["t"].isoformat(), r["v"], r["n"]] for r in rows]
    t = await conn.fetchval("SELECT time FROM cpu ORDER BY time LIMIT 1")
    echo = await conn.fetchval("SELECT $1::timestamptz", t)
    out["roundtrip"] = [t.isoformat(), echo.isoformat()]
    async with conn.transaction():
        out["in_tx"] = await conn.fetchval("SELECT count(*) FROM cpu")
    await conn.execute(
        "SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL;"
    )
    await conn.close()
    # A pool runs the reset itself when a connection is released.
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    async with pool.acquire() as c:
        out["pool"] = await c.fetchval("SELECT 1")
    await pool.close()
    return out


print(json.dumps(asyncio.run(main(sys.argv[1]))))
