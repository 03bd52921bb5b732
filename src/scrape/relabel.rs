//! Prometheus relabeling (`relabel_configs`, `metric_relabel_configs`) with Prometheus'
//! field names and defaults: `source_labels` joined by `separator` (`;`), matched against
//! the fully anchored `regex` (`(.*)`), `replacement` (`$1`) expanded into `target_label`;
//! actions `replace`, `keep`, `drop`, `labeldrop`, `labelkeep`, `labelmap`, `lowercase`,
//! `uppercase` and `hashmod` (FNV-1a rather than Prometheus' MD5: shard numbers are
//! stable across restarts but differ from Prometheus' for the same value).

use std::collections::BTreeMap;

use regex::Regex;
use serde::{Deserialize, Serialize};

/// A label set, sorted by name.
pub type Labels = BTreeMap<String, String>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    #[default]
    Replace,
    Keep,
    Drop,
    LabelDrop,
    LabelKeep,
    LabelMap,
    Lowercase,
    Uppercase,
    HashMod,
}

/// One relabeling step, as written in the config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RelabelConfig {
    pub source_labels: Vec<String>,
    pub separator: String,
    pub regex: String,
    pub target_label: Option<String>,
    pub replacement: String,
    pub modulus: u64,
    pub action: Action,
}

impl Default for RelabelConfig {
    fn default() -> Self {
        RelabelConfig {
            source_labels: Vec::new(),
            separator: ";".into(),
            regex: "(.*)".into(),
            target_label: None,
            replacement: "$1".into(),
            modulus: 0,
            action: Action::Replace,
        }
    }
}

/// A step ready to run (its regex compiled, anchored).
#[derive(Debug, Clone)]
pub struct Relabel {
    config: RelabelConfig,
    regex: Regex,
}

impl Relabel {
    /// Checks and compiles a step; the error says what is wrong.
    pub fn new(config: RelabelConfig) -> Result<Relabel, String> {
        let regex = Regex::new(&format!("^(?:{})$", config.regex))
            .map_err(|e| format!("invalid regex {:?}: {e}", config.regex))?;
        match config.action {
            Action::Replace | Action::Lowercase | Action::Uppercase | Action::HashMod
                if config.target_label.is_none() =>
            {
                return Err(format!("action {:?} needs a target_label", config.action));
            }
            Action::HashMod if config.modulus == 0 => {
                return Err("action hashmod needs a modulus".into());
            }
            _ => {}
        }
        Ok(Relabel { config, regex })
    }
}

/// A label name with every character outside `[a-zA-Z0-9_]` replaced by `_`, as
/// Prometheus' service discoveries build `__meta_*` names from free text.
pub fn sanitize_label_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Runs `steps` over `labels`; `None` if a step drops the whole set.
pub fn apply(steps: &[Relabel], mut labels: Labels) -> Option<Labels> {
    for step in steps {
        let c = &step.config;
        let value = c
            .source_labels
            .iter()
            .map(|l| labels.get(l).map(String::as_str).unwrap_or(""))
            .collect::<Vec<_>>()
            .join(&c.separator);
        match c.action {
            Action::Keep if !step.regex.is_match(&value) => return None,
            Action::Drop if step.regex.is_match(&value) => return None,
            Action::Keep | Action::Drop => {}
            Action::Replace => {
                if let Some(caps) = step.regex.captures(&value) {
                    let target = c.target_label.as_deref().unwrap_or_default();
                    let mut name = String::new();
                    caps.expand(target, &mut name);
                    let mut out = String::new();
                    caps.expand(&c.replacement, &mut out);
                    if !name.is_empty() {
                        if out.is_empty() {
                            labels.remove(&name);
                        } else {
                            labels.insert(name, out);
                        }
                    }
                }
            }
            Action::Lowercase | Action::Uppercase => {
                let target = c.target_label.clone().unwrap_or_default();
                let v = if c.action == Action::Lowercase {
                    value.to_lowercase()
                } else {
                    value.to_uppercase()
                };
                labels.insert(target, v);
            }
            Action::HashMod => {
                let digest = crate::clock::fnv1a(value.bytes());
                let target = c.target_label.clone().unwrap_or_default();
                labels.insert(target, (digest % c.modulus).to_string());
            }
            Action::LabelDrop => labels.retain(|k, _| !step.regex.is_match(k)),
            Action::LabelKeep => labels.retain(|k, _| step.regex.is_match(k)),
            Action::LabelMap => {
                let mapped: Vec<(String, String)> = labels
                    .iter()
                    .filter_map(|(k, v)| {
                        let caps = step.regex.captures(k)?;
                        let mut name = String::new();
                        caps.expand(&c.replacement, &mut name);
                        Some((name, v.clone()))
                    })
                    .collect();
                labels.extend(mapped);
            }
        }
    }
    Some(labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(toml_text: &str) -> Relabel {
        Relabel::new(toml::from_str(toml_text).unwrap()).unwrap()
    }

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn actions() {
        let l = labels(&[
            ("__name__", "node_cpu_seconds_total"),
            ("__meta_env", "prod"),
            ("instance", "10.0.0.1:9100"),
            ("mode", "idle"),
        ]);
        let keep = step("source_labels = ['mode']\nregex = 'idle|user'\naction = 'keep'");
        assert!(apply(std::slice::from_ref(&keep), l.clone()).is_some());
        let drop = step("source_labels = ['__name__']\nregex = 'node_cpu.*'\naction = 'drop'");
        assert!(apply(&[drop], l.clone()).is_none());
        let replace = step(
            "source_labels = ['instance']\nregex = '([^:]+):.*'\ntarget_label = 'host'\nreplacement = 'h-$1'",
        );
        assert_eq!(apply(&[replace], l.clone()).unwrap()["host"], "h-10.0.0.1");
        // The regex is anchored: a partial match does not replace.
        let partial = step("source_labels = ['mode']\nregex = 'idl'\ntarget_label = 'x'");
        assert!(!apply(&[partial], l.clone()).unwrap().contains_key("x"));
        let map = step("regex = '__meta_(.+)'\naction = 'labelmap'");
        assert_eq!(apply(&[map], l.clone()).unwrap()["env"], "prod");
        let ldrop = step("regex = '__meta_.*'\naction = 'labeldrop'");
        assert!(
            !apply(&[ldrop], l.clone())
                .unwrap()
                .contains_key("__meta_env")
        );
        let lkeep = step("regex = '__name__|mode'\naction = 'labelkeep'");
        assert_eq!(apply(&[lkeep], l.clone()).unwrap().len(), 2);
        let hash = step(
            "source_labels = ['instance']\nmodulus = 4\ntarget_label = 'shard'\naction = 'hashmod'",
        );
        let shard: u64 = apply(&[hash], l).unwrap()["shard"].parse().unwrap();
        assert!(shard < 4);
        assert!(
            Relabel::new(RelabelConfig {
                regex: "(".into(),
                ..RelabelConfig::default()
            })
            .is_err()
        );
    }
}
