//! A TSBS-style "devops cpu-only" data generator, for tests and benchmarks.
//!
//! Every host has ten tags (hostname, region, datacenter, rack, os, arch, team, service,
//! service_version, service_environment) chosen from fixed lists by a seeded RNG, and the
//! measurement `cpu` has ten fields (`usage_user` … `usage_guest_nice`), each a random walk
//! with N(0,1) steps clamped to [0, 100]. Values are written as integers (`58i`), as TSBS
//! does, or as full-precision floats. One row per host every `interval` seconds from
//! 2016-01-01T00:00:00Z, time-major (each timestamp, every host in order).

use std::fmt::Write;

const START_NANOS: i64 = 1_451_606_400_000_000_000; // 2016-01-01T00:00:00Z

const REGIONS: &[(&str, &[&str])] = &[
    (
        "us-east-1",
        &["us-east-1a", "us-east-1b", "us-east-1c", "us-east-1e"],
    ),
    ("us-west-1", &["us-west-1a", "us-west-1b"]),
    ("us-west-2", &["us-west-2a", "us-west-2b", "us-west-2c"]),
    ("eu-west-1", &["eu-west-1a", "eu-west-1b", "eu-west-1c"]),
    ("eu-central-1", &["eu-central-1a", "eu-central-1b"]),
    ("ap-southeast-1", &["ap-southeast-1a", "ap-southeast-1b"]),
    ("ap-southeast-2", &["ap-southeast-2a", "ap-southeast-2b"]),
    ("ap-northeast-1", &["ap-northeast-1a", "ap-northeast-1c"]),
    ("sa-east-1", &["sa-east-1a", "sa-east-1b", "sa-east-1c"]),
];
const OSES: &[&str] = &["Ubuntu16.10", "Ubuntu16.04LTS", "Ubuntu15.10"];
const ARCHES: &[&str] = &["x64", "x86"];
const TEAMS: &[&str] = &["SF", "NYC", "LON", "CHI"];
const SERVICE_ENVS: &[&str] = &["production", "staging", "test"];
/// The ten field names, in order.
pub const FIELDS: [&str; 10] = [
    "usage_user",
    "usage_system",
    "usage_idle",
    "usage_nice",
    "usage_iowait",
    "usage_irq",
    "usage_softirq",
    "usage_steal",
    "usage_guest",
    "usage_guest_nice",
];

/// SplitMix64: small, fast and good enough for synthetic data.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn gauss(&mut self) -> f64 {
        let u1 = self.unit().max(f64::MIN_POSITIVE);
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

/// Generator settings.
#[derive(Debug, Clone)]
pub struct Options {
    pub hosts: usize,
    /// Rows per host.
    pub steps: usize,
    /// Seconds between a host's rows.
    pub interval_secs: i64,
    pub seed: u64,
    /// Integer values (`58i`, TSBS' default) or full-precision floats.
    pub float_values: bool,
    /// The first row's timestamp (ns since the epoch; TSBS' 2016-01-01 by default).
    pub start_nanos: i64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            hosts: 100,
            steps: 8640,
            interval_secs: 10,
            seed: 123,
            float_values: false,
            start_nanos: START_NANOS,
        }
    }
}

/// Generates the workload as line protocol, one `String` of lines per timestamp step.
pub fn generate(opts: &Options) -> impl Iterator<Item = String> + '_ {
    let mut tag_rng = Rng(opts.seed);
    let mut val_rng = Rng(opts.seed.wrapping_mul(7919).wrapping_add(1));
    let prefixes: Vec<String> = (0..opts.hosts)
        .map(|i| {
            let (region, dcs) = REGIONS[tag_rng.below(REGIONS.len())];
            format!(
                "cpu,hostname=host_{i},region={region},datacenter={},rack={},os={},arch={},team={},service={},service_version={},service_environment={} ",
                dcs[tag_rng.below(dcs.len())],
                tag_rng.below(100),
                OSES[tag_rng.below(OSES.len())],
                ARCHES[tag_rng.below(ARCHES.len())],
                TEAMS[tag_rng.below(TEAMS.len())],
                tag_rng.below(20),
                tag_rng.below(2),
                SERVICE_ENVS[tag_rng.below(SERVICE_ENVS.len())],
            )
        })
        .collect();
    let mut state: Vec<[f64; 10]> = (0..opts.hosts)
        .map(|_| std::array::from_fn(|_| val_rng.unit() * 100.0))
        .collect();
    (0..opts.steps).map(move |step| {
        let ts = opts.start_nanos + step as i64 * opts.interval_secs * 1_000_000_000;
        let mut out = String::with_capacity(opts.hosts * 300);
        for (h, prefix) in prefixes.iter().enumerate() {
            out.push_str(prefix);
            for (j, field) in FIELDS.iter().enumerate() {
                let v = (state[h][j] + val_rng.gauss()).clamp(0.0, 100.0);
                state[h][j] = v;
                if j > 0 {
                    out.push(',');
                }
                if opts.float_values {
                    let _ = write!(out, "{field}={v:?}");
                } else {
                    let _ = write!(out, "{field}={}i", v as i64);
                }
            }
            let _ = writeln!(out, " {ts}");
        }
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::line_protocol::{lines, parse_line};

    #[test]
    fn generates_parseable_deterministic_lines() {
        let opts = Options {
            hosts: 3,
            steps: 4,
            ..Options::default()
        };
        let a: String = generate(&opts).collect();
        let b: String = generate(&opts).collect();
        assert_eq!(a, b);
        let parsed: Vec<_> = lines(a.as_bytes())
            .map(|(_, l)| parse_line(l).unwrap())
            .collect();
        assert_eq!(parsed.len(), 12);
        assert_eq!(parsed[0].tags.len(), 10);
        assert_eq!(parsed[0].fields.len(), 10);
        assert_eq!(parsed[3].timestamp, Some(START_NANOS + 10_000_000_000));
    }
}
