//! One-command benchmark suite: each of our components against its baseline, in the same run,
//! on the embedded broker, reporting ratios (absolute numbers alone mean little on shared
//! machines).
//!
//! ```text
//! cargo run --release -p erp-events-bench -- all        # publish, consume, dedup, peer, spring
//! cargo run --release -p erp-events-bench -- consume --events 200000 --rounds 3
//! cargo run --release -p erp-events-bench -- all --smoke  # a few thousand events (CI)
//! ```
//!
//! `--live N` sets how many live events follow the backlog (a tenth of it by default), and
//! `ERP_BENCH_SIDE_WRAPPER` a command each side of this binary runs under (`valgrind
//! --tool=callgrind ...`: see `scripts/instructions-per-record`).
//!
//! Each measured side runs in a child process of its own (this binary, `side <name>`) against a
//! fresh broker owned by this process, so its peak RSS is its own and not the broker's log.
//! Consumers are measured twice: throughput on a backlog, then publish-to-handler latency on a
//! paced live stream.

mod broker;
mod measure;
mod naive;
mod sides;

use std::process::{ExitCode, Stdio};

use broker::{Broker, BrokerKind};
use erp_events::ConfirmMode;
use measure::Measurement;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

/// Settings of a run.
#[derive(Debug, Clone)]
struct Settings {
    events: usize,
    live: usize,
    partitions: i32,
    rounds: usize,
    redis: Option<String>,
    smoke: bool,
    /// Apache Kafka for every pair (`--broker apache`), not only for `spring`.
    apache_everywhere: bool,
}

/// A side of a comparison: what runs, and how it is described in the table.
struct Side {
    name: &'static str,
    label: &'static str,
    /// What it reads: nothing (a publisher), the measured topic, or all five of the `groups`
    /// pair.
    reads: Reads,
}

/// The backlog a side reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reads {
    Nothing,
    Movements,
    FiveTopics,
}

const PUBLISH_OURS: Side = Side {
    name: "publish-ours",
    label: "erp-events Publisher (pipelined)",
    reads: Reads::Nothing,
};
const PUBLISH_RAW: Side = Side {
    name: "publish-raw",
    label: "raw rdkafka FutureProducer loop",
    reads: Reads::Nothing,
};
const CONSUME_OURS: Side = Side {
    name: "consume-ours",
    label: "erp-events listener, no dedup",
    reads: Reads::Movements,
};
const CONSUME_HAND: Side = Side {
    name: "consume-hand",
    label: "hand-written StreamConsumer loop",
    reads: Reads::Movements,
};
const CONSUME_REDIS: Side = Side {
    name: "consume-redis",
    label: "erp-events listener + Redis store",
    reads: Reads::Movements,
};
const CONSUME_REDIS_EACH: Side = Side {
    name: "consume-redis-each",
    label: "erp-events + Redis, each record",
    reads: Reads::Movements,
};
const CONSUME_NAIVE: Side = Side {
    name: "consume-naive",
    label: "erp-events listener + naive SET NX",
    reads: Reads::Movements,
};
const CONSUME_PEER: Side = Side {
    name: "consume-faststream",
    label: "faststream subscriber (aiokafka)",
    reads: Reads::Movements,
};
const CONSUME_SPRING: Side = Side {
    name: "consume-spring",
    label: "Spring listener, commit per record",
    reads: Reads::Movements,
};
const CONSUME_SPRING_BATCH: Side = Side {
    name: "consume-spring-batch",
    label: "Spring listener, commit per poll",
    reads: Reads::Movements,
};

const GROUPS_OURS: Side = Side {
    name: "consume-groups-ours",
    label: "erp-events, 5 groups on 5 topics",
    reads: Reads::FiveTopics,
};
const GROUPS_HAND: Side = Side {
    name: "consume-groups-hand",
    label: "5 hand-written loops, 5 topics",
    reads: Reads::FiveTopics,
};

// The multi-threaded runtime `#[tokio::main]` gives an application, for every side alike.
#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("side") => run_side_here(&args[1..]).await,
        mode => run_suite(mode.unwrap_or("all"), &args[1.min(args.len())..]).await,
    }
}

