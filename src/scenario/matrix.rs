//! Matrix expansion: the cartesian product of a case's lists, with GitHub-style `exclude:` and
//! `include:`, and the names that keep expanded cases unique.
//!
//! The rules, as GitHub Actions applies them:
//! - every combination of one value from each list, in the order written (the last list
//!   varies fastest);
//! - `exclude:` entries remove each combination that has all of the entry's key/values;
//! - then each `include:` entry is added to every combination whose original list values it
//!   does not contradict (it may add keys, or overwrite keys an earlier include added); an
//!   entry that fits no combination becomes a combination of its own.

use serde_json::Value;
use serde_saphyr::Location;

use super::model::Matrix;

/// The default and `--max-cases` guard: more cases than this from one case is an error.
pub const DEFAULT_MAX_CASES: usize = 100_000;

/// One combination: key/values in the order the matrix wrote its keys, then included keys.
pub type Combination = Vec<(String, Value)>;

/// A matrix that cannot be expanded.
#[derive(Debug, Clone, PartialEq)]
pub struct MatrixError {
    pub message: String,
    pub help: Option<String>,
    /// Where the problem is; the matrix itself when `None`.
    pub at: Option<Location>,
}

fn error(message: String, help: Option<String>, at: Option<Location>) -> MatrixError {
    MatrixError { message, help, at }
}

/// Expands a matrix into its combinations; more than `max_cases` is an error.
pub fn expand(matrix: &Matrix, max_cases: usize) -> Result<Vec<Combination>, MatrixError> {
    expand_with(matrix, None, max_cases)
}

/// Expands a matrix with the rows of its `from:` file (`table`): each row is combined with
/// every combination of the lists (the rows vary slowest, as the first list would).
pub fn expand_with(
    matrix: &Matrix,
    table: Option<&super::table::Table>,
    max_cases: usize,
) -> Result<Vec<Combination>, MatrixError> {
    // A file's cells are text: `exclude: [{ amount: 0 }]` means the cell `0`.
    let as_text;
    let matrix = match table {
        Some(table) => {
            as_text = cells_as_text(matrix, &table.columns);
            &as_text
        }
        None => matrix,
    };
    let mut keys: Vec<&str> = Vec::new();
    if let Some(table) = table {
        keys.extend(table.columns.iter().map(String::as_str));
    }
    for (key, values) in &matrix.axes {
        if keys.contains(&key.as_str()) {
            return Err(error(
                format!("matrix key `{key}` is both a list here and a column of the `from:` file"),
                Some("remove the list, or the file's column".into()),
                Some(values.referenced),
            ));
        }
        keys.push(key);
    }
    for (key, values) in &matrix.axes {
        if values.value.is_empty() {
            return Err(error(
                format!("matrix key `{key}` has no values"),
                Some("give at least one value, e.g. `[install, signup]`, or remove the key".into()),
                Some(values.referenced),
            ));
        }
    }
    for entry in &matrix.exclude {
        if let Some(unknown) = entry.value.keys().find(|k| !keys.contains(&k.as_str())) {
            let hint = super::did_you_mean(unknown, keys.iter().copied())
                .map(|s| format!("did you mean `{s}`? "))
                .unwrap_or_default();
            return Err(error(
                format!("`exclude:` names `{unknown}`, which is not a key of this matrix"),
                Some(format!("{hint}matrix keys: {}", keys.join(", "))),
                Some(entry.referenced),
            ));
        }
    }
    let rows = table.map_or(1, |t| t.rows.len());
    let product = matrix
        .axes
        .iter()
        .try_fold(rows, |n, (_, v)| n.checked_mul(v.value.len()));
    let total = product.and_then(|p| p.checked_add(matrix.include.len()));
    if total.is_none_or(|n| n > max_cases) {
        let sizes: Vec<String> = table
            .map(|t| format!("rows: {}", t.rows.len()))
            .into_iter()
            .chain((matrix.axes.iter()).map(|(k, v)| format!("{k}: {}", v.value.len())))
            .collect();
        let sizes = sizes.join(" × ");
        let message = match (matrix.include.len(), total) {
            (0, Some(n)) => format!("this matrix expands to {n} cases ({sizes})"),
            (0, None) => format!("this matrix expands to too many cases ({sizes})"),
            (included, total) => {
                let total = total.map_or_else(|| "too many".to_string(), |n| n.to_string());
                let product = product.map_or_else(|| "too many".to_string(), |n| n.to_string());
                let sizes = match sizes.is_empty() {
                    true => String::new(),
                    false => format!(" ({sizes})"),
                };
                format!(
                    "this matrix expands to as many as {total} cases: {product} combinations{sizes} \
                     and {included} `include:` entries"
                )
            }
        };
        return Err(error(
            format!("{message}, more than the limit of {max_cases}"),
            Some(match matrix.include.is_empty() {
                true => "shorten the lists, or raise the limit with `--max-cases N`".into(),
                false => "shorten the lists or the `include:` entries, or raise the limit with \
                          `--max-cases N`"
                    .into(),
            }),
            None,
        ));
    }
    let mut combinations: Vec<Combination> = Vec::new();
    let empty = [Combination::new()];
    let bases: &[Combination] = table.map_or(&empty, |t| &t.rows);
    if !matrix.axes.is_empty() || table.is_some() {
        let mut odometer = vec![0usize; matrix.axes.len()];
        let mut base = 0;
        'product: loop {
            // Sized exactly: a 100,000-case matrix holds as many combinations at once.
            let mut combination: Combination =
                Vec::with_capacity(bases[base].len() + matrix.axes.len());
            combination.extend_from_slice(&bases[base]);
            combination.extend(
                (matrix.axes.iter())
                    .zip(&odometer)
                    .map(|((k, v), &i)| (k.clone(), v.value[i].clone())),
            );
            let excluded = matrix.exclude.iter().any(|entry| {
                entry
                    .value
                    .iter()
                    .all(|(k, v)| value_of(&combination, k) == Some(v))
            });
            if !excluded {
                combinations.push(combination);
            }
            for digit in (0..odometer.len()).rev() {
                odometer[digit] += 1;
                if odometer[digit] < matrix.axes[digit].1.value.len() {
                    continue 'product;
                }
                odometer[digit] = 0;
            }
            base += 1;
            if base == bases.len() {
                break;
            }
        }
    }
    let original = combinations.len();
    let mut fitting = Fitting::default();
    for entry in &matrix.include {
        let fits = fitting.combinations(&entry.value, &keys, &combinations[..original]);
        if fits.is_empty() {
            combinations.push(
                entry
                    .value
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            );
        }
        for i in fits {
            for (k, v) in &entry.value {
                set(&mut combinations[i], k, v);
            }
        }
    }
    if combinations.is_empty() {
        return Err(error(
            "`exclude:` removes every combination of this matrix: the case would never run".into(),
            Some("remove the case, or narrow `exclude:`".into()),
            None,
        ));
    }
    Ok(combinations)
}

