//! A rolling upgrade in either order, under each compatibility mode: a producer on version 2
//! beside consumers on version 1, and the reverse. What each consumer handles and what it
//! dead-letters is what the topic's mode promises (on Apache Kafka when `KAFKA_BROKERS` is set).

mod support;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use erp_events::{App, Envelope, HandlerError, ListenerExt, State, erp_listener};
use rdkafka::Message;
use support::services::external_or_embedded_kafka;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_upgrade_in_either_order_keeps_what_each_mode_promises() {
    let (kafka, _turn) = external_or_embedded_kafka().await;
    let run = uuid::Uuid::now_v7().simple().to_string();
    let sku = |mode: &str, version: u32| format!("{run}-{mode}-v{version}");
    let seen = Seen::default();
    let app = App::new(&kafka);
    let publisher = app.publisher("stock-counter").unwrap();
    let running = app
        .listener(backward_v1.with_state(seen.clone()))
        .listener(backward_v2.with_state(seen.clone()))
        .listener(forward_v1.with_state(seen.clone()))
        .listener(forward_v2.with_state(seen.clone()))
        .listener(full_v1.with_state(seen.clone()))
        .listener(full_v2.with_state(seen.clone()))
        .start()
        .unwrap();
    // Producers on both versions at once, as in the middle of a rolling upgrade.
    let counted = 7;
    publisher
        .publish(&backward::v1::StockCounted {
            sku: sku("backward", 1),
            counted,
        })
        .await
        .unwrap();
    let counter = Some("clerk-1".to_owned());
    let v2 = backward::v2::StockCounted {
        sku: sku("backward", 2),
        counted,
        counter,
    };
    publisher.publish(&v2).await.unwrap();
    let v1 = forward::v1::StockCounted {
        sku: sku("forward", 1),
        counted,
    };
    publisher.publish(&v1).await.unwrap();
    let site = "WH-1".to_owned();
    let v2 = forward::v2::StockCounted {
        sku: sku("forward", 2),
        counted,
        site,
    };
    publisher.publish(&v2).await.unwrap();
    let v1 = full::v1::StockCounted {
        sku: sku("full", 1),
        counted,
    };
    publisher.publish(&v1).await.unwrap();
    let v2 = full::v2::StockCounted {
        sku: sku("full", 2),
        counted,
        counter: None,
    };
    publisher.publish(&v2).await.unwrap();

    // backward: new readers read old data, old readers refuse new data (consumers first);
    // forward: the other way round (producers first); full: both.
    let expected: BTreeSet<Read> = [
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
    .collect();
    within(PATIENCE, "every promised read", async {
        loop {
            let changed = seen.changed.notified();
            if seen.of(&run) == expected {
                break;
            }
            changed.await;
        }
    })
    .await;
    let refused = |topic: &'static str| {
        let run = run.clone();
        let dead_letters = format!("{topic}.DLT");
        let kafka = kafka.clone();
        async move {
            let ours = move |record: &rdkafka::message::OwnedMessage| {
                record
                    .key()
                    .is_some_and(|key| key.starts_with(run.as_bytes()))
            };
            let records = read_records_where(&kafka, &dead_letters, 1, ours).await;
            let info = dead_letter_info(&records[0]);
            let key = String::from_utf8(records[0].key().unwrap().to_vec()).unwrap();
            (info.consumer_group, key, info.message)
        }
    };
    let (group, key, reason) = refused("erp.evolution.backward").await;
    assert_eq!((group.as_str(), key), ("v1-readers", sku("backward", 2)));
    assert!(reason.contains("`backward` compatibility"), "{reason}");
    assert!(
        reason.contains("upgrade consumers before producers"),
        "{reason}"
    );
    let (group, key, reason) = refused("erp.evolution.forward").await;
    assert_eq!((group.as_str(), key), ("v2-readers", sku("forward", 1)));
    assert!(reason.contains("missing field `site`"), "{reason}");
    running.shutdown().await;
    assert_eq!(seen.of(&run), expected, "nothing else was handled");
}
