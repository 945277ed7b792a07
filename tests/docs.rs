//! The docs stay true: docs/scenarios.md names every key of the schema, every matcher and every
//! helper, and each complete scenario file it shows passes `pitcrew validate`.

mod common;

use std::path::Path;

use serde_json::Value;

fn doc() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/scenarios.md"))
        .expect("docs/scenarios.md")
}

fn property_names(schema: &Value, names: &mut Vec<String>) {
    match schema {
        Value::Object(map) => {
            if let Some(Value::Object(props)) = map.get("properties") {
                names.extend(props.keys().cloned());
            }
            for v in map.values() {
                property_names(v, names);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| property_names(v, names)),
        _ => {}
    }
}

#[test]
fn every_key_matcher_and_helper_is_documented() {
    let doc = doc();
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/scenario.schema.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let mut names = Vec::new();
    property_names(&schema, &mut names);
    names.extend(
        pitcrew::scenario::matcher::MATCHER_NAMES
            .iter()
            .map(|s| s.to_string()),
    );
    names.extend(
        pitcrew::scenario::template::HELPER_NAMES
            .iter()
            .map(|s| s.to_string()),
    );
    names.sort();
    names.dedup();
    let missing: Vec<&String> = names
        .iter()
        .filter(|n| !doc.contains(&format!("`{n}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/scenarios.md never names {missing:?}"
    );
}

#[test]
fn complete_example_files_validate() {
    let doc = doc();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("docs-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut checked = 0;
    for (i, block) in doc.split("```yaml\n").skip(1).enumerate() {
        let block = block.split("```").next().unwrap_or("");
        let first = block
            .lines()
            .find(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
            .unwrap_or("");
        if !(first.starts_with("name:") || first.starts_with("cases:")) {
            continue;
        }
        let path = dir.join(format!("block-{i}.yaml"));
        std::fs::write(&path, block).unwrap();
        let shown = path.display().to_string();
        let out = common::pitcrew(&["validate", &shown]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "docs/scenarios.md yaml block {} does not validate:\n{block}\n{}",
            i + 1,
            String::from_utf8_lossy(&out.stderr)
        );
        checked += 1;
    }
    assert!(checked >= 1, "no complete example file in the docs");
}

/// The tenant docs/sandbox.md shows is a valid sandbox config.
#[test]
fn the_sandbox_config_example_loads() {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/sandbox.md"))
            .unwrap();
    let block = doc
        .split("```yaml\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("a yaml block");
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("sandbox-doc-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("tenant.yaml");
    std::fs::write(&path, block).unwrap();
    let config = pitcrew::sandbox::SandboxConfig::from_file(&path)
        .unwrap_or_else(|e| panic!("docs/sandbox.md's config does not load: {}", e.message));
    let offer = config.offers.iter().find(|o| o.id == "offer-1234").unwrap();
    assert_eq!(offer.events[1].status, "Pending");
    assert!(
        config.offers.iter().any(|o| o.id == "demo-offer"),
        "the built-in tenant stays"
    );
}

/// The complete profile docs/targets.md shows loads and compiles: pointed at a closed local
/// port, `pitcrew targets` lists every step and says unreachable (not a mistake in the file),
/// with the token from the environment masked.
#[test]
fn the_complete_profile_in_targets_md_compiles() {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/targets.md"))
            .unwrap();
    let block = doc
        .split("## A complete profile")
        .nth(1)
        .and_then(|rest| rest.split("```yaml\n").nth(1))
        .and_then(|b| b.split("```").next())
        .expect("a yaml block under `## A complete profile`");
    let port = common::dead_port();
    let block = block.replace(
        "https://api.acme.getgokart.ai",
        &format!("http://127.0.0.1:{port}"),
    );
    let dir = common::scratch("targets-doc");
    std::fs::write(dir.join("pitcrew.yaml"), block).unwrap();
    let out = common::pitcrew_in(
        &dir,
        &["targets"],
        &[
            ("GOKART_API_TOKEN", "tok-from-the-docs-4711"),
            ("PARTNER_SECRET", "partner-secret-0815"),
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stdout.contains("steps: click, conversion, resend, change_status, callback_log"),
        "docs/targets.md's profile does not compile:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("unreachable"), "{stdout}");
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    for secret in ["tok-from-the-docs-4711", "partner-secret-0815"] {
        assert!(!stdout.contains(secret) && !stderr.contains(secret));
    }
}
