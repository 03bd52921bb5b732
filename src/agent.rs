//! `sundial agent`: the push collector of the reference design. Every interval it reads
//! the host's CPU, memory, disks, network and load from `/proc` (and `statvfs`) and writes
//! them as Telegraf's `cpu`, `mem`, `disk`, `net` and `system` measurements (same field
//! names, `host` tag), so dashboards made for Telegraf work. Each batch goes to a spool
//! directory first and is sent from there in order; while the server is unreachable the
//! spool grows (bounded: the oldest batches are dropped with a warning) and is replayed
//! when it answers again, so nothing is lost in between.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// Agent settings (from `sundial agent` flags).
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Base URL of a Sundial (or InfluxDB) HTTP API.
    pub url: String,
    pub database: String,
    pub interval: Duration,
    pub spool_dir: PathBuf,
    /// Spool size beyond which the oldest batches are dropped.
    pub spool_max_bytes: u64,
    /// The `host` tag.
    pub host: String,
}

/// CPU time counters of one `cpu` line of `/proc/stat`, in ticks.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct CpuTimes([u64; 10]);

const CPU_FIELDS: [&str; 10] = [
    "usage_user",
    "usage_nice",
    "usage_system",
    "usage_idle",
    "usage_iowait",
    "usage_irq",
    "usage_softirq",
    "usage_steal",
    "usage_guest",
    "usage_guest_nice",
];

fn cpu_times(stat: &str) -> Vec<(String, CpuTimes)> {
    stat.lines()
        .filter(|l| l.starts_with("cpu"))
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let name = words.next()?;
            let mut t = [0u64; 10];
            for (i, w) in words.take(10).enumerate() {
                t[i] = w.parse().ok()?;
            }
            let name = if name == "cpu" {
                "cpu-total".to_string()
            } else {
                name.to_string()
            };
            Some((name, CpuTimes(t)))
        })
        .collect()
}

/// Escapes a tag value for line protocol.
fn tag(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace(',', "\\,")
        .replace('=', "\\=")
        .replace(' ', "\\ ")
}

/// Telegraf's `cpu`: percentages of the ticks since the previous sample.
fn cpu_lines(
    prev: &HashMap<String, CpuTimes>,
    now: &[(String, CpuTimes)],
    host: &str,
    ts: i64,
) -> String {
    let mut out = String::new();
    for (name, t) in now {
        let Some(p) = prev.get(name) else { continue };
        // guest time is included in user time, as Telegraf accounts for it.
        let delta: Vec<f64> = (0..10)
            .map(|i| t.0[i].saturating_sub(p.0[i]) as f64)
            .collect();
        let total: f64 = delta[..8].iter().sum();
        if total <= 0.0 {
            continue;
        }
        let _ = write!(out, "cpu,cpu={},host={} ", tag(name), tag(host));
        for (i, f) in CPU_FIELDS.iter().enumerate() {
            let _ = write!(
                out,
                "{}{f}={}",
                if i > 0 { "," } else { "" },
                100.0 * delta[i] / total
            );
        }
        let _ = writeln!(out, " {ts}");
    }
    out
}

/// `/proc/meminfo` values in bytes.
fn meminfo(text: &str) -> HashMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            let n: u64 = v.split_whitespace().next()?.parse().ok()?;
            Some((k.to_string(), n * 1024))
        })
        .collect()
}

fn mem_line(m: &HashMap<String, u64>, host: &str, ts: i64) -> String {
    let get = |k: &str| m.get(k).copied().unwrap_or(0);
    let total = get("MemTotal");
    let available = get("MemAvailable");
    let used = total.saturating_sub(available);
    let pct = |v: u64| {
        if total > 0 {
            100.0 * v as f64 / total as f64
        } else {
            0.0
        }
    };
    format!(
        "mem,host={} total={total}i,available={available}i,used={used}i,free={}i,cached={}i,buffers={}i,\
         used_percent={},available_percent={},swap_total={}i,swap_free={}i {ts}\n",
        tag(host),
        get("MemFree"),
        get("Cached"),
        get("Buffers"),
        pct(used),
        pct(available),
        get("SwapTotal"),
        get("SwapFree"),
    )
}

fn system_line(loadavg: &str, uptime: &str, host: &str, ts: i64) -> String {
    let load: Vec<f64> = loadavg
        .split_whitespace()
        .take(3)
        .filter_map(|v| v.parse().ok())
        .collect();
    let up = uptime
        .split_whitespace()
        .next()
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0) as i64;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (l1, l5, l15) = (
        load.first().copied().unwrap_or(0.0),
        load.get(1).copied().unwrap_or(0.0),
        load.get(2).copied().unwrap_or(0.0),
    );
    format!(
        "system,host={} load1={l1},load5={l5},load15={l15},n_cpus={cpus}i,uptime={up}i {ts}\n",
        tag(host)
    )
}