/// `matrix` with the scalar values its `include` and `exclude` give the file's `columns` as
/// text, as the file's cells are.
fn cells_as_text(matrix: &Matrix, columns: &[String]) -> Matrix {
    let text = |entries: &[super::model::Located<std::collections::BTreeMap<String, Value>>]| {
        entries
            .iter()
            .map(|entry| {
                let mut entry = entry.clone();
                for (key, value) in entry.value.iter_mut() {
                    let scalar = value.is_number() || value.is_boolean();
                    if scalar && columns.contains(key) {
                        *value = Value::String(show(value));
                    }
                }
                entry
            })
            .collect()
    };
    Matrix {
        axes: matrix.axes.clone(),
        include: text(&matrix.include),
        exclude: text(&matrix.exclude),
        from: matrix.from.clone(),
    }
}

/// Which of the original combinations an `include:` entry fits: those with the entry's value
/// for each original key it names. Found through an index of the combinations by the values
/// of the keys an entry names (built once for each set of keys), so that thousands of entries
/// over thousands of combinations take no time to speak of; an entry whose values are lists or
/// mappings is compared with every combination.
#[derive(Default)]
struct Fitting {
    /// For each set of keys entries name: the combinations, by their values of those keys.
    by_keys: std::collections::HashMap<Vec<String>, std::collections::HashMap<String, Vec<usize>>>,
}

impl Fitting {
    fn combinations(
        &mut self,
        entry: &std::collections::BTreeMap<String, Value>,
        keys: &[&str],
        originals: &[Combination],
    ) -> Vec<usize> {
        let named: Vec<(&String, &Value)> = entry
            .iter()
            .filter(|(k, _)| keys.contains(&k.as_str()))
            .collect();
        if named.iter().any(|(_, v)| v.is_array() || v.is_object()) {
            return (0..originals.len())
                .filter(|&i| {
                    named
                        .iter()
                        .all(|(k, v)| value_of(&originals[i], k) == Some(v))
                })
                .collect();
        }
        let names: Vec<String> = named.iter().map(|(k, _)| (*k).clone()).collect();
        let index = self.by_keys.entry(names).or_insert_with_key(|names| {
            let mut index: std::collections::HashMap<String, Vec<usize>> = Default::default();
            for (i, combination) in originals.iter().enumerate() {
                let values = names.iter().map(|k| value_of(combination, k));
                index.entry(joined(values)).or_default().push(i);
            }
            index
        });
        index
            .get(&joined(named.iter().map(|(_, v)| Some(*v))))
            .into_iter()
            .flatten()
            .copied()
            .filter(|&i| {
                named
                    .iter()
                    .all(|(k, v)| value_of(&originals[i], k) == Some(v))
            })
            .collect()
    }
}

