//! Compile-time checks as a user meets them: `tests/ui/pass` builds, each case of
//! `tests/ui/fail/<family>/` fails with the message in its `.stderr`. Regenerate the messages
//! with `TRYBUILD=overwrite cargo test --test ui`, then read each one as a user would.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/pass/*.rs");
    cases.compile_fail("tests/ui/fail/*/*.rs");
    drop(cases);

    // Against a fixture catalog: the same inventory module that builds above fails at the field
    // whose schema type changed, and schema versions are checked for backward compatibility.
    // The override is relative to each crate: from trybuild's project
    // (`target/tests/trybuild/erp-demo`) it names the fixture; from this crate it names nothing,
    // so the crate under test keeps the real catalog.
    // SAFETY: this test binary runs this one test; no other thread reads the environment.
    unsafe {
        std::env::set_var(
            erp_events::schema::SCHEMAS_DIR_VAR,
            "../../../../tests/ui/fixture/catalog",
        )
    };
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/fixture/pass/*.rs");
    cases.compile_fail("tests/ui/fixture/fail/*.rs");
}