/// `/proc/net/dev` → Telegraf's `net` per interface.
fn net_lines(text: &str, host: &str, ts: i64) -> String {
    let mut out = String::new();
    for l in text.lines().skip(2) {
        let Some((iface, rest)) = l.split_once(':') else {
            continue;
        };
        let v: Vec<u64> = rest
            .split_whitespace()
            .filter_map(|w| w.parse().ok())
            .collect();
        if v.len() < 16 {
            continue;
        }
        let _ = writeln!(
            out,
            "net,host={},interface={} bytes_recv={}i,packets_recv={}i,err_in={}i,drop_in={}i,\
             bytes_sent={}i,packets_sent={}i,err_out={}i,drop_out={}i {ts}",
            tag(host),
            tag(iface.trim()),
            v[0],
            v[1],
            v[2],
            v[3],
            v[8],
            v[9],
            v[10],
            v[11]
        );
    }
    out
}

/// Real filesystems from `/proc/mounts` → Telegraf's `disk`, via statvfs.
fn disk_lines(mounts: &str, host: &str, ts: i64) -> String {
    const VIRTUAL: &[&str] = &[
        "proc",
        "sysfs",
        "devtmpfs",
        "devpts",
        "tmpfs",
        "cgroup",
        "cgroup2",
        "overlay",
        "mqueue",
        "securityfs",
        "debugfs",
        "tracefs",
        "pstore",
        "bpf",
        "autofs",
        "hugetlbfs",
        "fusectl",
        "configfs",
        "binfmt_misc",
        "nsfs",
        "squashfs",
        "ramfs",
        "rpc_pipefs",
    ];
    let mut out = String::new();
    let mut seen = std::collections::HashSet::new();
    for l in mounts.lines() {
        let w: Vec<&str> = l.split_whitespace().collect();
        if w.len() < 3 || VIRTUAL.contains(&w[2]) || !seen.insert(w[1].to_string()) {
            continue;
        }
        let Ok(path) = std::ffi::CString::new(w[1]) else {
            continue;
        };
        // SAFETY: `path` is a valid NUL-terminated string and `st` a zeroed statvfs that
        // the call fills in.
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        if unsafe { libc::statvfs(path.as_ptr(), &mut st) } != 0 || st.f_blocks == 0 {
            continue;
        }
        let size = st.f_frsize as u64;
        let total = st.f_blocks as u64 * size;
        let free = st.f_bavail as u64 * size;
        let used = (st.f_blocks as u64 - st.f_bfree as u64) * size;
        let pct = if used + free > 0 {
            100.0 * used as f64 / (used + free) as f64
        } else {
            0.0
        };
        let _ = writeln!(
            out,
            "disk,host={},path={},device={},fstype={} total={total}i,free={free}i,used={used}i,used_percent={pct},\
             inodes_total={}i,inodes_free={}i {ts}",
            tag(host),
            tag(w[1]),
            tag(w[0]),
            tag(w[2]),
            st.f_files as u64,
            st.f_ffree as u64,
        );
    }
    out
}

/// Reads `/proc` files; missing ones read as empty.
fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// The spool: one file per batch, named by a sequence number so order is kept.
struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    next: u64,
}

impl Spool {
    fn open(dir: &Path, max_bytes: u64) -> std::io::Result<Spool> {
        std::fs::create_dir_all(dir)?;
        let next = Self::files(dir)?
            .last()
            .and_then(|(_, n, _)| n.checked_add(1))
            .unwrap_or(0);
        Ok(Spool {
            dir: dir.to_path_buf(),
            max_bytes,
            next,
        })
    }

    /// Batches in order: (path, sequence, size).
    fn files(dir: &Path) -> std::io::Result<Vec<(PathBuf, u64, u64)>> {
        let mut out: Vec<(PathBuf, u64, u64)> = std::fs::read_dir(dir)?
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().to_string();
                let n: u64 = name.strip_suffix(".lp")?.parse().ok()?;
                Some((e.path(), n, e.metadata().ok()?.len()))
            })
            .collect();
        out.sort_by_key(|(_, n, _)| *n);
        Ok(out)
    }

    fn push(&mut self, batch: &str) -> std::io::Result<()> {
        let path = self.dir.join(format!("{:020}.lp", self.next));
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, batch)?;
        std::fs::rename(&tmp, &path)?;
        self.next += 1;
        let files = Self::files(&self.dir)?;
        let mut total: u64 = files.iter().map(|(_, _, s)| s).sum();
        for (path, _, size) in files {
            if total <= self.max_bytes {
                break;
            }
            tracing::warn!(
                file = %path.display(),
                max_bytes = self.max_bytes,
                "agent spool full: dropping the oldest batch"
            );
            let _ = std::fs::remove_file(&path);
            total -= size;
        }
        Ok(())
    }
}

