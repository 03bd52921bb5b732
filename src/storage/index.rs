//! The series index of a table: tag=value → roaring bitmap of series ids, so tag
//! predicates become bitmap operations and a query reads only the matching series.

use std::collections::{BTreeMap, HashMap};

use roaring::RoaringBitmap;

use super::schema::SeriesKey;

/// A predicate on one tag, as pushed down from SQL (serializable: tombstones keep them).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub enum TagPredicate {
    /// `tag = 'v'`
    Eq(String, String),
    /// `tag IN ('a', 'b')`
    In(String, Vec<String>),
    /// `tag != 'v'` (series without the tag do not match, as in SQL)
    NotEq(String, String),
    /// `tag LIKE 'prefix%'`
    Prefix(String, String),
    /// `tag ~ 'regex'`
    Regex(String, #[serde(with = "regex_text")] regex::Regex),
    /// `tag !~ 'regex'`
    NotRegex(String, #[serde(with = "regex_text")] regex::Regex),
    /// Any of these (`OR`).
    Any(Vec<TagPredicate>),
}

/// Regexes are stored as their pattern text.
mod regex_text {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(re: &regex::Regex, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(re.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<regex::Regex, D::Error> {
        let text = String::deserialize(d)?;
        regex::Regex::new(&text).map_err(serde::de::Error::custom)
    }
}

/// Postings of one table.
#[derive(Debug, Default)]
pub struct TagIndex {
    postings: HashMap<String, BTreeMap<String, RoaringBitmap>>,
    all: RoaringBitmap,
}

impl TagIndex {
    pub fn insert(&mut self, id: u32, key: &SeriesKey) {
        self.all.insert(id);
        for (k, v) in key {
            self.postings
                .entry(k.clone())
                .or_default()
                .entry(v.clone())
                .or_default()
                .insert(id);
        }
    }

    fn values(&self, tag: &str) -> impl Iterator<Item = (&String, &RoaringBitmap)> {
        self.postings.get(tag).into_iter().flat_map(|m| m.iter())
    }

    fn with_tag(&self, tag: &str) -> RoaringBitmap {
        self.values(tag)
            .map(|(_, b)| b)
            .fold(RoaringBitmap::new(), |acc, b| acc | b)
    }

    fn eq(&self, tag: &str, value: &str) -> RoaringBitmap {
        self.postings
            .get(tag)
            .and_then(|m| m.get(value))
            .cloned()
            .unwrap_or_default()
    }

    /// The series matching one predicate.
    pub fn matching(&self, p: &TagPredicate) -> RoaringBitmap {
        match p {
            TagPredicate::Eq(t, v) => self.eq(t, v),
            TagPredicate::In(t, vs) => vs
                .iter()
                .fold(RoaringBitmap::new(), |acc, v| acc | self.eq(t, v)),
            TagPredicate::NotEq(t, v) => self.with_tag(t) - self.eq(t, v),
            TagPredicate::Prefix(t, prefix) => self
                .postings
                .get(t)
                .map(|m| {
                    m.range(prefix.clone()..)
                        .take_while(|(v, _)| v.starts_with(prefix.as_str()))
                        .fold(RoaringBitmap::new(), |acc, (_, b)| acc | b)
                })
                .unwrap_or_default(),
            TagPredicate::Regex(t, re) => self
                .values(t)
                .filter(|(v, _)| re.is_match(v))
                .fold(RoaringBitmap::new(), |acc, (_, b)| acc | b),
            TagPredicate::NotRegex(t, re) => self
                .values(t)
                .filter(|(v, _)| !re.is_match(v))
                .fold(RoaringBitmap::new(), |acc, (_, b)| acc | b),
            TagPredicate::Any(ps) => ps
                .iter()
                .fold(RoaringBitmap::new(), |acc, p| acc | self.matching(p)),
        }
    }

    /// The series matching every predicate; `None` when there are no predicates.
    pub fn eval(&self, preds: &[TagPredicate]) -> Option<RoaringBitmap> {
        let mut it = preds.iter();
        let first = it.next()?;
        let mut acc = self.matching(first);
        for p in it {
            if acc.is_empty() {
                break;
            }
            acc &= self.matching(p);
        }
        Some(acc)
    }

    pub fn series_count(&self) -> u64 {
        self.all.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(pairs: &[(&str, &str)]) -> SeriesKey {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn predicates_are_bitmap_operations() {
        let mut idx = TagIndex::default();
        idx.insert(0, &key(&[("host", "web1"), ("dc", "eu")]));
        idx.insert(1, &key(&[("host", "web2"), ("dc", "us")]));
        idx.insert(2, &key(&[("host", "db1"), ("dc", "eu")]));
        idx.insert(3, &key(&[("dc", "eu")]));
        let ids = |p: TagPredicate| idx.matching(&p).iter().collect::<Vec<_>>();
        assert_eq!(ids(TagPredicate::Eq("host".into(), "web1".into())), vec![0]);
        assert_eq!(
            ids(TagPredicate::In(
                "host".into(),
                vec!["web2".into(), "db1".into()]
            )),
            vec![1, 2]
        );
        assert_eq!(
            ids(TagPredicate::NotEq("host".into(), "web1".into())),
            vec![1, 2]
        );
        assert_eq!(
            ids(TagPredicate::Prefix("host".into(), "web".into())),
            vec![0, 1]
        );
        assert_eq!(
            ids(TagPredicate::Regex(
                "host".into(),
                regex::Regex::new("^d").unwrap()
            )),
            vec![2]
        );
        assert_eq!(
            ids(TagPredicate::NotRegex(
                "host".into(),
                regex::Regex::new("^d").unwrap()
            )),
            vec![0, 1]
        );
        let both = idx
            .eval(&[
                TagPredicate::Eq("dc".into(), "eu".into()),
                TagPredicate::Prefix("host".into(), "w".into()),
            ])
            .unwrap();
        assert_eq!(both.iter().collect::<Vec<_>>(), vec![0]);
        assert!(idx.eval(&[]).is_none());
        assert!(
            idx.matching(&TagPredicate::Eq("nope".into(), "x".into()))
                .is_empty()
        );
    }
}
