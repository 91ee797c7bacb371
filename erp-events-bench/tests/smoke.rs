//! The benchmark suite in smoke mode (a few thousand events, debug build), so that it cannot
//! rot: every pair runs, and the table has a throughput and a ratio for each side.

use std::process::Command;

#[test]
fn every_pair_runs_in_smoke_mode() {
    let output = Command::new(env!("CARGO_BIN_EXE_erp-events-bench"))
        .args(["all", "--smoke"])
        .output()
        .expect("run the benchmark");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rows: Vec<&str> = stdout
        .lines()
        .filter(|line| {
            ["publish ", "consume ", "dedup ", "peer ", "spring "]
                .iter()
                .any(|p| line.starts_with(p))
        })
        .filter(|line| !line.contains("skipped"))
        .collect();
    let set = |variable: &str| std::env::var(variable).is_ok_and(|value| !value.is_empty());
    let mut pairs_run = vec!["publish", "consume"];
    if set("REDIS_URL") {
        pairs_run.push("dedup");
    }
    if set("ERP_SPRING_PEER") {
        pairs_run.push("spring");
    }
    for pair in pairs_run {
        let sides: Vec<&&str> = rows.iter().filter(|row| row.starts_with(pair)).collect();
        assert!(
            sides.len() >= 2,
            "{pair} has a baseline and ours:\n{stdout}"
        );
        for side in sides {
            let throughput: f64 = side
                .split_whitespace()
                .rev()
                .nth(4)
                .and_then(|value| value.parse().ok())
                .unwrap_or_else(|| panic!("a throughput in `{side}`"));
            assert!(throughput > 0.0, "{side}");
            assert!(
                side.ends_with("base") || side.ends_with('x'),
                "a ratio in `{side}`"
            );
        }
    }
}
