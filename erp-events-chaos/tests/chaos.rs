//! The chaos test, on Apache Kafka (`KAFKA_BROKERS`) and Redis (`REDIS_URL`): three member
//! processes of one group share 100 000 steps over 24 partitions; while they work, members are
//! stopped with SIGTERM and with SIGKILL and started again, and the handler panics on the
//! first attempt of one step in 500. Then:
//!
//! - nothing is lost: every step was handled (exactly once, as the effect and the `done`
//!   marker are one Redis transaction);
//! - each member saw each key's steps in order;
//! - no two handler runs of one partition overlap in time, whichever members ran them;
//! - a step's handler ran again only where a member was killed while running it (at most the
//!   killed member's partitions), besides the panics' retries.

use std::collections::{BTreeMap, HashMap};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use erp_events::{Brokers, Kafka};
use erp_events_chaos::{ChaosStep, Handled};

const STEPS: i64 = 100_000;
const KEYS: i64 = 1_000;
const PARTITIONS: usize = 24;
const PATIENCE: Duration = Duration::from_secs(600);

/// `variable`, or `None` after saying the test is skipped; a panic under
/// `ERP_REQUIRE_SERVICES=1`.
fn service(variable: &str) -> Option<String> {
    match std::env::var(variable).ok().filter(|v| !v.is_empty()) {
        Some(value) => Some(value),
        None if std::env::var("ERP_REQUIRE_SERVICES").as_deref() == Ok("1") => {
            panic!("chaos: {variable} is not set, and ERP_REQUIRE_SERVICES=1 requires it")
        }
        None => {
            eprintln!("SKIPPED chaos: {variable} is not set (set it, or run .ci/run)");
            None
        }
    }
}

/// A member process; its log goes to `target/chaos/<run>/<name>.log`.
struct Member {
    name: String,
    process: Child,
}

struct Chaos {
    brokers: String,
    redis_url: String,
    run: String,
    logs: std::path::PathBuf,
}

impl Chaos {
    fn start(&self, name: &str) -> Member {
        let log = std::fs::File::create(self.logs.join(format!("{name}.log"))).unwrap();
        let process = Command::new(env!("CARGO_BIN_EXE_chaos-member"))
            .env("KAFKA_BROKERS", &self.brokers)
            .env("REDIS_URL", &self.redis_url)
            .env_remove("ERP_REDIS_CLUSTER_NODES")
            .env("CHAOS_RUN", &self.run)
            .env("CHAOS_MEMBER", name)
            .env("RUST_BACKTRACE", "0")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start a chaos member");
        Member {
            name: name.to_owned(),
            process,
        }
    }

    fn list(&self, list: &str) -> Vec<String> {
        let client = redis::Client::open(self.redis_url.as_str()).unwrap();
        let mut connection = client.get_connection().unwrap();
        redis::cmd("LRANGE")
            .arg(format!("{}:{list}", self.run))
            .arg(0)
            .arg(-1)
            .query(&mut connection)
            .unwrap()
    }

    fn handled_count(&self) -> usize {
        let client = redis::Client::open(self.redis_url.as_str()).unwrap();
        let mut connection = client.get_connection().unwrap();
        redis::cmd("LLEN")
            .arg(format!("{}:handled", self.run))
            .query(&mut connection)
            .unwrap()
    }

