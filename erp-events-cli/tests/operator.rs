//! The operator's tool (`erp-events`) as an operator runs it, on Apache Kafka beside the Spring
//! peer: dead letters of both languages listed, shown and redriven once (also across a
//! SIGKILL), consumer lag, topics checked and provisioned, schemas checked, and an AsyncAPI
//! document the AsyncAPI project's parser accepts.
//!
//! Needs `KAFKA_BROKERS`, `ERP_SPRING_PEER` and `ERP_ASYNCAPI_MODULES` (what `.ci/run` sets);
//! each test says it was skipped without them, and fails under `ERP_REQUIRE_SERVICES=1`.

#[path = "../../tests/support/mod.rs"]
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use erp_demo::inventory::{InventoryMovement, MovementAction};
use erp_events::{App, Envelope, HandlerError, Kafka, ListenerExt, State, erp_listener};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, OwnedMessage};
use rdkafka::{Message, Offset, TopicPartitionList};
use serde_json::Value;
use support::peer::SpringPeer;
use support::services::{external_kafka, required_service};
use support::{PATIENCE, committed, end_offsets, read_dead_letters_where};

const TOPIC: &str = "erp.inventory.movements";
const DLT: &str = "erp.inventory.movements.DLT";
const TOOL: &str = env!("CARGO_BIN_EXE_erp-events");

/// The repository's catalog.
fn schemas() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas")
}

/// Runs the tool on `kafka` with the repository's catalog.
fn tool(kafka: &Kafka, args: &[&str]) -> Output {
    tool_with(Some(kafka), &schemas(), args)
}

fn tool_with(kafka: Option<&Kafka>, schemas: &Path, args: &[&str]) -> Output {
    let mut command = Command::new(TOOL);
    command
        .args(args)
        .env("ERP_EVENTS_SCHEMAS", schemas)
        .env_remove("KAFKA_BROKERS");
    if let Some(kafka) = kafka {
        command.env("KAFKA_BROKERS", kafka.bootstrap_servers());
    }
    tokio::task::block_in_place(|| command.output().expect("run the erp-events tool"))
}

/// The tool's JSON output, after checking it exited with `code`.
fn json_of(output: &Output, code: i32) -> Value {
    assert_eq!(
        output.status.code(),
        Some(code),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the tool prints JSON")
}

fn run_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_owned()
}

fn movement(product: &str, quantity: i64) -> InventoryMovement {
    InventoryMovement::new(product, "WH-1", MovementAction::Shipped, quantity)
}

/// A search index that rejects products ending in `-broken` until it is fixed.
#[derive(Clone, Default)]
struct Index {
    fixed: Arc<std::sync::atomic::AtomicBool>,
    handled: Arc<Mutex<Vec<(String, uuid::Uuid)>>>,
}