/// Values as one text, to look combinations up by.
fn joined<'a>(values: impl Iterator<Item = Option<&'a Value>>) -> String {
    values
        .map(|v| v.map_or_else(String::new, Value::to_string))
        .collect::<Vec<_>>()
        .join("\u{0}")
}

fn value_of<'a>(combination: &'a Combination, key: &str) -> Option<&'a Value> {
    combination.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

fn set(combination: &mut Combination, key: &str, value: &Value) {
    match combination.iter_mut().find(|(k, _)| k == key) {
        Some(slot) => slot.1 = value.clone(),
        None => combination.push((key.to_string(), value.clone())),
    }
}

/// A value as it appears in names: strings bare, everything else as JSON.
pub fn show(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// ` [k=v, …]` over the given keys of a combination (those it has).
pub fn suffix(combination: &Combination, keys: &[&str]) -> String {
    let parts: Vec<String> = combination
        .iter()
        .filter(|(k, _)| keys.contains(&k.as_str()))
        .map(|(k, v)| format!("{k}={}", show(v)))
        .collect();
    format!(" [{}]", parts.join(", "))
}

/// Makes the rendered names of one case's combinations unique, stably: when the name
/// template leaves some equal, every name gets ` [k=v, …]` of the keys the template does not
/// mention (or of all keys, when that is not enough).
pub fn unique_names(
    names: Vec<String>,
    combinations: &[Combination],
    template: &str,
) -> Vec<String> {
    if all_distinct(&names) {
        return names;
    }
    let mut all_keys: Vec<&str> = Vec::new();
    for combination in combinations {
        for (k, _) in combination {
            if !all_keys.contains(&k.as_str()) {
                all_keys.push(k);
            }
        }
    }
    let unmentioned: Vec<&str> = all_keys
        .iter()
        .copied()
        .filter(|k| !mentions(template, k))
        .collect();
    let with = |keys: &[&str]| -> Vec<String> {
        names
            .iter()
            .zip(combinations)
            .map(|(n, c)| format!("{n}{}", suffix(c, keys)))
            .collect()
    };
    if !unmentioned.is_empty() {
        let named = with(&unmentioned);
        if all_distinct(&named) {
            return named;
        }
    }
    with(&all_keys)
}

/// True when `text` reads `matrix.KEY` (and not merely a longer key starting with KEY).
pub fn mentions(text: &str, key: &str) -> bool {
    let needle = format!("matrix.{key}");
    text.match_indices(&needle).any(|(i, _)| {
        !text[i + needle.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '-')
    })
}

fn all_distinct(names: &[String]) -> bool {
    let mut seen = std::collections::HashSet::with_capacity(names.len());
    names.iter().all(|n| seen.insert(n.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::model::Located;
    use serde_json::json;
    use std::collections::BTreeMap;

    fn loc<T>(value: T) -> Located<T> {
        Located {
            value,
            referenced: Location::UNKNOWN,
        }
    }

    fn matrix(axes: &[(&str, Value)]) -> Matrix {
        Matrix {
            axes: axes
                .iter()
                .map(|(k, v)| (k.to_string(), loc(v.as_array().unwrap().clone())))
                .collect(),
            include: Vec::new(),
            exclude: Vec::new(),
            from: None,
        }
    }

    /// A file's rows are combined with the lists (rows slowest), `exclude` and `include` see
    /// their columns, and a list may not repeat a column.
    #[test]
    fn a_files_rows_combine_with_the_lists() {
        let row = |e: &str, p: &str| -> Combination {
            vec![("event".into(), json!(e)), ("payout".into(), json!(p))]
        };
        let table = crate::scenario::table::Table {
            columns: vec!["event".into(), "payout".into()],
            rows: vec![row("install", "1"), row("signup", "2"), row("refund", "0")],
        };
        let mut m = matrix(&[("n", json!([1, 2]))]);
        // `payout: 0`, a number, is the cell `0`.
        m.exclude = vec![entry(json!({ "event": "refund", "payout": 0 }))];
        m.include = vec![entry(json!({ "payout": 2, "note": "signup pays" }))];
        let c = expand_with(&m, Some(&table), 100).unwrap();
        let all: Vec<String> = c
            .iter()
            .map(|c| {
                c.iter()
                    .map(|(k, v)| format!("{k}={}", show(v)))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        assert_eq!(
            all,
            [
                "event=install payout=1 n=1",
                "event=install payout=1 n=2",
                "event=signup payout=2 n=1 note=signup pays",
                "event=signup payout=2 n=2 note=signup pays",
            ]
        );
        let only_rows = expand_with(&matrix(&[]), Some(&table), 100).unwrap();
        assert_eq!(only_rows.len(), 3);
        let e = expand_with(&matrix(&[]), Some(&table), 2).unwrap_err();
        assert!(e.message.contains("3 cases (rows: 3)"), "{e:?}");
        let clash = expand_with(&matrix(&[("event", json!(["x"]))]), Some(&table), 100);
        assert!(
            clash
                .unwrap_err()
                .message
                .contains("both a list here and a column")
        );
    }

    fn entry(v: Value) -> Located<BTreeMap<String, Value>> {
        loc(serde_json::from_value(v).unwrap())
    }

    fn shown(combinations: &[Combination]) -> Vec<String> {
        combinations
            .iter()
            .map(|c| suffix(c, &c.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>()))
            .collect()
    }

    #[test]
    fn cartesian_product_in_written_order() {
        let m = matrix(&[
            ("event", json!(["install", "signup", "purchase"])),
            ("amount", json!(["0", 9.99])),
        ]);
        let c = expand(&m, DEFAULT_MAX_CASES).unwrap();
        assert_eq!(c.len(), 6);
        assert_eq!(
            shown(&c),
            [
                " [event=install, amount=0]",
                " [event=install, amount=9.99]",
                " [event=signup, amount=0]",
                " [event=signup, amount=9.99]",
                " [event=purchase, amount=0]",
                " [event=purchase, amount=9.99]",
            ]
        );
    }

    #[test]
    fn exclude_removes_matching_combinations() {
        let mut m = matrix(&[("os", json!(["a", "b"])), ("v", json!([1, 2, 3]))]);
        m.exclude = vec![entry(json!({"os": "a", "v": 2})), entry(json!({"v": 3}))];
        let c = expand(&m, 100).unwrap();
        assert_eq!(shown(&c), [" [os=a, v=1]", " [os=b, v=1]", " [os=b, v=2]"]);
    }

    #[test]
    fn include_extends_matching_or_adds_new_combinations() {
        // GitHub's documented example.
        let mut m = matrix(&[
            ("fruit", json!(["apple", "pear"])),
            ("animal", json!(["cat", "dog"])),
        ]);
        m.include = vec![
            entry(json!({"color": "green"})),
            entry(json!({"color": "pink", "animal": "cat"})),
            entry(json!({"fruit": "apple", "shape": "circle"})),
            entry(json!({"fruit": "banana"})),
            entry(json!({"fruit": "banana", "animal": "cat"})),
        ];
        let c = expand(&m, 100).unwrap();
        assert_eq!(
            shown(&c),
            [
                " [fruit=apple, animal=cat, color=pink, shape=circle]",
                " [fruit=apple, animal=dog, color=green, shape=circle]",
                " [fruit=pear, animal=cat, color=pink]",
                " [fruit=pear, animal=dog, color=green]",
                " [fruit=banana]",
                " [animal=cat, fruit=banana]",
            ]
        );
    }

    #[test]
    fn include_only_matrix_is_a_list_of_combinations() {
        let m = Matrix {
            include: vec![entry(json!({"a": 1})), entry(json!({"a": 2}))],
            ..Matrix::default()
        };
        assert_eq!(shown(&expand(&m, 10).unwrap()), [" [a=1]", " [a=2]"]);
    }

    #[test]
    fn guards_against_explosions_and_empty_results() {
        let m = matrix(&[
            ("a", json!((0..100).collect::<Vec<_>>())),
            ("b", json!((0..100).collect::<Vec<_>>())),
            ("c", json!((0..11).collect::<Vec<_>>())),
        ]);
        let e = expand(&m, DEFAULT_MAX_CASES).unwrap_err();
        assert!(
            e.message.contains("110000 cases (a: 100 × b: 100 × c: 11)"),
            "{}",
            e.message
        );
        assert!(e.help.unwrap().contains("--max-cases"));
        assert_eq!(expand(&m, 110_000).unwrap().len(), 110_000);

        let mut m = matrix(&[("a", json!([1]))]);
        m.exclude = vec![entry(json!({"a": 1}))];
        assert!(
            expand(&m, 10)
                .unwrap_err()
                .message
                .contains("removes every combination")
        );
        m.exclude = vec![entry(json!({"b": 1}))];
        assert!(expand(&m, 10).unwrap_err().message.contains("`b`"));
        let m = matrix(&[("a", json!([]))]);
        assert!(expand(&m, 10).unwrap_err().message.contains("no values"));
    }

    #[test]
    fn names_get_a_suffix_only_when_needed() {
        let m = matrix(&[
            ("event", json!(["install", "signup"])),
            ("amount", json!(["0", "1"])),
        ]);
        let c = expand(&m, 10).unwrap();
        let template = "{{matrix.event}} pays {{matrix.amount}}";
        let names: Vec<String> = c
            .iter()
            .map(|c| format!("{} pays {}", show(&c[0].1), show(&c[1].1)))
            .collect();
        assert_eq!(unique_names(names.clone(), &c, template), names);

        let template = "{{matrix.event}}";
        let names: Vec<String> = c.iter().map(|c| show(&c[0].1)).collect();
        assert_eq!(
            unique_names(names, &c, template),
            [
                "install [amount=0]",
                "install [amount=1]",
                "signup [amount=0]",
                "signup [amount=1]"
            ]
        );

        let names = vec!["same".to_string(); 4];
        assert_eq!(
            unique_names(names, &c, "same")[3],
            "same [event=signup, amount=1]"
        );
    }

    #[test]
    fn mentions_matches_whole_keys() {
        assert!(mentions("{{matrix.event}}", "event"));
        assert!(mentions("{{ matrix.event }}", "event"));
        assert!(!mentions("{{matrix.events}}", "event"));
        assert!(!mentions("{{vars.event}}", "event"));
    }

    /// The include rule as written (each entry against every combination): what the index
    /// must agree with.
    fn included_one_by_one(m: &Matrix) -> Vec<Combination> {
        let bare = Matrix {
            include: Vec::new(),
            ..m.clone()
        };
        let mut combinations = expand(&bare, 1_000).unwrap_or_default();
        let keys: Vec<&str> = m.axes.iter().map(|(k, _)| k.as_str()).collect();
        let original = combinations.len();
        for entry in &m.include {
            let mut fitted = false;
            for c in combinations.iter_mut().take(original) {
                if entry
                    .value
                    .iter()
                    .all(|(k, v)| !keys.contains(&k.as_str()) || value_of(c, k) == Some(v))
                {
                    fitted = true;
                    entry.value.iter().for_each(|(k, v)| set(c, k, v));
                }
            }
            if !fitted {
                combinations.push(
                    entry
                        .value
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                );
            }
        }
        combinations
    }

    proptest::proptest! {
        #[test]
        fn includes_fit_the_combinations_they_do_not_contradict(
            a in proptest::collection::vec(0u8..4, 1..4),
            b in proptest::collection::vec(0u8..3, 0..3),
            entries in proptest::collection::vec(
                (proptest::option::of(0u8..5), proptest::option::of(0u8..4), 0u8..3, proptest::bool::ANY),
                0..8,
            ),
        ) {
            // Values of mixed kinds: numbers, text, and a list (compared without the index).
            let value = |n: u8| match n {
                0 => json!(0),
                1 => json!("1"),
                2 => json!([2]),
                _ => json!(n),
            };
            let mut axes = vec![("a", Value::Array(a.iter().map(|&n| value(n)).collect()))];
            if !b.is_empty() {
                axes.push(("b", Value::Array(b.iter().map(|&n| value(n)).collect())));
            }
            let mut m = matrix(&axes);
            m.include = entries
                .iter()
                .map(|(a, b, extra, named)| {
                    let mut fields = serde_json::Map::new();
                    if let Some(a) = a {
                        fields.insert("a".into(), value(*a));
                    }
                    if let Some(b) = b {
                        fields.insert("b".into(), value(*b));
                    }
                    if *named {
                        fields.insert(format!("x{extra}"), value(*extra));
                    }
                    entry(Value::Object(fields))
                })
                .collect();
            let indexed = expand(&m, 1_000).map(|c| shown(&c)).unwrap_or_default();
            let one_by_one = shown(&included_one_by_one(&m));
            proptest::prop_assert_eq!(indexed, one_by_one);
        }
    }
}
