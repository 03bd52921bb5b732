// Grafana's PostgreSQL data source against Sundial, through the two drivers it has used:
// lib/pq (database/sql; Grafana before 12.4, simple protocol and text results when a
// query has no arguments) and pgx (Grafana 12.4 and later use pgx v5; Debian ships v4,
// whose wire behaviour is the same: extended protocol, a cached prepared statement per
// query, binary results). Each runs the SQL Grafana sends on its own: the health check,
// the config page's version and TimescaleDB probes, the query builder's discovery
// queries, and panel queries as the macros expand them.
//
// Usage: grafana_client pq|pgx DSN. Prints one line per query: `name: type,… | row; row`.
package main

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v4"
	_ "github.com/lib/pq"
)

var searchPath = `SELECT
            CASE WHEN trim(s[i]) = '"$user"' THEN user ELSE trim(s[i]) END
          FROM
            generate_series(
              array_lower(string_to_array(current_setting('search_path'),','),1),
              array_upper(string_to_array(current_setting('search_path'),','),1)
            ) as i,
            string_to_array(current_setting('search_path'),',') s`

var queries = [][2]string{
	{"health", "SELECT 1"},
	{"version", "SELECT current_setting('server_version_num')::int/100 as version"},
	{"timescaledb", "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'"},
	{"tables", `SELECT
    CASE WHEN
          quote_ident(table_schema) IN (` + searchPath + `)
      THEN quote_ident(table_name)
      ELSE quote_ident(table_schema) || '.' || quote_ident(table_name)
    END AS "table"
    FROM information_schema.tables
    WHERE quote_ident(table_schema) NOT IN ('information_schema',
                             'pg_catalog',
                             '_timescaledb_cache',
                             '_timescaledb_catalog',
                             '_timescaledb_internal',
                             '_timescaledb_config',
                             'timescaledb_information',
                             'timescaledb_experimental')
    ORDER BY CASE WHEN
          quote_ident(table_schema) IN (` + searchPath + `) THEN 0 ELSE 1 END, 1`},
	{"schema_tables", `SELECT quote_ident(table_name) AS "table" FROM information_schema.tables WHERE quote_ident(table_schema) = 'public' ORDER BY 1`},
	{"schemas", `SELECT schema_name AS "name" FROM information_schema.schemata WHERE schema_name NOT IN ('information_schema', 'pg_catalog', 'pg_toast', '_timescaledb_cache', '_timescaledb_catalog', '_timescaledb_internal', '_timescaledb_config', 'timescaledb_information', 'timescaledb_experimental') ORDER BY schema_name`},
	{"columns", `SELECT quote_ident(column_name) AS "column", data_type AS "type"
    FROM information_schema.columns
    WHERE
      CASE WHEN array_length(parse_ident('cpu'),1) = 2
        THEN quote_ident(table_schema) = (parse_ident('cpu'))[1]
          AND quote_ident(table_name) = (parse_ident('cpu'))[2]
        ELSE quote_ident(table_name) = 'cpu'
          AND
          quote_ident(table_schema) IN (` + searchPath + `)
      END`},
	{"variable", "SELECT DISTINCT hostname FROM cpu ORDER BY 1"},
	{"variable_text_value", "SELECT hostname AS __text, hostname AS __value FROM cpu GROUP BY 1, 2 ORDER BY 1"},
	// $__timeGroupAlias(time, 5m) with $__timeFilter(time), nanosecond-precision bounds.
	{"time_group", `SELECT floor(extract(epoch from time)/300)*300 AS "time", avg(usage_user) AS "usage_user" FROM cpu WHERE time BETWEEN '2024-05-01T10:00:00Z' AND '2024-05-01T10:59:59.999999999Z' GROUP BY 1 ORDER BY 1`},
	// The same with the TimescaleDB option on.
	{"time_bucket", `SELECT time_bucket('300.000s', time) AS "time", hostname AS metric, max(usage_user) FROM cpu WHERE time BETWEEN '2024-05-01T10:00:00Z' AND '2024-05-01T11:00:00Z' GROUP BY 1, 2 ORDER BY 1, 2`},
	// $__unixEpochFilter and $__time.
	{"epoch", `SELECT time AS "time", usage_user FROM cpu WHERE extract(epoch from time) >= 1714557600 AND extract(epoch from time) <= 1714561200 ORDER BY 1`},
}

func cell(v interface{}) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case []byte:
		return string(x)
	default:
		return fmt.Sprint(x)
	}
}

func runPq(dsn string) error {
	db, err := sql.Open("postgres", dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	ctx := context.Background()
	if err := db.PingContext(ctx); err != nil {
		return err
	}
	for _, q := range queries {
		rows, err := db.QueryContext(ctx, q[1])
		if err != nil {
			return fmt.Errorf("%s: %w", q[0], err)
		}
		types, _ := rows.ColumnTypes()
		var names []string
		for _, t := range types {
			names = append(names, t.DatabaseTypeName())
		}
		var out []string
		for rows.Next() {
			vals := make([]interface{}, len(types))
			ptrs := make([]interface{}, len(types))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				return fmt.Errorf("%s: %w", q[0], err)
			}
			var cells []string
			for _, v := range vals {
				cells = append(cells, cell(v))
			}
			out = append(out, strings.Join(cells, ","))
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("%s: %w", q[0], err)
		}
		rows.Close()
		fmt.Printf("%s: %s | %s\n", q[0], strings.Join(names, ","), strings.Join(out, "; "))
	}
	return nil
}

func runPgx(dsn string) error {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	if err := conn.Ping(ctx); err != nil {
		return err
	}
	for round := 0; round < 2; round++ {
		// The second round reuses pgx's cached prepared statements.
		for _, q := range queries {
			rows, err := conn.Query(ctx, q[1])
			if err != nil {
				return fmt.Errorf("%s: %w", q[0], err)
			}
			var names []string
			for _, f := range rows.FieldDescriptions() {
				dt, ok := conn.ConnInfo().DataTypeForOID(f.DataTypeOID)
				name := fmt.Sprint(f.DataTypeOID)
				if ok {
					name = dt.Name
				}
				names = append(names, name)
			}
			var out []string
			for rows.Next() {
				vals, err := rows.Values()
				if err != nil {
					return fmt.Errorf("%s: %w", q[0], err)
				}
				var cells []string
				for _, v := range vals {
					cells = append(cells, cell(v))
				}
				out = append(out, strings.Join(cells, ","))
			}
			if err := rows.Err(); err != nil {
				return fmt.Errorf("%s: %w", q[0], err)
			}
			if round == 1 {
				fmt.Printf("%s: %s | %s\n", q[0], strings.Join(names, ","), strings.Join(out, "; "))
			}
		}
	}
	return nil
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: grafana_client pq|pgx DSN")
		os.Exit(2)
	}
	var err error
	if os.Args[1] == "pq" {
		err = runPq(os.Args[2])
	} else {
		err = runPgx(os.Args[2])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
