// pgjdbc against Sundial: connect, DatabaseMetaData table and column discovery (pgjdbc's
// own pg_catalog queries), a time-bucketed aggregate with a bound timestamptz parameter,
// a timestamp round-trip. Prints one JSON-ish line per check; failures throw.
import java.sql.*;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.util.*;

public class JdbcClient {
    public static void main(String[] args) throws Exception {
        String url = args[0];
        Properties props = new Properties();
        props.setProperty("user", args.length > 1 ? args[1] : "sundial");
        if (args.length > 2) props.setProperty("password", args[2]);
        try (Connection conn = DriverManager.getConnection(url, props)) {
            DatabaseMetaData meta = conn.getMetaData();
            System.out.println("product=" + meta.getDatabaseProductName() + " " + meta.getDatabaseProductVersion());
            List<String> tables = new ArrayList<>();
            try (ResultSet rs = meta.getTables(null, "public", "%", new String[] {"TABLE"})) {
                while (rs.next()) tables.add(rs.getString("TABLE_NAME"));
            }
            System.out.println("tables=" + tables);
            List<String> columns = new ArrayList<>();
            try (ResultSet rs = meta.getColumns(null, "public", "cpu", "%")) {
                while (rs.next()) columns.add(rs.getString("COLUMN_NAME") + ":" + rs.getString("TYPE_NAME"));
            }
            System.out.println("columns=" + columns);
            String sql = "SELECT date_bin(INTERVAL '5 minutes', time) AS t, avg(usage_user) AS v, count(*) AS n "
                + "FROM cpu WHERE time >= ? GROUP BY 1 ORDER BY 1";
            OffsetDateTime start = OffsetDateTime.of(2024, 5, 1, 10, 0, 0, 0, ZoneOffset.UTC);
            // Run it six times: pgjdbc switches to a named server-side statement at the fifth.
            for (int i = 0; i < 6; i++) {
                try (PreparedStatement ps = conn.prepareStatement(sql)) {
                    ps.setObject(1, start);
                    List<String> rows = new ArrayList<>();
                    try (ResultSet rs = ps.executeQuery()) {
                        while (rs.next()) {
                            rows.add(rs.getObject(1, OffsetDateTime.class) + "|" + rs.getDouble(2) + "|" + rs.getLong(3));
                        }
                    }
                    if (i == 5) System.out.println("buckets=" + rows);
                }
            }
            OffsetDateTime t;
            try (Statement st = conn.createStatement(); ResultSet rs = st.executeQuery("SELECT time FROM cpu ORDER BY time LIMIT 1")) {
                rs.next();
                t = rs.getObject(1, OffsetDateTime.class);
            }
            try (PreparedStatement ps = conn.prepareStatement("SELECT ?::timestamptz")) {
                ps.setObject(1, t);
                try (ResultSet rs = ps.executeQuery()) {
                    rs.next();
                    System.out.println("roundtrip=" + t + "|" + rs.getObject(1, OffsetDateTime.class));
                }
            }
            conn.setAutoCommit(false);
            try (Statement st = conn.createStatement(); ResultSet rs = st.executeQuery("SELECT count(*) FROM cpu")) {
                rs.next();
                System.out.println("in_tx=" + rs.getLong(1));
            }
            conn.commit();
        }
    }
}
