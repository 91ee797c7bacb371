//! A crate of a user's own, outside this workspace, from zero to a running listener by the
//! README's "Schemas, and your own crate" steps: its dependencies and catalog are the README's
//! own blocks, the first build names the command that writes the schema, that command writes it,
//! and the service runs on the embedded broker until SIGINT.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// What the user writes, as in the quick start: an event of the README's catalog topic, a
/// listener, and a `main` that publishes one order and runs until SIGINT.
const MAIN: &str = r#"
use erp_events::{App, Config, Envelope, HandlerError, erp_event, erp_listener};

#[erp_event(topic = "erp.purchase.orders", key = po_number)]
#[derive(Debug, Clone)]
pub struct PurchaseOrderPlaced {
    po_number: String,
    supplier: String,
    total_cents: i64,
}

#[erp_listener(group = "finance")]
async fn book(event: Envelope<PurchaseOrderPlaced>) -> Result<(), HandlerError> {
    println!("booked {} for {}", event.payload.po_number, event.payload.total_cents);
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().init();
    let app = App::from_config(&Config::from_env(), erp_events::catalog!())?;
    app.ready().await?;
    let order = PurchaseOrderPlaced {
        po_number: "PO-1".into(),
        supplier: "ACME".into(),
        total_cents: 12_500,
    };
    app.publisher("purchase-service")?.publish(&order).await?;
    for report in app.listener(book).run_until_signal().await? {
        println!("{} handled {} events", report.name, report.counts.handled);
    }
    Ok(())
}
"#;

/// The command the build's error names, and the README's step 4.
const WRITE_SCHEMAS: &str = "ERP_EVENTS_WRITE_SCHEMAS=1 cargo test erp_events_write_schema";

#[test]
fn a_crate_of_ones_own_goes_from_zero_to_a_running_listener_by_the_readme() {
    let readme = std::fs::read_to_string(repository().join("README.md")).unwrap();
    let section = section(&readme, "## Schemas, and your own crate");
    let dependencies = toml_block(section, "[dependencies]");
    let catalog = toml_block(section, "[[topic]]");
    assert!(
        section.contains(WRITE_SCHEMAS),
        "the README names the writer"
    );

    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("purchase-flow");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::create_dir_all(dir.join("schemas")).unwrap();
    let erp_events = repository().join("erp-events");
    let dependencies = dependencies.replace(
        r#"erp-events = "0.1""#,
        &format!("erp-events = {{ path = {:?} }}", erp_events),
    );
    assert!(dependencies.contains("path ="), "{dependencies}");
    // `[workspace]`: a crate of its own, not a member of the workspace it sits under.
    let manifest = format!(
        "[package]\nname = \"purchase-flow\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n{dependencies}\n[workspace]\n"
    );
    std::fs::write(dir.join("Cargo.toml"), manifest).unwrap();
    // This workspace's versions, so nothing new is downloaded.
    std::fs::copy(repository().join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    std::fs::write(dir.join("schemas/catalog.toml"), catalog).unwrap();
    std::fs::write(dir.join("src/main.rs"), MAIN).unwrap();

    let first = cargo(&dir, &["build"], false);
    let errors = String::from_utf8_lossy(&first.stderr);
    assert!(!first.status.success(), "no schema yet: {errors}");
    assert!(
        errors.contains("no schema for version 1 of `PURCHASE_ORDER_PLACED`")
            && errors.contains(WRITE_SCHEMAS),
        "{errors}"
    );

    let written = cargo(&dir, &["test", "erp_events_write_schema"], true);
    assert!(
        written.status.success(),
        "{}",
        String::from_utf8_lossy(&written.stderr)
    );
    let schema = dir.join("schemas/erp.purchase.orders/PURCHASE_ORDER_PLACED.v1.json");
    let schema = std::fs::read_to_string(&schema).unwrap();
    assert!(schema.contains("\"poNumber\"") && schema.contains("\"totalCents\""));

    let built = cargo(&dir, &["build"], false);
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let service = target_dir().join("debug/purchase-flow");
    let mut running = user_environment(&mut Command::new(service))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (lines, seen) = mpsc::channel();
    let stdout = running.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    wait_for_line(&seen, "booked PO-1 for 12500");
    let interrupted = Command::new("kill")
        .args(["-INT", &running.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    wait_for_line(&seen, "book handled 1 events");
    assert!(running.wait().unwrap().success());
}

/// Waits for the service to print `expected` (its logs go to stdout too); fails after 60 s.
fn wait_for_line(lines: &mpsc::Receiver<String>, expected: &str) {
    let mut printed = Vec::new();
    while let Ok(line) = lines.recv_timeout(Duration::from_secs(60)) {
        if line == expected {
            return;
        }
        printed.push(line);
    }
    panic!(
        "the service did not print {expected:?}; it printed:\n{}",
        printed.join("\n")
    );
}

fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The crate's own target folder (beside trybuild's), kept between runs.
fn target_dir() -> PathBuf {
    repository().join("target/tests/own-crate")
}

/// `cargo <args>` in `dir`, as the user runs it (with `ERP_EVENTS_WRITE_SCHEMAS=1`
/// when `writing`).
fn cargo(dir: &Path, args: &[&str], writing: bool) -> Output {
    let mut command = Command::new(env!("CARGO"));
    command
        .args(args)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target_dir());
    user_environment(&mut command);
    if writing {
        command.env("ERP_EVENTS_WRITE_SCHEMAS", "1");
    }
    command.output().unwrap()
}

/// A user's shell: none of this test run's service or override variables.
fn user_environment(command: &mut Command) -> &mut Command {
    for (name, _) in std::env::vars() {
        if name.starts_with("ERP_") || name.starts_with("KAFKA_") || name == "REDIS_URL" {
            command.env_remove(name);
        }
    }
    command
}

/// The text of the README section that starts with `heading`, up to the next `## ` heading.
fn section<'a>(readme: &'a str, heading: &str) -> &'a str {
    let start = readme.find(heading).expect("the README has the section");
    let rest = &readme[start + heading.len()..];
    &rest[..rest.find("\n## ").unwrap_or(rest.len())]
}

/// The body of the section's first ```toml block that contains `marker`, unindented.
fn toml_block(section: &str, marker: &str) -> String {
    section
        .split("```toml")
        .skip(1)
        .map(|block| block.split("```").next().unwrap_or_default())
        .find(|block| block.contains(marker))
        .expect("the section has the block")
        .lines()
        .map(str::trim_start)
        .collect::<Vec<_>>()
        .join("\n")
}
