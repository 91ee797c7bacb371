//! A rolling upgrade in either order, under each compatibility mode: a producer on version 2
//! beside consumers on version 1, and the reverse. What each consumer handles and what it
//! dead-letters is what the topic's mode promises (on Apache Kafka when `KAFKA_BROKERS` is set),
//! with our producers and consumers, and with the Kotlin service's (`ERP_SPRING_PEER`).

mod support;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use erp_events::{App, Envelope, HandlerError, Kafka, ListenerExt, Publisher, State, erp_listener};
use rdkafka::Message;
use support::peer::SpringPeer;
use support::services::{external_brokers, external_or_embedded_kafka};
use support::{PATIENCE, dead_letter_info, read_records_where, within};

/// Declares versions 1 and 2 of STOCK_COUNTED on `$topic`, version 2 adding `$added`.
macro_rules! stock_counted {
    ($module:ident, $topic:tt, $added:ident: $($added_type:tt)+) => {
        mod $module {
            pub mod v1 {
                /// A stock count, as version 1 of the schema has it.
                #[erp_events::erp_event(topic = $topic, key = sku, event_type = "STOCK_COUNTED")]
                pub struct StockCounted {
                    pub sku: String,
                    pub counted: i64,
                }
            }
            pub mod v2 {
                /// A stock count, as version 2 of the schema has it.
                #[erp_events::erp_event(
                            topic = $topic,
                            key = sku,
                            event_type = "STOCK_COUNTED",
                            version = 2
                        )]
                pub struct StockCounted {
                    pub sku: String,
                    pub counted: i64,
                    pub $added: $($added_type)+,
                }
            }
        }
    };
}

// Version 2 adds an optional property on the backward and full topics, a required one on the
// forward topic.
stock_counted!(backward, "erp.evolution.backward", counter: Option<String>);
stock_counted!(forward, "erp.evolution.forward", site: String);
stock_counted!(full, "erp.evolution.full", counter: Option<String>);

