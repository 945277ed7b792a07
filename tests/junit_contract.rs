//! The in-project JUnit checker catches what the contract forbids (so that a test passing it
//! means something).

mod common;

use common::junit::check;

#[test]
fn the_checker_catches_what_the_contract_forbids() {
    let ok = r#"<testsuites><testsuite name="s" tests="1" failures="0" errors="0" time="0.100"><testcase name="a" classname="s" file="f.yaml" line="3"/></testsuite></testsuites>"#;
    assert_eq!(check(ok), Ok(1));
    for (bad, why) in [
        (
            ok.replace(r#" line="3""#, r#" timestamp="x""#),
            "may not have `timestamp`",
        ),
        (ok.replace(r#"tests="1" "#, ""), "lacks `tests`"),
        (ok.replace("0.100", "0.1000"), "Surefire's format"),
        (
            ok.replace(
                "<testcase name=\"a\" classname=\"s\" file=\"f.yaml\" line=\"3\"/>",
                "<testcase name=\"a\"/><testcase name=\"a\"/>",
            ),
            "repeats the case name",
        ),
        (
            ok.replace("<testcase", "<properties/><testcase")
                .replace("</testsuite>", "<flakyFailure/></testsuite>"),
            "<flakyFailure> may not sit in <testsuite>",
        ),
    ] {
        let problems = check(&bad).unwrap_err();
        assert!(
            problems.iter().any(|p| p.contains(why)),
            "{why}: {problems:?}"
        );
    }
}
