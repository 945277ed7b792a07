//! Choosing which cases run: `--filter`, `--tag` and `--shard K/N`.
//!
//! Sharding deals the selected cases out in file order by groups: cases that share a click, a
//! conversion, a member or a `pub_click_id` (they depend on each other: a member's second
//! completion is refused only after its first) form one group, never split. Each group, in
//! the order of its first case, goes to the shard with the fewest cases so far (the lowest
//! such). Cases that share nothing are thus dealt round robin: case i to shard `i % N + 1`.
//! Shards are disjoint, together hold every selected case, and are the same on every CI job
//! that sees the same files and flags: a case whose shared values are rendered by `random` or
//! `now` (which no two jobs render alike) is dealt alone.

use std::fmt;
use std::str::FromStr;

use super::{Case, Plan};

/// Which cases to keep.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Keep cases whose name or suite name contains one of these (any case).
    pub filters: Vec<String>,
    /// Keep cases with one of these tags; `!T` drops cases tagged T.
    pub tags: Vec<String>,
    pub shard: Option<Shard>,
}

/// `--shard K/N`: the K-th of N shards, from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl FromStr for Shard {
    type Err = super::PlanError;
    fn from_str(text: &str) -> Result<Shard, super::PlanError> {
        let invalid = || {
            super::PlanError::Shard(format!(
                "`{text}` is not K/N with 1 ≤ K ≤ N (e.g. `--shard 2/4`)"
            ))
        };
        let (k, n) = text.split_once('/').ok_or_else(invalid)?;
        let index: usize = k.trim().parse().map_err(|_| invalid())?;
        let count: usize = n.trim().parse().map_err(|_| invalid())?;
        if index == 0 || count == 0 || index > count {
            return Err(invalid());
        }
        Ok(Shard { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// What a selection kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Selected {
    /// Cases in the files.
    pub total: usize,
    /// Cases that pass the filters and tags (before sharding).
    pub matched: usize,
    /// Cases kept (this shard's).
    pub kept: usize,
}

impl Selection {
    /// True when filters or tags narrow the cases (sharding aside).
    pub fn narrows(&self) -> bool {
        !self.filters.is_empty() || !self.tags.is_empty()
    }

    /// This selection with its filters in lower case, as [`Selection::keeps`] takes them.
    pub fn lowercase(&self) -> Selection {
        Selection {
            filters: self.filters.iter().map(|f| f.to_lowercase()).collect(),
            ..self.clone()
        }
    }

    /// True when `case` (of a suite tagged `suite_tags`) passes the filters (in lower case)
    /// and tags.
    pub fn matches(&self, case: &Case, suite_tags: &[String]) -> bool {
        self.keeps(&case.name, &case.suite, &case.tags, suite_tags)
    }

    /// True when a case named `name` of suite `suite`, tagged `tags` (its own) and
    /// `suite_tags` (its file's), passes the tags and the filters (in lower case: see
    /// [`Selection::lowercase`]).
    pub fn keeps(&self, name: &str, suite: &str, tags: &[String], suite_tags: &[String]) -> bool {
        self.tagged(tags, suite_tags) && self.named(name, suite)
    }

    /// True when a case tagged `tags` (its own) and `suite_tags` (its file's) passes the
    /// tags: known before its name is rendered, so that a case the tags leave out is never
    /// built, not even its name.
    pub fn tagged(&self, tags: &[String], suite_tags: &[String]) -> bool {
        let has = |tag: &str| tags.iter().chain(suite_tags).any(|t| t == tag);
        let (excluded, wanted): (Vec<&str>, Vec<&str>) = self
            .tags
            .iter()
            .map(String::as_str)
            .partition(|t| t.starts_with('!'));
        if excluded.iter().any(|t| has(&t[1..])) {
            return false;
        }
        wanted.is_empty() || wanted.iter().any(|t| has(t))
    }

    /// True when a case named `name` of suite `suite` passes the filters (any case; given in
    /// lower case).
    pub fn named(&self, name: &str, suite: &str) -> bool {
        if self.filters.is_empty() {
            return true;
        }
        let name = name.to_lowercase();
        let suite = suite.to_lowercase();
        self.filters
            .iter()
            .any(|f| name.contains(f.as_str()) || suite.contains(f.as_str()))
    }
}

/// The shard (from 1) of each of `cases`, dealt as the module says.
fn deal<'a>(cases: impl Iterator<Item = &'a Case>, count: usize) -> Vec<usize> {
    // Union-find over the cases, joined by the resources they share.
    let mut parent: Vec<usize> = Vec::new();
    let mut owner: std::collections::HashMap<String, usize> = Default::default();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    for (i, case) in cases.enumerate() {
        parent.push(i);
        if case.deal_alone {
            continue;
        }
        for resource in crate::run::resources(case) {
            match owner.get(&resource) {
                Some(&j) => {
                    let (a, b) = (root(&mut parent, i), root(&mut parent, j));
                    // The group is known by its first case.
                    let (first, other) = (a.min(b), a.max(b));
                    parent[other] = first;
                }
                None => {
                    owner.insert(resource, i);
                }
            }
        }
    }
    let n = parent.len();
    let roots: Vec<usize> = (0..n).map(|i| root(&mut parent, i)).collect();
    let mut size = vec![0usize; n];
    for &r in &roots {
        size[r] += 1;
    }
    let mut load = vec![0usize; count.max(1)];
    let mut shard_of = vec![0usize; n];
    for i in 0..n {
        if roots[i] == i {
            let lightest = (0..load.len()).min_by_key(|&k| (load[k], k)).unwrap_or(0);
            load[lightest] += size[i];
            shard_of[i] = lightest + 1;
        }
    }
    roots.iter().map(|&r| shard_of[r]).collect()
}

impl Plan {
    /// Keeps the selected cases (suites left empty are dropped) and renumbers them.
    pub fn select(&mut self, selection: &Selection) -> Selected {
        let selection = &selection.lowercase();
        let total = self.len();
        let shards = selection.shard.map(|shard| {
            let matched = (self.suites.iter())
                .flat_map(|s| s.cases.iter().map(move |c| (c, &s.tags)))
                .filter(|(case, tags)| selection.matches(case, tags))
                .map(|(case, _)| case);
            (shard, deal(matched, shard.count))
        });
        let mut matched = 0;
        let mut index = 0;
        for suite in &mut self.suites {
            let tags = std::mem::take(&mut suite.tags);
            suite.cases.retain_mut(|case| {
                if !selection.matches(case, &tags) {
                    return false;
                }
                let position = matched;
                matched += 1;
                if let Some((shard, dealt)) = &shards
                    && dealt[position] != shard.index
                {
                    return false;
                }
                case.index = index;
                index += 1;
                true
            });
            suite.tags = tags;
        }
        self.suites.retain(|s| !s.cases.is_empty());
        Selected {
            total,
            matched,
            kept: index,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{PlanOptions, build};

    fn plan() -> Plan {
        let dir = std::env::temp_dir().join(format!("pitcrew-select-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("s.yaml");
        std::fs::write(
            &file,
            "name: Suite\ntags: [nightly]\ncases:\n  - name: \"{{matrix.event}} {{matrix.n}}\"\n    matrix: { event: [install, signup, purchase], n: [1, 2, 3] }\n    event: \"{{matrix.event}}\"\n    params: { pub_sub_1: \"{{matrix.n}}\" }\n    tags: [smoke]\n  - name: Slow one\n    event: install\n    tags: [slow]\n",
        )
        .unwrap();
        let options = PlanOptions {
            default_offer: Some("demo-offer".into()),
            ..PlanOptions::default()
        };
        let plan = build(&[&file], &options).unwrap_or_else(|e| panic!("{}", e[0].message));
        std::fs::remove_dir_all(&dir).unwrap();
        plan
    }

    fn names(plan: &Plan) -> Vec<String> {
        plan.cases().map(|c| c.name.to_string()).collect()
    }

    #[test]
    fn shard_parses_and_refuses_nonsense() {
        assert_eq!("2/4".parse::<Shard>(), Ok(Shard { index: 2, count: 4 }));
        for bad in ["0/4", "5/4", "1/0", "2", "a/b", "-1/2"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }

    #[test]
    fn cases_that_share_a_member_or_a_pub_click_id_land_in_one_shard() {
        let dir = std::env::temp_dir().join(format!("pitcrew-groups-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("s.yaml");
        // 0, 2 and 4 share a member; 3 and 5 a pub_click_id; 1 shares nothing.
        std::fs::write(
            &file,
            "cases:\n  - { name: a0, event: install, member: m1 }\n  - { name: b1, event: install }\n  - { name: a2, event: signup, member: m1 }\n  - { name: c3, event: install, params: { pub_click_id: p1 } }\n  - { name: a4, event: purchase, member: m1 }\n  - { name: c5, event: signup, params: { pub_click_id: p1 } }\n",
        )
        .unwrap();
        let options = PlanOptions {
            default_offer: Some("demo-offer".into()),
            ..PlanOptions::default()
        };
        let shard = |index| {
            let mut p = build(&[&file], &options).unwrap_or_else(|e| panic!("{}", e[0].message));
            p.select(&Selection {
                shard: Some(Shard { index, count: 2 }),
                ..Selection::default()
            });
            names(&p)
        };
        assert_eq!(shard(1), ["a0", "a2", "a4"]);
        assert_eq!(shard(2), ["b1", "c3", "c5"]);
        // A member rendered by `random` may collide in one job and not the next: such cases
        // are dealt alone, so every job deals alike.
        std::fs::write(
            &file,
            "cases:\n  - { name: r0, event: install, member: \"m{{random 1 1}}\" }\n  - { name: r1, event: install, member: \"m{{random 1 1}}\" }\n",
        )
        .unwrap();
        assert_eq!(shard(1), ["r0"]);
        assert_eq!(shard(2), ["r1"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn shards_are_disjoint_balanced_and_cover_everything() {
        let all = names(&plan());
        assert_eq!(all.len(), 10);
        let mut seen = Vec::new();
        for k in 1..=3 {
            let mut p = plan();
            let selected = p.select(&Selection {
                shard: Some(Shard { index: k, count: 3 }),
                ..Selection::default()
            });
            assert_eq!(selected.matched, 10);
            assert!(selected.kept == 3 || selected.kept == 4, "{selected:?}");
            let indexes: Vec<usize> = p.cases().map(|c| c.index).collect();
            assert_eq!(indexes, (0..selected.kept).collect::<Vec<_>>());
            seen.extend(names(&p));
        }
        seen.sort();
        let mut expected = all.clone();
        expected.sort();
        assert_eq!(seen, expected);
    }

    #[test]
    fn filters_and_tags() {
        let mut p = plan();
        let s = p.select(&Selection {
            filters: vec!["SIGNUP".into()],
            ..Selection::default()
        });
        assert_eq!((s.total, s.matched, s.kept), (10, 3, 3));
        assert!(names(&p).iter().all(|n| n.starts_with("signup")));

        let mut p = plan();
        p.select(&Selection {
            tags: vec!["slow".into()],
            ..Selection::default()
        });
        assert_eq!(names(&p), ["Slow one"]);

        let mut p = plan();
        let s = p.select(&Selection {
            tags: vec!["nightly".into(), "!slow".into()],
            ..Selection::default()
        });
        assert_eq!(s.kept, 9);

        let mut p = plan();
        let s = p.select(&Selection {
            filters: vec!["suite".into()],
            tags: vec!["nope".into()],
            ..Selection::default()
        });
        assert_eq!(s.kept, 0);
        assert!(p.suites.is_empty());
    }

    proptest::proptest! {
        /// For N = 1..8 shards of any mix of files and matrix sizes (with and without a
        /// filter), every selected case runs in exactly one shard, shards differ in size by
        /// at most one, and each shard keeps plan order.
        #[test]
        fn every_case_runs_in_exactly_one_shard(
            sizes in proptest::collection::vec(0usize..12, 1..5),
            count in 1usize..=8,
            filtered in proptest::bool::ANY,
        ) {
            let sources: Vec<crate::scenario::SourceFile> = sizes
                .iter()
                .enumerate()
                .map(|(f, &n)| {
                    let mut text = format!("name: File {f}\ncases:\n  - name: lone {f}\n    event: install\n");
                    if n > 0 {
                        let values: Vec<String> = (0..n).map(|i| i.to_string()).collect();
                        text.push_str(&format!(
                            "  - name: \"m{f} {{{{matrix.i}}}}\"\n    matrix: {{ i: [{}] }}\n    event: install\n    tags: [{}]\n",
                            values.join(", "),
                            if f % 2 == 0 { "even" } else { "odd" }
                        ));
                    }
                    crate::scenario::SourceFile::new(format!("f{f}.yaml"), text)
                })
                .collect();
            let options = PlanOptions {
                default_offer: Some("demo-offer".into()),
                ..PlanOptions::default()
            };
            let build = || crate::plan::build_sources(&sources, &options).unwrap_or_else(|e| panic!("{e:#?}"));
            let selection = |shard| Selection {
                tags: if filtered { vec!["even".into()] } else { Vec::new() },
                shard,
                ..Selection::default()
            };
            let mut whole = build();
            whole.select(&selection(None));
            let all: Vec<(String, String)> = whole.cases().map(|c| (c.suite.to_string(), c.name.to_string())).collect();
            let mut dealt: Vec<(String, String)> = Vec::new();
            let mut sizes_seen = Vec::new();
            for index in 1..=count {
                let mut p = build();
                let got = p.select(&selection(Some(Shard { index, count })));
                proptest::prop_assert_eq!(got.matched, all.len());
                sizes_seen.push(got.kept);
                let mine: Vec<(String, String)> = p.cases().map(|c| (c.suite.to_string(), c.name.to_string())).collect();
                let expected: Vec<(String, String)> = all.iter().skip(index - 1).step_by(count).cloned().collect();
                proptest::prop_assert_eq!(&mine, &expected);
                dealt.extend(mine);
            }
            let (min, max) = (sizes_seen.iter().min().copied().unwrap_or(0), sizes_seen.iter().max().copied().unwrap_or(0));
            proptest::prop_assert!(max - min <= 1, "sizes {:?}", sizes_seen);
            dealt.sort();
            let mut expected = all.clone();
            expected.sort();
            proptest::prop_assert_eq!(dealt, expected);
        }
    }
}