/// Sends spooled batches in order until one fails; how many were sent.
async fn drain(client: &reqwest::Client, url: &str, spool: &Spool) -> usize {
    let Ok(files) = Spool::files(&spool.dir) else {
        return 0;
    };
    let mut sent = 0;
    for (path, _, _) in files {
        let Ok(body) = std::fs::read(&path) else {
            continue;
        };
        match client.post(url).body(body).send().await {
            Ok(r) if r.status().is_success() => {
                let _ = std::fs::remove_file(&path);
                sent += 1;
            }
            Ok(r) if r.status().is_client_error() => {
                // The server refused the batch itself (it will not get better): drop it.
                tracing::warn!(file = %path.display(), status = %r.status(), "batch refused by the server; dropped");
                let _ = std::fs::remove_file(&path);
            }
            Ok(r) => {
                tracing::warn!(status = %r.status(), "server error; keeping the spool");
                break;
            }
            Err(e) => {
                tracing::warn!(error = %e, "server unreachable; spooling");
                break;
            }
        }
    }
    sent
}

/// Runs the agent until `shutdown`.
pub async fn run(config: AgentConfig, shutdown: CancellationToken) -> std::io::Result<()> {
    let mut spool = Spool::open(&config.spool_dir, config.spool_max_bytes)?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_default();
    let url = format!(
        "{}/write?db={}&precision=ns",
        config.url.trim_end_matches('/'),
        config.database
    );
    let mut prev_cpu: HashMap<String, CpuTimes> = HashMap::new();
    loop {
        let ts = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0);
        let host = &config.host;
        let cpu = cpu_times(&read("/proc/stat"));
        let mut batch = cpu_lines(&prev_cpu, &cpu, host, ts);
        prev_cpu = cpu.into_iter().collect();
        batch.push_str(&mem_line(&meminfo(&read("/proc/meminfo")), host, ts));
        batch.push_str(&system_line(
            &read("/proc/loadavg"),
            &read("/proc/uptime"),
            host,
            ts,
        ));
        batch.push_str(&net_lines(&read("/proc/net/dev"), host, ts));
        batch.push_str(&disk_lines(&read("/proc/mounts"), host, ts));
        spool.push(&batch)?;
        drain(&client, &url, &spool).await;
        tokio::select! {
            _ = tokio::time::sleep(config.interval) => {}
            _ = shutdown.cancelled() => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_files_become_telegraf_lines() {
        let prev: HashMap<String, CpuTimes> = cpu_times("cpu  100 0 100 800 0 0 0 0 0 0\n")
            .into_iter()
            .collect();
        let now = cpu_times("cpu  150 0 150 900 0 0 0 0 0 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n");
        let lines = cpu_lines(&prev, &now, "h 1", 7);
        assert_eq!(
            lines,
            "cpu,cpu=cpu-total,host=h\\ 1 usage_user=25,usage_nice=0,usage_system=25,usage_idle=50,\
             usage_iowait=0,usage_irq=0,usage_softirq=0,usage_steal=0,usage_guest=0,usage_guest_nice=0 7\n"
        );
        let m = meminfo("MemTotal: 1000 kB\nMemFree: 100 kB\nMemAvailable: 250 kB\n");
        assert!(
            mem_line(&m, "h", 1)
                .starts_with("mem,host=h total=1024000i,available=256000i,used=768000i,")
        );
        assert_eq!(
            system_line("0.5 0.25 0.1 1/2 3", "12.7 1", "h", 1)
                .split(' ')
                .nth(1)
                .unwrap(),
            format!(
                "load1=0.5,load5=0.25,load15=0.1,n_cpus={}i,uptime=12i",
                std::thread::available_parallelism().unwrap().get()
            )
        );
        let net = net_lines(
            "h1\nh2\n  eth0: 10 2 0 0 0 0 0 0 20 4 0 0 0 0 0 0\n",
            "h",
            1,
        );
        assert!(
            net.starts_with("net,host=h,interface=eth0 bytes_recv=10i,packets_recv=2i,"),
            "{net}"
        );
        // Every produced line parses as line protocol.
        for l in lines.lines().chain(net.lines()) {
            crate::ingest::line_protocol::parse_line(l.as_bytes()).unwrap();
        }
    }

    #[test]
    fn spool_keeps_order_and_bound() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), 25).unwrap();
        for i in 0..4 {
            spool.push(&format!("batch number {i}\n")).unwrap();
        }
        let files = Spool::files(dir.path()).unwrap();
        // 16 bytes each, 25 allowed: only the newest survives.
        assert_eq!(files.len(), 1);
        assert_eq!(
            std::fs::read_to_string(&files[0].0).unwrap(),
            "batch number 3\n"
        );
        let reopened = Spool::open(dir.path(), 25).unwrap();
        assert_eq!(reopened.next, 4);
    }
}