fn option(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|arg| arg == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// Runs one side in this (child) process and prints its measurement as JSON.
async fn run_side_here(args: &[String]) -> ExitCode {
    let name = args.first().map(String::as_str).unwrap_or_default();
    let bootstrap = option(args, "--bootstrap").expect("--bootstrap");
    let events: usize = option(args, "--events")
        .and_then(|v| v.parse().ok())
        .expect("--events");
    let live: usize = option(args, "--live")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let redis = option(args, "--redis").unwrap_or_default();
    let measurement = match name {
        "publish-ours" => sides::publish_ours(&bootstrap, events).await,
        "publish-raw" => sides::publish_raw(&bootstrap, events).await,
        "consume-ours" => sides::consume_ours(&bootstrap, events, live).await,
        "consume-hand" => sides::consume_hand_written(&bootstrap, events, live).await,
        "consume-groups-ours" => sides::consume_groups_ours(&bootstrap, events, live).await,
        "consume-groups-hand" => sides::consume_groups_hand(&bootstrap, events, live).await,
        "consume-redis" => {
            let store = (redis.as_str(), ConfirmMode::InGroups);
            sides::consume_redis(&bootstrap, events, live, store).await
        }
        "consume-redis-each" => {
            let store = (redis.as_str(), ConfirmMode::EachRecord);
            sides::consume_redis(&bootstrap, events, live, store).await
        }
        "consume-naive" => sides::consume_naive(&bootstrap, events, live, &redis).await,
        other => {
            eprintln!("unknown side `{other}`");
            return ExitCode::FAILURE;
        }
    };
    println!("{}", measurement.to_json());
    ExitCode::SUCCESS
}

async fn run_suite(mode: &str, args: &[String]) -> ExitCode {
    let smoke = args.iter().any(|arg| arg == "--smoke");
    let events = option(args, "--events")
        .and_then(|v| v.parse().ok())
        .unwrap_or(if smoke { 3_000 } else { 200_000 });
    let settings = Settings {
        events,
        live: option(args, "--live")
            .and_then(|v| v.parse().ok())
            .unwrap_or((events / 10).clamp(300, 20_000)),
        partitions: option(args, "--partitions")
            .and_then(|v| v.parse().ok())
            .unwrap_or(24),
        rounds: option(args, "--rounds")
            .and_then(|v| v.parse().ok())
            .unwrap_or(if smoke { 1 } else { 2 }),
        redis: option(args, "--redis")
            .or_else(|| std::env::var("REDIS_URL").ok())
            .filter(|url| !url.is_empty()),
        smoke,
        apache_everywhere: option(args, "--broker").as_deref() == Some("apache"),
    };
    use BrokerKind::Apache;
    // The mock cluster, unless `--broker apache` asks for Apache Kafka everywhere.
    let mock = if settings.apache_everywhere {
        Apache
    } else {
        BrokerKind::Embedded
    };
    let pairs: Vec<(&str, BrokerKind, Vec<&Side>)> = vec![
        ("publish", mock, vec![&PUBLISH_OURS, &PUBLISH_RAW]),
        ("consume", mock, vec![&CONSUME_OURS, &CONSUME_HAND]),
        ("groups", mock, vec![&GROUPS_OURS, &GROUPS_HAND]),
        (
            "dedup",
            mock,
            vec![
                &CONSUME_REDIS,
                &CONSUME_OURS,
                &CONSUME_NAIVE,
                &CONSUME_REDIS_EACH,
            ],
        ),
        ("peer", mock, vec![&CONSUME_OURS, &CONSUME_PEER]),
        // Java's client gets no answer from the mock cluster: both sides on Apache Kafka.
        (
            "spring",
            Apache,
            vec![&CONSUME_OURS, &CONSUME_SPRING, &CONSUME_SPRING_BATCH],
        ),
    ];
    let selected: Vec<_> = pairs
        .into_iter()
        .filter(|(pair, _, _)| mode == "all" || mode == *pair)
        .collect();
    if selected.is_empty() {
        eprintln!(
            "unknown mode `{mode}`; use all, publish, consume, groups, dedup, peer or spring"
        );
        return ExitCode::FAILURE;
    }
    println!(
        "erp-events benchmarks: {} events (~300-byte envelopes), {} partitions, {} live events at 5000/s for latency, best of {} round(s)",
        settings.events, settings.partitions, settings.live, settings.rounds
    );
    let mut rows = Vec::new();
    for (pair, broker, sides) in selected {
        if let Some(reason) = skip_reason(pair, &settings).await {
            println!("{pair}: skipped: {reason}");
            continue;
        }
        let mut best: Vec<Option<Measurement>> = vec![None; sides.len()];
        for _ in 0..settings.rounds {
            for (slot, side) in best.iter_mut().zip(&sides) {
                let measured = measure_side(side, broker, &settings).await;
                if slot.is_none_or(|kept| measured.throughput > kept.throughput) {
                    *slot = Some(measured);
                }
            }
        }
        let baseline = best[1].expect("measured").throughput;
        for (index, (side, measured)) in sides.iter().zip(best).enumerate() {
            let measured = measured.expect("measured");
            let ratio = (index != 1).then(|| measured.throughput / baseline);
            rows.push((pair, side.label, measured, ratio));
        }
    }
    print_table(&rows);
    ExitCode::SUCCESS
}

/// Why a pair cannot run here, if it cannot.
async fn skip_reason(pair: &str, settings: &Settings) -> Option<String> {
    match pair {
        "dedup" if settings.redis.is_none() => {
            Some("needs Redis: set REDIS_URL (e.g. redis://127.0.0.1:6379) or --redis".into())
        }
        "peer" if settings.smoke => {
            Some("not in smoke mode (it installs faststream from PyPI)".into())
        }
        "peer" => faststream_python().await.err(),
        "spring" => spring_peer().err(),
        _ => None,
    }
}

/// The Spring peer's jar (`ERP_SPRING_PEER`, built by `scripts/interop build`).
fn spring_peer() -> Result<std::path::PathBuf, String> {
    match std::env::var("ERP_SPRING_PEER") {
        Ok(jar) if std::path::Path::new(&jar).is_file() => Ok(jar.into()),
        Ok(jar) => Err(format!(
            "ERP_SPRING_PEER: no jar at {jar} (scripts/interop build)"
        )),
        Err(_) => Err("needs the Spring peer: ERP_SPRING_PEER=$(scripts/interop build)".into()),
    }
}

/// The virtualenv's Python with faststream, created by `peer/setup.sh` on first use.
async fn faststream_python() -> Result<std::path::PathBuf, String> {
    let peer = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("peer");
    let output = Command::new("sh")
        .arg(peer.join("setup.sh"))
        .stderr(Stdio::inherit())
        .output()
        .await
        .map_err(|error| format!("cannot run peer/setup.sh: {error}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    match stdout.lines().last() {
        Some(python) if output.status.success() => Ok(python.into()),
        _ => Err(format!("faststream is not available: {}", stdout.trim())),
    }
}

/// Runs `side` in a child process against a fresh broker of `kind` and returns its
/// measurement.
async fn measure_side(side: &Side, kind: BrokerKind, settings: &Settings) -> Measurement {
    let topics: &[&str] = match side.reads {
        Reads::FiveTopics => &sides::GROUP_TOPICS,
        Reads::Nothing | Reads::Movements => &[sides::TOPIC],
    };
    let broker = Broker::start(kind, topics, settings.partitions).await;
    let kafka = &broker.kafka;
    let publisher = kafka.publisher("inventory-service").expect("publisher");
    match side.reads {
        Reads::Nothing => {}
        Reads::Movements => {
            publisher
                .publish_all(&sides::movements(0, settings.events))
                .await
                .expect("backlog");
        }
        Reads::FiveTopics => sides::publish_group_backlog(kafka, settings.events).await,
    }
    let mut command = side_command(side, settings, kafka.bootstrap_servers()).await;
    command
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    let mut child = command.spawn().expect("start the side");
    let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
    let mut measurement = None;
    while let Some(line) = lines.next_line().await.expect("read the side's output") {
        if line == "LIVE" {
            publish_live(&publisher, settings).await;
        } else if let Some(parsed) = Measurement::from_json(&line) {
            measurement = Some(parsed);
        }
    }
    let status = child.wait().await.expect("the side exits");
    assert!(status.success(), "side {} failed: {status}", side.name);
    measurement.unwrap_or_else(|| panic!("side {} reported nothing", side.name))
}

/// The process that measures `side`: this binary (`side <name>`), the faststream script or the
/// Spring peer, each told the broker, the topic and how many events to expect.
async fn side_command(side: &Side, settings: &Settings, bootstrap: &str) -> Command {
    let (events, live) = (settings.events.to_string(), settings.live.to_string());
    if side.name.starts_with(CONSUME_SPRING.name) {
        // The seed's listener, committing each record after handling it (as the issue's
        // baseline asks), or Spring's default: the records of each poll together.
        let ack_mode = if side.name == CONSUME_SPRING.name {
            "RECORD"
        } else {
            "BATCH"
        };
        let mut command = Command::new("java");
        command
            .arg("-jar")
            .arg(spring_peer().expect("checked before"))
            .arg(format!("--peer.bench-events={events}"))
            .arg(format!("--peer.bench-live={live}"))
            .arg(format!("--peer.topic={}", sides::TOPIC))
            .arg(format!("--peer.ack-mode={ack_mode}"))
            .env("KAFKA_BROKERS", bootstrap);
        return command;
    }
    let mut command = if side.name == CONSUME_PEER.name {
        let python = faststream_python().await.expect("checked before");
        let mut command = Command::new(python);
        command.arg(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("peer/faststream_consume.py"),
        );
        command
    } else {
        side_of_this_binary(side.name)
    };
    command
        .args(["--bootstrap", bootstrap])
        .args(["--events", &events, "--live", &live])
        .args(["--topic", sides::TOPIC])
        .args(["--partitions", &settings.partitions.to_string()])
        .args(["--redis", settings.redis.as_deref().unwrap_or_default()]);
    command
}

/// This binary running `side`, under the command in `ERP_BENCH_SIDE_WRAPPER` when it is set
/// (`valgrind --tool=callgrind` counts a side's instructions, which CPU time's noise does not blur).
fn side_of_this_binary(side: &str) -> Command {
    let this = std::env::current_exe().expect("this binary");
    let wrapper = std::env::var("ERP_BENCH_SIDE_WRAPPER").unwrap_or_default();
    let mut words = wrapper.split_whitespace();
    let mut command = match words.next() {
        Some(program) => {
            let mut command = Command::new(program);
            command.args(words).arg(this);
            command
        }
        None => Command::new(this),
    };
    command.args(["side", side]);
    command
}

/// Publishes the live events at a steady pace, for the latency measurement.
async fn publish_live(publisher: &erp_events::Publisher, settings: &Settings) {
    let events = sides::movements(settings.events, settings.live);
    let mut pace = tokio::time::interval(sides::LIVE_PACE);
    let mut pending = Vec::with_capacity(events.len());
    for event in &events {
        pace.tick().await;
        pending.push(publisher.send(event).await.expect("live event"));
    }
    for delivery in pending {
        delivery.await.expect("live event delivered");
    }
}

fn print_table(rows: &[(&str, &str, Measurement, Option<f64>)]) {
    println!();
    println!(
        "{:<8} {:<36} {:>12} {:>8} {:>8} {:>9} {:>10} {:>7}",
        "pair", "side", "events/s", "p50 ms", "p99 ms", "RSS MiB", "CPU us/ev", "ratio"
    );
    for (pair, label, m, ratio) in rows {
        let ratio = ratio.map_or_else(|| "base".to_owned(), |r| format!("{r:.2}x"));
        // 0: a peer process that does not report it.
        let cpu = match m.cpu_us_per_event {
            0.0 => "-".to_owned(),
            cpu => format!("{cpu:.2}"),
        };
        println!(
            "{pair:<8} {label:<36} {:>12.0} {:>8.1} {:>8.1} {:>9.1} {cpu:>10} {ratio:>7}",
            m.throughput, m.p50_ms, m.p99_ms, m.peak_rss_mib
        );
    }
}
