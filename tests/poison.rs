//! The poison corpus (`tests/poison/`): malformed records as a broken or hostile producer writes
//! them. Each one must land in the dead-letter topic, unchanged, with its reason
//! (`tests/poison/reasons.txt`), without the consumer panicking, and the good record after them
//! must be handled. On the embedded broker, and on the real one when `KAFKA_BROKERS` is set.
//!
//! A `*.gen.json` file describes a record too big to keep as bytes:
//! `{"prefix": .., "repeat": .., "times": .., "suffix": ..}`.

mod support;

use std::collections::BTreeMap;
use std::path::Path;

use erp_demo::inventory::{InventoryMovement, MovementAction};
use erp_events::{App, Envelope, HandlerError, Kafka, ListenerExt, State, erp_listener};
use rdkafka::Message;
use support::services::external_kafka;
use support::{
    Probe, committed, dead_letter_info, envelope_json, probed_once, produce_raw, read_records_where,
};

/// [`probed_once`] without idempotency: its worker reads each record only as it comes to it
/// (an idempotent one reads its batch first, for the claims).
#[erp_listener(group = "search-sync", retries = 0, idempotent = false)]
async fn probed_without_dedup(
    event: Envelope<InventoryMovement>,
    State(probe): State<Probe>,
) -> Result<(), HandlerError> {
    probe.call(&event)
}

/// Whether the round's listener is idempotent.
#[derive(Clone, Copy)]
enum Dedup {
    On,
    Off,
}

const TOPIC: &str = "erp.inventory.movements";

/// Every record of the corpus, by file name, in file-name order.
fn corpus() -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/poison");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/poison")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.file_name().is_some_and(|name| name != "reasons.txt"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let bytes = std::fs::read(&path).expect("a corpus file");
            let value = if name.ends_with(".gen.json") {
                generate(&bytes)
            } else {
                bytes
            };
            (name, value)
        })
        .collect()
}

fn generate(spec: &[u8]) -> Vec<u8> {
    let spec: serde_json::Value = serde_json::from_slice(spec).expect("a generator spec");
    let text = |key: &str| spec[key].as_str().expect("a string").to_owned();
    let times = spec["times"].as_u64().expect("a count") as usize;
    format!(
        "{}{}{}",
        text("prefix"),
        text("repeat").repeat(times),
        text("suffix")
    )
    .into_bytes()
}

/// The expected dead-letter reason of each corpus file (`<file> <reason>` per line).
fn reasons() -> BTreeMap<String, String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/poison/reasons.txt");
    std::fs::read_to_string(path)
        .expect("tests/poison/reasons.txt")
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let (file, reason) = line.split_once(' ').expect("`<file> <reason>`");
            (file.to_owned(), reason.trim().to_owned())
        })
        .collect()
}

/// The mock broker keeps about 5 MiB per partition: a bigger record is gone before anyone
/// reads it, so those run on the real broker only.
const MOCK_LIMIT: usize = 4 << 20;

async fn every_poison_pill_is_dead_lettered_with_its_reason(kafka: &Kafka, dedup: Dedup) {
    let corpus = corpus();
    assert!(
        corpus.len() >= 30,
        "the corpus has {} records",
        corpus.len()
    );
    let (fitting, huge): (Vec<_>, Vec<_>) = corpus
        .into_iter()
        .partition(|(_, value)| value.len() < MOCK_LIMIT);
    dead_letter_round(kafka, &fitting, dedup).await;
    if kafka.embedded().is_none() {
        // A round of their own, so that they cannot push the others out of the DLT either.
        dead_letter_round(kafka, &huge, dedup).await;
    }
}

async fn dead_letter_round(kafka: &Kafka, corpus: &[(String, Vec<u8>)], dedup: Dedup) {
    // One key for the whole round: one partition, so the good record comes after all of it.
    let key = format!("poison-{}", uuid::Uuid::now_v7().simple());
    let probe = Probe::succeeding();
    let app = App::new(kafka);
    let app = match dedup {
        Dedup::On => app.listener(probed_once.with_state(probe.clone())),
        Dedup::Off => app.listener(probed_without_dedup.with_state(probe.clone())),
    };
    let running = app.start().unwrap();
    let values: Vec<Vec<u8>> = corpus.iter().map(|(_, value)| value.clone()).collect();
    produce_raw(kafka, TOPIC, &key, &values).await;
    let good_id = uuid::Uuid::now_v7();
    let good = InventoryMovement::new(&key, "WH-1", MovementAction::Received, 1);
    produce_raw(
        kafka,
        TOPIC,
        &key,
        &[envelope_json(&good_id.to_string(), &good)],
    )
    .await;
    probe
        .wait_until("the good record after the corpus", |calls| {
            calls.iter().any(|call| call.event_id == good_id)
        })
        .await;
    running.shutdown().await;

    let own_key = key.clone();
    let dead = read_records_where(
        kafka,
        &format!("{TOPIC}.DLT"),
        corpus.len(),
        move |record| record.key() == Some(own_key.as_bytes()),
    )
    .await;
    let expected = reasons();
    let mut wrong = Vec::new();
    for ((name, value), record) in corpus.iter().zip(&dead) {
        assert!(
            record.payload().unwrap_or_default() == value.as_slice(),
            "{name}: value kept"
        );
        let info = dead_letter_info(record);
        assert_eq!(info.error_type, "erp_events::DecodeError", "{name}");
        assert_eq!(
            info.attempts,
            Some(0),
            "{name}: never handed to the handler"
        );
        if expected.get(name) != Some(&info.message) {
            wrong.push(format!("{name} {}", info.message));
        }
    }
    assert!(
        wrong.is_empty(),
        "reasons differ from reasons.txt:\n{}",
        wrong.join("\n")
    );
    // On a shared broker the group may first catch up on other tests' records: count this
    // round's.
    let own_calls = probe.calls().iter().filter(|c| c.product == key).count();
    assert_eq!(own_calls, 1, "only the good record reached the handler");
    let last = dead_letter_info(dead.last().expect("dead letters"));
    let committed = committed(kafka, "search-sync", TOPIC);
    assert_eq!(
        committed.get(&last.original_partition),
        Some(&(last.original_offset + 2)),
        "committed past the dead letters and the good record"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_corpus_on_the_embedded_broker() {
    every_poison_pill_is_dead_lettered_with_its_reason(&support::kafka(), Dedup::On).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_corpus_on_the_embedded_broker_without_dedup() {
    every_poison_pill_is_dead_lettered_with_its_reason(&support::kafka(), Dedup::Off).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_corpus_on_the_real_broker() {
    if let Some((kafka, _turn)) = external_kafka("the_corpus_on_the_real_broker").await {
        every_poison_pill_is_dead_lettered_with_its_reason(&kafka, Dedup::On).await;
    }
}