impl Index {
    fn handle(&self, event: &Envelope<InventoryMovement>) -> Result<(), HandlerError> {
        let product = &event.payload.product_id;
        if product.ends_with("-broken") && !self.fixed.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(HandlerError::permanent(format!(
                "the index rejected {product}"
            )));
        }
        self.handled
            .lock()
            .unwrap()
            .push((product.clone(), event.event_id));
        Ok(())
    }

    /// Our search-sync listener, on this index.
    fn listening(&self, kafka: &Kafka) -> erp_events::Running {
        App::new(kafka)
            .listener(indexes.with_state(self.clone()))
            .start()
            .unwrap()
    }

    fn fix(&self) {
        self.fixed.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    fn handled_of(&self, run: &str) -> Vec<(String, uuid::Uuid)> {
        let handled = self.handled.lock().unwrap();
        handled
            .iter()
            .filter(|(product, _)| product.starts_with(run))
            .cloned()
            .collect()
    }

    async fn wait_for(&self, run: &str, count: usize) -> Vec<(String, uuid::Uuid)> {
        support::within(PATIENCE, "the index handles the run's events", async {
            loop {
                let handled = self.handled_of(run);
                if handled.len() >= count {
                    return handled;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await
    }
}

#[erp_listener(group = "search-sync", retries = 0)]
async fn indexes(
    event: Envelope<InventoryMovement>,
    State(index): State<Index>,
) -> Result<(), HandlerError> {
    index.handle(&event)
}

/// The records of `topic` between `from` and its end now, read as readers of committed
/// records read them.
fn records_since(kafka: &Kafka, topic: &str, from: &BTreeMap<i32, i64>) -> Vec<OwnedMessage> {
    let to = end_offsets(kafka, topic);
    let consumer: BaseConsumer = kafka
        .client_config()
        .set("group.id", "erp-operator-test-reader")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .create()
        .unwrap();
    let mut list = TopicPartitionList::new();
    let mut open = BTreeSet::new();
    for (&partition, &start) in from {
        if to[&partition] > start {
            list.add_partition_offset(topic, partition, Offset::Offset(start))
                .unwrap();
            open.insert(partition);
        }
    }
    consumer.assign(&list).unwrap();
    let deadline = std::time::Instant::now() + PATIENCE;
    let mut records = Vec::new();
    while !open.is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "reading {topic} stalled"
        );
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) if message.offset() < to[&message.partition()] => {
                records.push(message.detach());
            }
            Some(Ok(_)) | None => {}
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(partition))) => {
                open.remove(&partition);
            }
            Some(Err(error)) => panic!("reading {topic}: {error}"),
        }
    }
    records
}

fn header<'a>(record: &'a OwnedMessage, name: &str) -> Option<&'a [u8]> {
    let headers = record.headers()?;
    headers
        .iter()
        .filter(|header| header.key == name)
        .last()
        .and_then(|header| header.value)
}

fn key_of(record: &OwnedMessage) -> String {
    String::from_utf8_lossy(record.key().unwrap_or_default()).into_owned()
}

/// `dlt redrive` of the run's dead letters, its position kept by group `position`.
fn redrive_of_run<'a>(run: &'a str, position: &'a str) -> [&'a str; 7] {
    [
        "dlt",
        "redrive",
        TOPIC,
        "--reason",
        run,
        "--position",
        position,
    ]
}