    /// Waits until `count` steps are handled, failing after [`PATIENCE`].
    async fn wait_for(&self, count: usize, started: Instant) {
        while self.handled_count() < count {
            assert!(
                started.elapsed() < PATIENCE,
                "only {} of {count} steps handled after {PATIENCE:?}",
                self.handled_count()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn signal(member: &Member, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &member.process.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill {signal} {}", member.name);
}

/// Stops `member` gracefully (SIGTERM) and waits for it to leave.
fn stop(mut member: Member) {
    signal(&member, "-TERM");
    let status = member.process.wait().unwrap();
    assert!(
        status.success(),
        "{} stopped cleanly: {status}",
        member.name
    );
}

/// Kills `member` (SIGKILL): no commit, no leaving, claims left to expire.
fn kill(mut member: Member) {
    signal(&member, "-KILL");
    member.process.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_stopped_killed_and_restarted_lose_nothing_and_never_share_a_partition() {
    let (Some(brokers), Some(redis_url)) = (service("KAFKA_BROKERS"), service("REDIS_URL")) else {
        return;
    };
    let run = format!("chaos-{}", uuid::Uuid::new_v4().simple());
    let logs = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(&run);
    std::fs::create_dir_all(&logs).unwrap();
    let chaos = Chaos {
        brokers: brokers.clone(),
        redis_url,
        run: run.clone(),
        logs,
    };
    let catalog = erp_events::catalog!();
    let kafka = Kafka::connect(&Brokers::External(brokers), catalog).unwrap();
    kafka
        .provision(catalog, 1)
        .await
        .expect("provision the chaos topic");

    // The steps: `KEYS` keys of this run, numbered per key.
    let steps: Vec<ChaosStep> = (0..STEPS)
        .map(|i| ChaosStep {
            key: format!("{run}-{}", i % KEYS),
            seq: i / KEYS,
            panics: i % 500 == 7,
        })
        .collect();
    let publisher = kafka.publisher("chaos-producer").unwrap();
    let deliveries = publisher.publish_all(&steps).await.unwrap();
    let partition_of: HashMap<&str, i32> = steps
        .iter()
        .zip(&deliveries)
        .map(|(step, delivery)| (step.key.as_str(), delivery.partition))
        .collect();
    let used: std::collections::HashSet<i32> = partition_of.values().copied().collect();
    assert_eq!(used.len(), PARTITIONS, "the keys cover every partition");

    let started = Instant::now();
    let mut members = vec![chaos.start("a1"), chaos.start("b1"), chaos.start("c1")];
    let total = STEPS as usize;
    // A graceful stop and restart, two kills and restarts, another graceful stop.
    chaos.wait_for(total / 10, started).await;
    stop(members.remove(0));
    members.push(chaos.start("a2"));
    chaos.wait_for(total * 3 / 10, started).await;
    kill(members.remove(0));
    members.push(chaos.start("b2"));
    chaos.wait_for(total / 2, started).await;
    kill(members.remove(0));
    members.push(chaos.start("c2"));
    chaos.wait_for(total * 7 / 10, started).await;
    stop(members.remove(0));
    members.push(chaos.start("a3"));
    chaos.wait_for(total, started).await;
    let elapsed = started.elapsed();
    for member in members {
        stop(member);
    }

    let handled: Vec<Handled> = chaos
        .list("handled")
        .iter()
        .map(|line| Handled::parse(line).expect("a handled line"))
        .collect();
    let mut times: BTreeMap<(&str, i64), u32> = BTreeMap::new();
    for step in &handled {
        *times.entry((step.key.as_str(), step.seq)).or_default() += 1;
    }
    let lost = total - times.len();
    let repeated_effects = times.values().filter(|n| **n > 1).count();
    assert_eq!(
        (lost, repeated_effects),
        (0, 0),
        "every step handled exactly once"
    );

    // Each member saw each key in order.
    let mut seen: HashMap<(&str, &str), i64> = HashMap::new();
    let mut in_start_order: Vec<&Handled> = handled.iter().collect();
    in_start_order.sort_by_key(|step| step.start);
    for step in &in_start_order {
        let last = seen.insert((step.member.as_str(), step.key.as_str()), step.seq);
        assert!(
            last.is_none_or(|last| last < step.seq),
            "{} saw {} step {} after step {last:?}",
            step.member,
            step.key,
            step.seq
        );
    }

    // No two runs of one partition overlap.
    let mut by_partition: BTreeMap<i32, Vec<&Handled>> = BTreeMap::new();
    for step in &in_start_order {
        by_partition
            .entry(partition_of[step.key.as_str()])
            .or_default()
            .push(step);
    }
    let mut handovers = 0;
    for (partition, runs) in &by_partition {
        for pair in runs.windows(2) {
            assert!(
                pair[1].start >= pair[0].end,
                "partition {partition}: {} ran {} step {} while {} still ran {} step {}",
                pair[1].member,
                pair[1].key,
                pair[1].seq,
                pair[0].member,
                pair[0].key,
                pair[0].seq
            );
            handovers += usize::from(pair[1].member != pair[0].member);
        }
    }

    // A handler ran more often than its panics explain only where a member was killed while
    // running it, or where a graceful stop interrupted a panicking step's retry.
    let killed = ["b1", "c1"];
    let mut starts: HashMap<String, (Vec<String>, bool)> = HashMap::new();
    for line in chaos.list("starts") {
        let mut parts = line.split('|');
        let (member, event, panics) = (parts.next(), parts.next(), parts.next());
        let entry = starts
            .entry(event.expect("member|eventId|panics").to_owned())
            .or_default();
        entry.0.push(member.expect("a member").to_owned());
        entry.1 = panics == Some("1");
    }
    let panics = steps.iter().filter(|step| step.panics).count();
    let (mut after_kills, mut after_stops) = (0, 0);
    for (event, (members, panicking)) in &starts {
        let expected = 1 + usize::from(*panicking);
        if members.len() <= expected {
            continue;
        }
        if members
            .iter()
            .any(|member| killed.contains(&member.as_str()))
        {
            after_kills += 1;
        } else {
            assert!(
                *panicking,
                "event {event} ran {} times ({members:?}) though no kill explains it",
                members.len()
            );
            after_stops += 1;
        }
    }
    // One step in flight per partition a killed member owned. That is a third of them only
    // while all three members run; a member killed while another is down or restarting owns
    // more (CI saw 17 repeats against a bound of 2 x 24 / 3), up to every partition.
    let in_flight_at_kills = killed.len() * PARTITIONS;
    assert!(
        after_kills <= in_flight_at_kills,
        "{after_kills} steps ran again after a kill; the killed members had at most {in_flight_at_kills} in flight"
    );
    let kills = killed.len();
    println!(
        "chaos: {total} steps over {PARTITIONS} partitions in {elapsed:.1?}; 0 lost, 0 effects repeated; \
         {panics} panics retried; {after_kills} steps ran again after {kills} kills (at most {in_flight_at_kills} in flight), \
         {after_stops} panicking steps whose retry a graceful stop interrupted; \
         {handovers} partition handovers between members, none overlapping"
    );
}