/// A record handled: the topic's mode, the reader's version, the sku, the record's version.
type Read = (&'static str, u32, String, u32);

/// What the listeners handled.
#[derive(Clone, Default)]
struct Seen {
    handled: Arc<Mutex<BTreeSet<Read>>>,
    changed: Arc<tokio::sync::Notify>,
}

impl Seen {
    fn saw(&self, mode: &'static str, reader: u32, sku: &str, version: u32) {
        let entry = (mode, reader, sku.to_owned(), version);
        self.handled.lock().unwrap().insert(entry);
        self.changed.notify_waiters();
    }

    /// This run's entries.
    fn of(&self, run: &str) -> BTreeSet<Read> {
        let handled = self.handled.lock().unwrap();
        let ours = handled.iter().filter(|(_, _, sku, _)| sku.starts_with(run));
        ours.cloned().collect()
    }
}

/// A listener in `$group` for `$event`, recording what it handled.
macro_rules! reader {
    ($name:ident, $group:tt, $event:ty, $mode:literal, $version:literal) => {
        #[erp_listener(group = $group, retries = 0)]
        async fn $name(
            event: Envelope<$event>,
            State(seen): State<Seen>,
        ) -> Result<(), HandlerError> {
            seen.saw($mode, $version, &event.payload.sku, event.version);
            Ok(())
        }
    };
}

reader!(
    backward_v1,
    "v1-readers",
    backward::v1::StockCounted,
    "backward",
    1
);
reader!(
    backward_v2,
    "v2-readers",
    backward::v2::StockCounted,
    "backward",
    2
);
reader!(
    forward_v1,
    "v1-readers",
    forward::v1::StockCounted,
    "forward",
    1
);
reader!(
    forward_v2,
    "v2-readers",
    forward::v2::StockCounted,
    "forward",
    2
);
reader!(full_v1, "v1-readers", full::v1::StockCounted, "full", 1);
reader!(full_v2, "v2-readers", full::v2::StockCounted, "full", 2);

/// The readers of both versions on the three topics, recording into `seen`.
fn with_readers(app: App, seen: &Seen) -> App {
    app.listener(backward_v1.with_state(seen.clone()))
        .listener(backward_v2.with_state(seen.clone()))
        .listener(forward_v1.with_state(seen.clone()))
        .listener(forward_v2.with_state(seen.clone()))
        .listener(full_v1.with_state(seen.clone()))
        .listener(full_v2.with_state(seen.clone()))
}

/// Publishes version 1 and version 2 of a count on each topic, with `sku(mode, version)`: our
/// producers on both versions at once, as in the middle of a rolling upgrade.
async fn publish_both_versions(publisher: &Publisher, sku: impl Fn(&str, u32) -> String) {
    let counted = 7;
    let counter = Some("clerk-1".to_owned());
    let (sku1, sku2) = (sku("backward", 1), sku("backward", 2));
    let v1 = backward::v1::StockCounted { sku: sku1, counted };
    let v2 = backward::v2::StockCounted {
        sku: sku2,
        counted,
        counter,
    };
    publisher.publish(&v1).await.unwrap();
    publisher.publish(&v2).await.unwrap();
    let (sku1, sku2, site) = (sku("forward", 1), sku("forward", 2), "WH-1".to_owned());
    let v1 = forward::v1::StockCounted { sku: sku1, counted };
    let v2 = forward::v2::StockCounted {
        sku: sku2,
        counted,
        site,
    };
    publisher.publish(&v1).await.unwrap();
    publisher.publish(&v2).await.unwrap();
    let (sku1, sku2) = (sku("full", 1), sku("full", 2));
    let v1 = full::v1::StockCounted { sku: sku1, counted };
    let v2 = full::v2::StockCounted {
        sku: sku2,
        counted,
        counter: None,
    };
    publisher.publish(&v1).await.unwrap();
    publisher.publish(&v2).await.unwrap();
}

/// What our readers handle of the records `sku` names, by the modes' promises. backward: new
/// readers read old data, old readers refuse new data (consumers upgrade first); forward: the
/// other way round (producers first); full: both.
fn promised(sku: impl Fn(&str, u32) -> String) -> BTreeSet<Read> {
    [
        ("backward", 1, 1),
        ("backward", 2, 1),
        ("backward", 2, 2),
        ("forward", 1, 1),
        ("forward", 1, 2),
        ("forward", 2, 2),
        ("full", 1, 1),
        ("full", 1, 2),
        ("full", 2, 1),
        ("full", 2, 2),
    ]
    .into_iter()
    .map(|(mode, reader, version)| (mode, reader, sku(mode, version), version))
    .collect()
}

/// Waits until `seen` holds exactly `expected` of `run`'s records.
async fn wait_for_reads(seen: &Seen, run: &str, expected: &BTreeSet<Read>) {
    within(PATIENCE, "every promised read", async {
        loop {
            let changed = seen.changed.notified();
            if seen.of(run) == *expected {
                break;
            }
            changed.await;
        }
    })
    .await;
}

/// `run`'s dead letters on `topic`'s DLT, `count` of them: (group, key, reason), sorted.
async fn dead_letters(
    kafka: &Kafka,
    topic: &str,
    run: &str,
    count: usize,
) -> Vec<(String, String, String)> {
    let prefix = run.as_bytes().to_vec();
    let ours = move |record: &rdkafka::message::OwnedMessage| {
        record.key().is_some_and(|key| key.starts_with(&prefix))
    };
    let records = read_records_where(kafka, &format!("{topic}.DLT"), count, ours).await;
    let mut found: Vec<(String, String, String)> = records
        .iter()
        .map(|record| {
            let info = dead_letter_info(record);
            let key = String::from_utf8_lossy(record.key().unwrap_or_default()).into_owned();
            (info.consumer_group, key, info.message)
        })
        .collect();
    found.sort();
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_upgrade_in_either_order_keeps_what_each_mode_promises() {
    let (kafka, _turn) = external_or_embedded_kafka().await;
    let run = uuid::Uuid::now_v7().simple().to_string();
    let sku = |mode: &str, version: u32| format!("{run}-{mode}-v{version}");
    let seen = Seen::default();
    let app = App::new(&kafka);
    let publisher = app.publisher("stock-counter").unwrap();
    let running = with_readers(app, &seen).start().unwrap();
    publish_both_versions(&publisher, sku).await;
    let expected = promised(sku);
    wait_for_reads(&seen, &run, &expected).await;
    let backward = dead_letters(&kafka, "erp.evolution.backward", &run, 1).await;
    let (group, key, reason) = &backward[0];
    assert_eq!((group.as_str(), key), ("v1-readers", &sku("backward", 2)));
    assert!(reason.contains("`backward` compatibility"), "{reason}");
    assert!(
        reason.contains("upgrade consumers before producers"),
        "{reason}"
    );
    let forward = dead_letters(&kafka, "erp.evolution.forward", &run, 1).await;
    let (group, key, reason) = &forward[0];
    assert_eq!((group.as_str(), key), ("v2-readers", &sku("forward", 1)));
    assert!(reason.contains("missing field `site`"), "{reason}");
    running.shutdown().await;
    assert_eq!(seen.of(&run), expected, "nothing else was handled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kotlin_services_on_either_side_of_a_rolling_upgrade() {
    let test = "kotlin_services_on_either_side_of_a_rolling_upgrade";
    let Some(brokers) = external_brokers(test) else {
        return;
    };
    let Some(peer) = SpringPeer::find(test, &brokers) else {
        return;
    };
    let (kafka, _turn) = external_or_embedded_kafka().await;
    let run = uuid::Uuid::now_v7().simple().to_string();
    let kotlin_consumer = async |version: &str, group: &str| {
        let properties = [
            ("peer.consume-stock", "true"),
            ("peer.stock-version", version),
            ("peer.group", group),
            ("peer.products", run.as_str()),
            ("peer.start-at-end", "true"),
            ("peer.backoff-ms", "10"),
        ];
        peer.start(&properties).await
    };
    // Groups of this run's own: a killed peer of an earlier run stays a member of its group
    // until its session times out, delaying the next join.
    let spring_v2_readers = format!("spring-v2-readers-{run}");
    let mut kotlin_v1 = kotlin_consumer("1", &format!("spring-v1-readers-{run}")).await;
    let mut kotlin_v2 = kotlin_consumer("2", &spring_v2_readers).await;
    let seen = Seen::default();
    let app = App::new(&kafka);
    let publisher = app.publisher("stock-counter").unwrap();
    let running = with_readers(app, &seen).start().unwrap();

    // Our producer and the Kotlin one, each on both versions.
    let ours = |mode: &str, version: u32| format!("{run}-rust-{mode}-v{version}");
    let theirs = |mode: &str, version: u32| format!("{run}-kotlin-{mode}-v{version}");
    publish_both_versions(&publisher, ours).await;
    let requests: Vec<serde_json::Value> = ["backward", "forward", "full"]
        .into_iter()
        .flat_map(|mode| [(mode, 1), (mode, 2)])
        .map(|(mode, version)| {
            let mut payload = serde_json::json!({"sku": theirs(mode, version), "counted": 7});
            match (mode, version) {
                ("forward", 2) => payload["site"] = "WH-1".into(),
                (_, 2) => payload["counter"] = "clerk-1".into(),
                _ => {}
            }
            let topic = format!("erp.evolution.{mode}");
            serde_json::json!({"topic": topic, "version": version, "payload": payload})
        })
        .collect();
    peer.produce_as("peer.produce-stock", &requests).await;

    // Our readers: what the modes promise, of both producers' records.
    let mut expected = promised(ours);
    expected.extend(promised(theirs));
    wait_for_reads(&seen, &run, &expected).await;
    // Kotlin readers ignore `version` and unknown properties (Jackson in Spring Boot): built for
    // version 1 they read everything; built for version 2 of the forward topic they need `site`.
    let counted = |reports: Vec<serde_json::Value>| -> BTreeSet<String> {
        let keys = reports
            .iter()
            .map(|report| report["key"].as_str().unwrap().to_owned());
        keys.collect()
    };
    let everything: BTreeSet<String> = ["backward", "forward", "full"]
        .into_iter()
        .flat_map(|mode| {
            [
                ours(mode, 1),
                ours(mode, 2),
                theirs(mode, 1),
                theirs(mode, 2),
            ]
        })
        .collect();
    assert_eq!(counted(kotlin_v1.wait_for("counted", 12).await), everything);
    let without_site: BTreeSet<String> = [ours("forward", 1), theirs("forward", 1)].into();
    let readable = everything.difference(&without_site).cloned().collect();
    assert_eq!(counted(kotlin_v2.wait_for("counted", 10).await), readable);

    // Dead letters: ours as in the test above, for both producers; Spring's for `site`.
    let backward = dead_letters(&kafka, "erp.evolution.backward", &run, 2).await;
    let refused: Vec<(&str, &str)> = backward
        .iter()
        .map(|(group, key, _)| (group.as_str(), key.as_str()))
        .collect();
    let (ours_v2, theirs_v2) = (ours("backward", 2), theirs("backward", 2));
    assert_eq!(
        refused,
        [
            ("v1-readers", theirs_v2.as_str()),
            ("v1-readers", ours_v2.as_str())
        ]
    );
    let forward = dead_letters(&kafka, "erp.evolution.forward", &run, 4).await;
    let refused: Vec<(&str, &str)> = forward
        .iter()
        .map(|(group, key, _)| (group.as_str(), key.as_str()))
        .collect();
    let (ours_v1, theirs_v1) = (ours("forward", 1), theirs("forward", 1));
    assert_eq!(
        refused,
        [
            (spring_v2_readers.as_str(), theirs_v1.as_str()),
            (spring_v2_readers.as_str(), ours_v1.as_str()),
            ("v2-readers", theirs_v1.as_str()),
            ("v2-readers", ours_v1.as_str()),
        ]
    );
    running.shutdown().await;
    assert_eq!(seen.of(&run), expected, "nothing else was handled");
}