/// The records redriven into `TOPIC` since `from`, of this run's products.
/// The records of `run` redriven since `from`, once at least `at_least` of them can be read
/// (or after [`PATIENCE`]): a committed transaction's records reach `read_committed` readers
/// only once the broker has written its markers, a moment after the commit returned.
async fn redriven_since(
    kafka: &Kafka,
    from: &BTreeMap<i32, i64>,
    (run, at_least): (&str, usize),
) -> Vec<OwnedMessage> {
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let redriven: Vec<OwnedMessage> = records_since(kafka, TOPIC, from)
            .into_iter()
            .filter(|record| key_of(record).starts_with(run))
            .filter(|record| header(record, "erp_redriven-from").is_some())
            .collect();
        if redriven.len() >= at_least || std::time::Instant::now() >= deadline {
            return redriven;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_of_both_languages_are_listed_shown_and_redriven_once() {
    let test = "dead_letters_of_both_languages_are_listed_shown_and_redriven_once";
    let Some((kafka, _turn)) = external_kafka(test).await else {
        return;
    };
    let Some(peer) = SpringPeer::find(test, kafka.bootstrap_servers()) else {
        return;
    };
    let run = run_id();
    let index = Index::default();
    let running = index.listening(&kafka);
    let spring_group = format!("spring-search-{run}");
    let mut spring = peer
        .start(&[
            ("peer.consume", "true"),
            ("peer.group", &spring_group),
            ("peer.products", &run),
            ("peer.backoff-ms", "20"),
            ("peer.start-at-end", "true"),
        ])
        .await;
    // Three envelopes our listener gives up on, two the Spring service gives up on (our
    // listener handles those two).
    let publisher = kafka.publisher("inventory-service").unwrap();
    let ours: Vec<String> = (0..3).map(|i| format!("{run}-R{i}-broken")).collect();
    let theirs: Vec<String> = (0..2).map(|i| format!("{run}-S{i}-fail")).collect();
    let mut deliveries = BTreeMap::new();
    for (i, product) in ours.iter().chain(&theirs).enumerate() {
        let delivery = publisher
            .publish(&movement(product, i as i64 + 1))
            .await
            .unwrap();
        deliveries.insert(product.clone(), delivery);
    }
    spring.wait_for("failed", 8).await;
    let prefix = run.clone();
    read_dead_letters_where(&kafka, DLT, 5, move |dead| {
        dead.key_str().is_some_and(|key| key.starts_with(&prefix))
    })
    .await;
    index.wait_for(&run, 2).await;
    drop(spring);

    // `dlt list`, all of the run's and filtered.
    let listed = json_of(
        &tool(&kafka, &["dlt", "list", TOPIC, "--reason", &run, "--json"]),
        0,
    );
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 5, "{listed:#?}");
    for entry in listed {
        let key = entry["key"].as_str().unwrap();
        let delivery = &deliveries[key];
        assert_eq!(entry["originalTopic"], TOPIC);
        assert_eq!(entry["originalPartition"], delivery.partition);
        assert_eq!(entry["originalOffset"], delivery.offset);
        assert_eq!(entry["eventId"], delivery.event_id.to_string());
        assert_eq!(entry["eventType"], "SHIPPED");
        assert!(entry["originalTimestamp"].is_string());
        assert!(entry["deadLetteredAt"].is_string());
        assert!(entry["originalHeadersLost"].is_null(), "{entry}");
        if key.ends_with("-broken") {
            assert_eq!(entry["consumerGroup"], "search-sync");
            assert_eq!(entry["attempts"], 1);
            assert_eq!(entry["reason"], format!("the index rejected {key}"));
        } else {
            assert_eq!(entry["consumerGroup"], spring_group.as_str());
            assert_eq!(
                entry["errorType"],
                "org.springframework.kafka.listener.ListenerExecutionFailedException"
            );
            assert_eq!(entry["causeType"], "java.lang.IllegalStateException");
            assert!(entry["attempts"].is_null(), "Spring counts no attempts");
            assert!(
                entry["reason"]
                    .as_str()
                    .unwrap()
                    .contains(&format!("search index rejected {key}")),
                "{entry}"
            );
        }
    }
    let count = |args: &[&str]| {
        let mut all = vec!["dlt", "list", TOPIC, "--reason", &run, "--json"];
        all.extend(args);
        json_of(&tool(&kafka, &all), 0).as_array().unwrap().len()
    };
    assert_eq!(count(&["--group", "search-sync"]), 3);
    assert_eq!(count(&["--group", &spring_group]), 2);
    assert_eq!(count(&["--key", &theirs[0]]), 1);
    assert_eq!(count(&["--event-type", "SHIPPED", "--since", "1h"]), 5);
    assert_eq!(count(&["--event-type", "RECEIVED"]), 0);
    assert_eq!(count(&["--until", "1h"]), 0);
    let table = tool(&kafka, &["dlt", "list", TOPIC, "--reason", &run]);
    assert!(table.status.success());
    let table = String::from_utf8(table.stdout).unwrap();
    assert!(table.starts_with("POSITION"), "{table}");
    assert!(
        table.contains("5 dead letter(s) in erp.inventory.movements.DLT"),
        "{table}"
    );

    // `dlt show` of one of Spring's.
    let entry = listed
        .iter()
        .find(|e| e["key"] == theirs[0].as_str())
        .unwrap();
    let (partition, offset) = (entry["partition"].to_string(), entry["offset"].to_string());
    let shown = json_of(
        &tool(
            &kafka,
            &[
                "dlt",
                "show",
                DLT,
                &offset,
                "--partition",
                &partition,
                "--json",
            ],
        ),
        0,
    );
    assert_eq!(shown["value"]["eventId"], entry["eventId"]);
    assert_eq!(shown["value"]["payload"]["productId"], theirs[0].as_str());
    let names: Vec<&str> = shown["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"kafka_dlt-exception-cause-fqcn"),
        "{names:?}"
    );
    let partitions = tool(&kafka, &["dlt", "show", DLT, &offset]);
    assert_eq!(partitions.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&partitions.stderr).contains("say which with --partition"));

    // A dry run sends nothing and keeps no position.
    let position = format!("redrive-{run}");
    let before = end_offsets(&kafka, TOPIC);
    let redrive = redrive_of_run(&run, &position);
    let mut dry = redrive.to_vec();
    dry.extend(["--dry-run", "--json"]);
    let planned = json_of(&tool(&kafka, &dry), 0);
    assert_eq!(planned["wouldRedrive"].as_array().unwrap().len(), 5);
    assert!(
        planned["wouldRedrive"]
            .as_array()
            .unwrap()
            .iter()
            .all(|one| one["to"] == TOPIC)
    );
    assert_eq!(
        end_offsets(&kafka, TOPIC),
        before,
        "a dry run sends nothing"
    );
    assert!(
        committed(&kafka, &position, DLT).is_empty(),
        "nor keeps a position"
    );

    // The index is fixed: the redrive puts the five back and our listener handles its three
    // (the two it handled before are skipped as duplicates: the same eventId).
    index.fix();
    let mut run_json = redrive.to_vec();
    run_json.push("--json");
    let done = json_of(&tool(&kafka, &run_json), 0);
    assert_eq!(done["redriven"], 5, "{done}");
    let handled = index.wait_for(&run, 5).await;
    for product in &ours {
        assert!(
            handled
                .iter()
                .any(|(p, id)| p == product && *id == deliveries[product].event_id),
            "{product} handled once the index is fixed, with its own eventId"
        );
    }
    let redriven = redriven_since(&kafka, &before, (&run, 5)).await;
    assert_eq!(redriven.len(), 5);
    let dead = read_dead_letters_where(&kafka, DLT, 5, {
        let prefix = run.clone();
        move |dead| dead.key_str().is_some_and(|key| key.starts_with(&prefix))
    })
    .await;
    for record in &redriven {
        let key = key_of(record);
        let original = dead
            .iter()
            .find(|d| d.key_str() == Some(key.as_str()))
            .unwrap();
        assert_eq!(
            record.payload(),
            original.value.as_deref(),
            "the value, byte for byte"
        );
        assert!(
            record
                .headers()
                .is_none_or(|h| h.iter().all(|h| !h.key.starts_with("kafka_dlt-"))),
            "no dead-letter header goes back"
        );
        let from = String::from_utf8(header(record, "erp_redriven-from").unwrap().to_vec());
        assert_eq!(
            from.unwrap(),
            format!("{DLT}/{}/{}", original.partition, original.offset)
        );
        assert!(header(record, "erp_redriven-at").is_some());
        assert_eq!(
            record.partition(),
            deliveries[&key].partition,
            "the key's partition"
        );
    }

    // Again: nothing left to redrive.
    let after = end_offsets(&kafka, TOPIC);
    let again = json_of(&tool(&kafka, &run_json), 0);
    assert_eq!(again["redriven"], 0, "{again}");
    assert_eq!(end_offsets(&kafka, TOPIC), after);
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redrive_killed_midway_and_run_again_redrives_each_record_once() {
    let test = "a_redrive_killed_midway_and_run_again_redrives_each_record_once";
    let Some((kafka, _turn)) = external_kafka(test).await else {
        return;
    };
    const COUNT: usize = 30;
    let run = run_id();
    let index = Index::default();
    let running = index.listening(&kafka);
    let publisher = kafka.publisher("inventory-service").unwrap();
    let events: Vec<InventoryMovement> = (0..COUNT)
        .map(|i| movement(&format!("{run}-K{i}-broken"), i as i64 + 1))
        .collect();
    publisher.publish_all(&events).await.unwrap();
    let prefix = run.clone();
    read_dead_letters_where(&kafka, DLT, COUNT, move |dead| {
        dead.key_str().is_some_and(|key| key.starts_with(&prefix))
    })
    .await;
    running.shutdown().await;

    let before = end_offsets(&kafka, TOPIC);
    let position = format!("redrive-{run}");
    let args = redrive_of_run(&run, &position);
    let mut slow = Command::new(TOOL)
        .args(args)
        .args(["--rate", "10"])
        .env("ERP_EVENTS_SCHEMAS", schemas())
        .env("KAFKA_BROKERS", kafka.bootstrap_servers())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the redrive");
    // Killed once it has said it redrove some.
    let progress = BufReader::new(slow.stderr.take().unwrap());
    let reported = tokio::task::block_in_place(|| {
        progress
            .lines()
            .map_while(Result::ok)
            .find(|line| line.starts_with("redriven ") && !line.starts_with("redriven 0 "))
    })
    .expect("the redrive reports its progress");
    slow.kill().expect("SIGKILL");
    slow.wait().unwrap();
    // The tool reported a committed transaction before it was killed.
    let first = redriven_since(&kafka, &before, (&run, 1)).await.len();
    assert!(
        first > 0 && first < COUNT,
        "killed midway: {first} of {COUNT} ({reported})"
    );

    let rest = json_of(&tool(&kafka, &[&args[..], &["--json"]].concat()), 0);
    assert_eq!(rest["redriven"], (COUNT - first) as u64, "{rest}");
    let redriven = redriven_since(&kafka, &before, (&run, COUNT)).await;
    let sources: BTreeSet<Vec<u8>> = redriven
        .iter()
        .map(|record| header(record, "erp_redriven-from").unwrap().to_vec())
        .collect();
    assert_eq!(redriven.len(), COUNT, "each dead letter once");
    assert_eq!(sources.len(), COUNT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_lag_is_what_was_produced_and_committed_with_the_members_that_own_partitions() {
    let test = "group_lag_is_what_was_produced_and_committed";
    let Some((kafka, _turn)) = external_kafka(test).await else {
        return;
    };
    let run = run_id();
    let index = Index::default();
    let running = index.listening(&kafka);
    let publisher = kafka.publisher("inventory-service").unwrap();
    let batch = |from: usize| -> Vec<InventoryMovement> {
        (from..from + 12)
            .map(|i| movement(&format!("{run}-L{}", i % 6), i as i64 + 1))
            .collect()
    };
    publisher.publish_all(&batch(0)).await.unwrap();
    index.wait_for(&run, 12).await;
    running.shutdown().await;
    let lag_of = |commits: &BTreeMap<i32, i64>, ends: &BTreeMap<i32, i64>| -> i64 {
        ends.iter()
            .map(|(p, end)| end - commits.get(p).copied().unwrap_or(0))
            .sum()
    };
    let before = lag_of(
        &committed(&kafka, "search-sync", TOPIC),
        &end_offsets(&kafka, TOPIC),
    );
    publisher.publish_all(&batch(12)).await.unwrap();

    let lag = json_of(
        &tool(&kafka, &["groups", "lag", "search-sync", "--json"]),
        0,
    );
    let rows = lag.as_array().unwrap();
    let (commits, ends) = (
        committed(&kafka, "search-sync", TOPIC),
        end_offsets(&kafka, TOPIC),
    );
    let ours: Vec<&Value> = rows.iter().filter(|row| row["topic"] == TOPIC).collect();
    assert_eq!(ours.len(), ends.len(), "one row per partition: {lag}");
    for row in &ours {
        let partition = row["partition"].as_i64().unwrap() as i32;
        assert_eq!(row["group"], "search-sync");
        assert_eq!(row["committed"], commits[&partition]);
        assert_eq!(row["end"], ends[&partition]);
        assert_eq!(row["lag"], ends[&partition] - commits[&partition]);
        assert!(row["member"].is_null(), "no member while nobody listens");
    }
    let total: i64 = ours.iter().map(|row| row["lag"].as_i64().unwrap()).sum();
    assert_eq!(total, lag_of(&commits, &ends));
    assert_eq!(total - before, 12, "the second batch waits");

    // With a member listening, it owns every partition.
    let running = index.listening(&kafka);
    index.wait_for(&run, 24).await;
    let lag = json_of(
        &tool(&kafka, &["groups", "lag", "search-sync", "--json"]),
        0,
    );
    for row in lag
        .as_array()
        .unwrap()
        .iter()
        .filter(|row| row["topic"] == TOPIC)
    {
        let member = row["member"].as_str().unwrap_or_default();
        assert!(member.starts_with("erp-search-sync@"), "{row}");
    }
    running.shutdown().await;
    let table = String::from_utf8(tool(&kafka, &["groups", "lag"]).stdout).unwrap();
    assert!(table.starts_with("GROUP"), "{table}");
    for group in ["search-sync", "analytics", "finance", "audit"] {
        assert!(table.contains(group), "every catalog group: {table}");
    }
    let unknown = tool(&kafka, &["groups", "lag", "nobody"]);
    assert_eq!(unknown.status.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_check_reports_what_provision_then_creates() {
    let test = "topics_check_reports_what_provision_then_creates";
    let Some((kafka, _turn)) = external_kafka(test).await else {
        return;
    };
    let checked = json_of(&tool(&kafka, &["topics", "check", "--json"]), 0);
    assert!(
        checked
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["status"] == "ok"),
        "{checked}"
    );
    // A catalog with one topic more: missing until provisioned.
    let run = run_id();
    let dir = std::env::temp_dir().join(format!("erp-operator-{run}"));
    std::fs::create_dir_all(&dir).unwrap();
    let topic = format!("erp.operator{run}.checks");
    let catalog = std::fs::read_to_string(schemas().join("catalog.toml")).unwrap()
        + &format!(
            "\n[[topic]]\nname = \"{topic}\"\nproducer = \"ops\"\nconsumers = [\"ops\"]\npartitions = 2\npurpose = \"A test's\"\n"
        );
    std::fs::write(dir.join("catalog.toml"), catalog).unwrap();
    let missing = tool_with(Some(&kafka), &dir, &["topics", "check", "--json"]);
    let rows = json_of(&missing, 1);
    let row = |rows: &Value, name: &str| {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|row| row["topic"] == name)
            .cloned()
            .unwrap()
    };
    assert_eq!(row(&rows, &topic)["status"], "missing");
    assert_eq!(row(&rows, &format!("{topic}.DLT"))["status"], "missing");
    let created = json_of(
        &tool_with(
            Some(&kafka),
            &dir,
            &["topics", "provision", "--replication-factor", "1", "--json"],
        ),
        0,
    );
    assert_eq!(row(&created, &topic)["status"], "created");
    assert_eq!(row(&created, &topic)["partitions"], 2);
    assert_eq!(row(&created, TOPIC)["status"], "ok");
    let again = json_of(
        &tool_with(Some(&kafka), &dir, &["topics", "check", "--json"]),
        0,
    );
    assert_eq!(row(&again, &format!("{topic}.DLT"))["status"], "ok");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn schemas_check_passes_the_catalog_and_names_a_break() {
    let clean = tool_with(None, &schemas(), &["schemas", "check"]);
    assert!(
        clean.status.success(),
        "{}",
        String::from_utf8_lossy(&clean.stdout)
    );
    // A copy whose backward topic gains a version that makes a property required.
    let dir = std::env::temp_dir().join(format!("erp-operator-schemas-{}", run_id()));
    let copy = Command::new("cp")
        .arg("-r")
        .arg(schemas())
        .arg(&dir)
        .status()
        .unwrap();
    assert!(copy.success());
    let topic = dir.join("erp.inventory.movements");
    let mut v2: Value = serde_json::from_str(
        &std::fs::read_to_string(topic.join("INVENTORY_MOVEMENT.v1.json")).unwrap(),
    )
    .unwrap();
    v2["properties"]["batch"] = serde_json::json!({"type": "string"});
    v2["required"].as_array_mut().unwrap().push("batch".into());
    std::fs::write(topic.join("INVENTORY_MOVEMENT.v2.json"), v2.to_string()).unwrap();
    // Under `forward`, a new version may not drop a property old readers require.
    let forward = dir.join("erp.evolution.forward");
    let mut v3: Value = serde_json::from_str(
        &std::fs::read_to_string(forward.join("STOCK_COUNTED.v2.json")).unwrap(),
    )
    .unwrap();
    let dropped = v3["required"][0].as_str().unwrap().to_owned();
    v3["properties"].as_object_mut().unwrap().remove(&dropped);
    v3["required"].as_array_mut().unwrap().remove(0);
    std::fs::write(forward.join("STOCK_COUNTED.v3.json"), v3.to_string()).unwrap();
    // A second event struct on the audit topic.
    let audit = dir.join("erp.audit.events");
    std::fs::copy(
        topic.join("INVENTORY_MOVEMENT.v1.json"),
        audit.join("INVENTORY_MOVEMENT.v1.json"),
    )
    .unwrap();
    let broken = tool_with(None, &dir, &["schemas", "check"]);
    assert_eq!(broken.status.code(), Some(1));
    let text = String::from_utf8(broken.stdout).unwrap();
    assert!(
        text.contains("BROKEN  erp.inventory.movements INVENTORY_MOVEMENT (v1, v2)")
            && text.contains("version 2 breaks the `backward` compatibility")
            && text.contains("`batch`"),
        "{text}"
    );
    assert!(
        text.contains("BROKEN  erp.evolution.forward STOCK_COUNTED (v1, v2, v3)")
            && text.contains("version 3 breaks the `forward` compatibility")
            && text.contains(&format!("`{dropped}`"))
            && text.contains("ok      erp.evolution.full STOCK_COUNTED (v1, v2)"),
        "{text}"
    );
    assert!(
        text.contains("BROKEN  erp.audit.events AUDIT_RECORD (v1)")
            && text.contains("its topic also carries INVENTORY_MOVEMENT"),
        "{text}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_asyncapi_document_passes_the_asyncapi_parser() {
    let test = "the_asyncapi_document_passes_the_asyncapi_parser";
    let output = tool_with(None, &schemas(), &["asyncapi"]);
    assert!(output.status.success());
    let document: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(document["asyncapi"], "3.0.0");
    let catalog = erp_events::catalog!();
    assert_eq!(
        document["channels"].as_object().unwrap().len(),
        2 * catalog.topics().len(),
        "a channel per topic and per dead-letter topic"
    );
    let receives = document["operations"]
        .as_object()
        .unwrap()
        .values()
        .filter(|operation| operation["action"] == "receive")
        .count();
    let groups: usize = catalog.topics().iter().map(|t| t.consumers.len()).sum();
    assert_eq!(receives, groups, "a receive per consumer group and topic");
    let Some(modules) = required_service("ERP_ASYNCAPI_MODULES", test) else {
        return;
    };
    let file = std::env::temp_dir().join(format!("erp-asyncapi-{}.json", run_id()));
    std::fs::write(&file, &output.stdout).unwrap();
    let validator = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/asyncapi/validate.mjs");
    let checked = Command::new("node")
        .arg(validator)
        .arg(&file)
        .arg("--warnings-as-errors")
        .env("ERP_ASYNCAPI_MODULES", modules)
        .output()
        .expect("run node");
    std::fs::remove_file(&file).unwrap();
    assert!(
        checked.status.success(),
        "the AsyncAPI parser refused the document:\n{}",
        String::from_utf8_lossy(&checked.stderr)
    );
}

#[test]
fn a_tool_without_its_cluster_or_with_an_unknown_topic_says_what_to_fix() {
    let no_cluster = tool_with(None, &schemas(), &["topics", "check"]);
    assert_eq!(no_cluster.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&no_cluster.stderr).contains("KAFKA_BROKERS is not set"));
    let no_catalog = tool_with(None, Path::new("/nonexistent"), &["schemas", "check"]);
    assert_eq!(no_catalog.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&no_catalog.stderr).contains("--schemas"));
    let kafka = Kafka::connect(
        &erp_events::Brokers::External("127.0.0.1:1".into()),
        erp_events::catalog!(),
    )
    .unwrap();
    let unknown = tool(&kafka, &["dlt", "list", "erp.nowhere.topic"]);
    assert_eq!(unknown.status.code(), Some(2));
    let error = String::from_utf8_lossy(&unknown.stderr);
    assert!(
        error.contains("neither a catalog topic") && error.contains(TOPIC),
        "{error}"
    );
    // A cluster that does not answer: an error naming it, exit 3.
    let silent = tool(&kafka, &["topics", "check"]);
    assert_eq!(silent.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&silent.stderr).contains("127.0.0.1:1"));
}

#[test]
fn every_command_has_help_with_an_example() {
    for command in [
        &[][..],
        &["topics"],
        &["topics", "provision"],
        &["topics", "check"],
        &["groups"],
        &["groups", "lag"],
        &["dlt"],
        &["dlt", "list"],
        &["dlt", "show"],
        &["dlt", "redrive"],
        &["schemas"],
        &["schemas", "check"],
        &["asyncapi"],
    ] {
        let help = Command::new(TOOL)
            .args(command)
            .arg("--help")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&help.stdout);
        assert!(help.status.success(), "{command:?}");
        assert!(
            text.contains("Example:\n  erp-events")
                || text.contains("Examples:\n  erp-events")
                || text.contains("Example:\n  KAFKA_BROKERS"),
            "{command:?} --help shows an example:\n{text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tool_reaches_a_secured_cluster_with_the_applications_settings() {
    let test = "the_tool_reaches_a_secured_cluster_with_the_applications_settings";
    // Provisioned on the plain listener of the same broker.
    let Some((_kafka, _turn)) = external_kafka(test).await else {
        return;
    };
    let Some(brokers) = required_service("KAFKA_SASL_SSL_BROKERS", test) else {
        return;
    };
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"));
    let password = var("KAFKA_SASL_SSL_PASSWORD");
    let run = |password: &str| {
        let mut command = Command::new(TOOL);
        command
            .args(["topics", "check"])
            .env("ERP_EVENTS_SCHEMAS", schemas())
            .env("KAFKA_BROKERS", &brokers)
            .env("ERP_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
            .env("ERP_KAFKA_SASL_MECHANISMS", "SCRAM-SHA-512")
            .env("ERP_KAFKA_SASL_USERNAME", var("KAFKA_SASL_SSL_USERNAME"))
            .env("ERP_KAFKA_SASL_PASSWORD", password)
            .env("ERP_KAFKA_SSL_CA_LOCATION", var("KAFKA_SASL_SSL_CA"));
        tokio::task::block_in_place(|| command.output().unwrap())
    };
    let checked = run(&password);
    assert!(
        checked.status.success(),
        "{}",
        String::from_utf8_lossy(&checked.stderr)
    );
    let wrong = format!("{password}-wrong");
    let refused = run(&wrong);
    assert_eq!(refused.status.code(), Some(3));
    let error = String::from_utf8_lossy(&refused.stderr);
    assert!(error.contains("authentication"), "{error}");
    assert!(!error.contains(&wrong), "no secret in errors: {error}");
}
