// node-postgres (`pg` 8) against Sundial: connect, discover tables and columns, a
// time-bucketed aggregate with a bound timestamptz parameter (extended protocol, text
// results, untyped parameters), a named prepared statement run twice, and a timestamp
// round-trip. Prints one JSON object; any failure exits non-zero.
//
// Usage: node node_client.js CONNECTION_STRING [CA_FILE]
const fs = require("fs");
const { Client } = require(process.env.SUNDIAL_NODE_MODULES + "/pg");

async function main() {
  const [conn, ca] = process.argv.slice(2);
  const config = { connectionString: conn };
  if (ca) config.ssl = { ca: fs.readFileSync(ca).toString(), servername: "localhost" };
  const client = new Client(config);
  await client.connect();
  const out = {};
  const tables = await client.query(
    "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name");
  out.tables = tables.rows.map((r) => r.table_name);
  const columns = await client.query(
    "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = $1 ORDER BY ordinal_position",
    ["cpu"]);
  out.columns = columns.rows.map((r) => [r.column_name, r.data_type]);
  const sql = {
    name: "buckets",
    text: "SELECT date_bin(INTERVAL '5 minutes', time) AS t, avg(usage_user) AS v, count(*) AS n " +
      "FROM cpu WHERE time >= $1 GROUP BY 1 ORDER BY 1",
  };
  for (let i = 0; i < 2; i++) {
    const r = await client.query({ ...sql, values: [new Date("2024-05-01T10:00:00Z")] });
    // node-postgres returns int8 as a string, as with PostgreSQL.
    out.buckets = r.rows.map((row) => [row.t.toISOString(), row.v, row.n]);
  }
  const first = await client.query("SELECT time FROM cpu ORDER BY time LIMIT 1");
  const echo = await client.query("SELECT $1::timestamptz AS echo", [first.rows[0].time]);
  out.roundtrip = [first.rows[0].time.toISOString(), echo.rows[0].echo.toISOString()];
  await client.end();
  console.log(JSON.stringify(out));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
