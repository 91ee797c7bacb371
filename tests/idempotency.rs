//! Idempotent dispatch, one behavioural suite run against both stores: the in-memory store and a
//! real Redis (`REDIS_URL`). Each scenario goes through Kafka (the embedded broker).

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use erp_demo::inventory::{InventoryMovement, MovementAction};
use erp_events::idempotency::{Claim, IdempotencyStore, StoreFuture, idempotency_key};
use erp_events::{
    App, Envelope, HandlerError, IdempotencySettings, ListenerExt, State, erp_listener,
};
use rdkafka::Message;
use support::services::redis_url;
use support::{
    Probe, committed, envelope_json, kafka, probed_once, produce_raw, produce_to, read_records,
};

const TOPIC: &str = "erp.inventory.movements";

#[erp_listener(group = "analytics", retries = 0)]
async fn analytics(
    event: Envelope<InventoryMovement>,
    State(probe): State<Probe>,
) -> Result<(), HandlerError> {
    probe.call(&event)
}

fn movement(product: &str, quantity: i64) -> InventoryMovement {
    InventoryMovement::new(product, "WH-1", MovementAction::Received, quantity)
}

fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Runs a scenario once with each store.
macro_rules! with_each_store {
    ($($scenario:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario(std::sync::Arc::new(erp_events::MemoryStore::new())).await;
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    if let Some(url) = super::redis_url(stringify!($scenario)) {
                        let store = erp_events::RedisStore::new(&url).unwrap();
                        super::$scenario(std::sync::Arc::new(store)).await;
                    }
                }
            )*
        }
    };
}

with_each_store!(
    the_same_event_runs_once_per_group,
    a_failed_handler_leaves_the_event_to_its_redelivery,
    an_abandoned_claim_is_taken_over_after_its_lease,
    consumers_racing_for_one_event_run_one_handler,
    the_done_marker_expires_after_its_ttl,
    event_ids_that_are_not_uuids_never_reach_the_store,
);

type Store = Arc<dyn IdempotencyStore>;

async fn the_same_event_runs_once_per_group(store: Store) {
    let kafka = kafka();
    let (search_probe, analytics_probe) = (Probe::succeeding(), Probe::succeeding());
    let running = App::new(&kafka)
        .idempotency_store(store)
        .listener(probed_once.with_state(search_probe.clone()))
        .listener(analytics.with_state(analytics_probe.clone()))
        .start()
        .unwrap();
    let (duplicated, sentinel) = (new_id(), new_id());
    let values = [
        envelope_json(&duplicated, &movement("SKU-1", 1)),
        envelope_json(&duplicated, &movement("SKU-1", 1)),
        envelope_json(&sentinel, &movement("SKU-1", 2)),
    ];
    produce_raw(&kafka, TOPIC, "SKU-1", &values).await;
    // Same key, same partition: once the sentinel is handled, so are the two copies before it.
    for probe in [&search_probe, &analytics_probe] {
        probe
            .wait_until("the sentinel", |calls| {
                calls.iter().any(|c| c.event_id.to_string() == sentinel)
            })
            .await;
        let runs = probe
            .calls()
            .iter()
            .filter(|c| c.event_id.to_string() == duplicated)
            .count();
        assert_eq!(runs, 1, "one run per group");
    }
    for report in running.shutdown().await {
        assert_eq!(
            (report.counts.handled, report.counts.duplicates),
            (2, 1),
            "{report:?}"
        );
    }
    for group in ["search-sync", "analytics"] {
        let total: i64 = committed(&kafka, group, TOPIC).values().sum();
        assert_eq!(total, 3, "the skipped duplicate is committed too ({group})");
    }
}

async fn a_failed_handler_leaves_the_event_to_its_redelivery(store: Store) {
    let kafka = kafka();
    // Fails the first time it sees an event, succeeds after.
    let probe = Probe::failing(1);
    let running = App::new(&kafka)
        .idempotency_store(store.clone())
        .listener(probed_once.with_state(probe.clone()))
        .start()
        .unwrap();
    let id = new_id();
    let value = envelope_json(&id, &movement("SKU-2", 1));
    produce_raw(&kafka, TOPIC, "SKU-2", std::slice::from_ref(&value)).await;
    read_records(&kafka, "erp.inventory.movements.DLT", 1).await;
    // The same event again, as a redelivery or a replay from the DLT would bring it.
    produce_raw(&kafka, TOPIC, "SKU-2", &[value.clone(), value]).await;
    probe.wait_for_calls(2).await;
    let sentinel = new_id();
    produce_raw(
        &kafka,
        TOPIC,
        "SKU-2",
        &[envelope_json(&sentinel, &movement("SKU-2", 9))],
    )
    .await;
    // The sentinel fails its first (only) run too: once it is in the DLT, all before it is done.
    let dead = read_records(&kafka, "erp.inventory.movements.DLT", 2).await;
    let report = &running.shutdown().await[0];
    let dead_ids: Vec<String> = dead
        .iter()
        .map(|record| {
            let value: serde_json::Value =
                serde_json::from_slice(record.payload().expect("a value")).expect("JSON");
            value["eventId"].as_str().expect("an eventId").to_owned()
        })
        .collect();
    assert_eq!(dead_ids, [id.clone(), sentinel], "only the two failed runs");
    let runs = probe
        .calls()
        .iter()
        .filter(|c| c.event_id.to_string() == id)
        .count();
    assert_eq!(
        runs, 2,
        "the failed run did not mark the event handled; the second succeeded"
    );
    assert_eq!(report.counts.duplicates, 1, "the third copy was skipped");
    let key = idempotency_key("search-sync", &id.parse().unwrap());
    assert_eq!(
        store.claim(&[key], Duration::from_secs(1)).await.unwrap(),
        [Claim::Done]
    );
}

async fn an_abandoned_claim_is_taken_over_after_its_lease(store: Store) {
    let kafka = kafka();
    let id = new_id();
    let key = idempotency_key("search-sync", &id.parse().unwrap());
    // A consumer claimed the event and died: its claim stays until the lease runs out.
    let lease = Duration::from_millis(800);
    assert_eq!(
        store
            .claim(std::slice::from_ref(&key), lease)
            .await
            .unwrap(),
        [Claim::Acquired]
    );
    let claimed_at = Instant::now();
    let probe = Probe::succeeding();
    let running = App::new(&kafka)
        .idempotency_store(store)
        .listener(probed_once.with_state(probe.clone()))
        .start()
        .unwrap();
    produce_raw(
        &kafka,
        TOPIC,
        "SKU-3",
        &[envelope_json(&id, &movement("SKU-3", 1))],
    )
    .await;
    probe.wait_for_calls(1).await;
    let waited = claimed_at.elapsed();
    let sentinel = new_id();
    produce_raw(
        &kafka,
        TOPIC,
        "SKU-3",
        &[envelope_json(&sentinel, &movement("SKU-3", 2))],
    )
    .await;
    let calls = probe.wait_for_calls(2).await;
    running.shutdown().await;
    assert!(
        waited >= lease,
        "the handler ran after {waited:?}, before the lease of {lease:?} ran out"
    );
    assert_eq!(
        calls
            .iter()
            .filter(|c| c.event_id.to_string() == id)
            .count(),
        1
    );
}

async fn consumers_racing_for_one_event_run_one_handler(store: Store) {
    // Many claims at once: exactly one wins.
    let key = idempotency_key("analytics", &uuid::Uuid::now_v7());
    let mut racers = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let (store, keys) = (store.clone(), vec![key.clone()]);
        racers.spawn(async move { store.claim(&keys, Duration::from_secs(5)).await.unwrap()[0] });
    }
    let claims = racers.join_all().await;
    assert_eq!(
        claims.iter().filter(|c| **c == Claim::Acquired).count(),
        1,
        "{claims:?}"
    );

    // The same event on two partitions, handled by two workers at once: one handler runs.
    #[erp_listener(group = "search-sync", retries = 0, concurrency = 4)]
    async fn slow(
        event: Envelope<InventoryMovement>,
        State(probe): State<Probe>,
    ) -> Result<(), HandlerError> {
        tokio::time::sleep(Duration::from_millis(300)).await;
        probe.call(&event)
    }
    let kafka = kafka();
    let probe = Probe::succeeding();
    let running = App::new(&kafka)
        .idempotency_store(store)
        .listener(slow.with_state(probe.clone()))
        .start()
        .unwrap();
    let id = new_id();
    let value = envelope_json(&id, &movement("SKU-4", 1));
    produce_to(&kafka, TOPIC, 0, "copy-a", &value).await;
    produce_to(&kafka, TOPIC, 1, "copy-b", &value).await;
    let sentinels = [new_id(), new_id()];
    produce_to(
        &kafka,
        TOPIC,
        0,
        "copy-a",
        &envelope_json(&sentinels[0], &movement("A", 2)),
    )
    .await;
    produce_to(
        &kafka,
        TOPIC,
        1,
        "copy-b",
        &envelope_json(&sentinels[1], &movement("B", 2)),
    )
    .await;
    probe
        .wait_until("both sentinels", |calls| {
            sentinels
                .iter()
                .all(|s| calls.iter().any(|c| c.event_id.to_string() == *s))
        })
        .await;
    let report = &running.shutdown().await[0];
    assert_eq!(
        probe
            .calls()
            .iter()
            .filter(|c| c.event_id.to_string() == id)
            .count(),
        1
    );
    assert_eq!(report.counts.duplicates, 1);
}

async fn the_done_marker_expires_after_its_ttl(store: Store) {
    let kafka = kafka();
    let ttl = Duration::from_millis(700);
    let probe = Probe::succeeding();
    let running = App::new(&kafka)
        .idempotency_store(store.clone())
        .idempotency_settings(IdempotencySettings {
            done_ttl: ttl,
            ..IdempotencySettings::default()
        })
        .listener(probed_once.with_state(probe.clone()))
        .start()
        .unwrap();
    let id = new_id();
    produce_raw(
        &kafka,
        TOPIC,
        "SKU-5",
        &[envelope_json(&id, &movement("SKU-5", 1))],
    )
    .await;
    probe.wait_for_calls(1).await;
    running.shutdown().await;
    let confirmed_by = Instant::now();
    let key = idempotency_key("search-sync", &id.parse().unwrap());
    let keys = std::slice::from_ref(&key);
    assert_eq!(
        store.claim(keys, Duration::from_millis(1)).await.unwrap(),
        [Claim::Done]
    );
    tokio::time::sleep_until((confirmed_by + ttl + Duration::from_millis(100)).into()).await;
    assert_eq!(
        store.claim(keys, Duration::from_millis(1)).await.unwrap(),
        [Claim::Acquired],
        "expired after the TTL"
    );
}

/// Records every key a store is asked about.
struct RecordingStore {
    inner: Store,
    keys: Mutex<Vec<String>>,
}

impl IdempotencyStore for RecordingStore {
    fn claim<'a>(&'a self, keys: &'a [String], lease: Duration) -> StoreFuture<'a, Vec<Claim>> {
        self.keys.lock().unwrap().extend_from_slice(keys);
        self.inner.claim(keys, lease)
    }
    fn confirm<'a>(&'a self, keys: &'a [String], ttl: Duration) -> StoreFuture<'a, ()> {
        self.keys.lock().unwrap().extend_from_slice(keys);
        self.inner.confirm(keys, ttl)
    }
    fn release<'a>(&'a self, keys: &'a [String]) -> StoreFuture<'a, ()> {
        self.keys.lock().unwrap().extend_from_slice(keys);
        self.inner.release(keys)
    }
}

async fn event_ids_that_are_not_uuids_never_reach_the_store(store: Store) {
    let kafka = kafka();
    let recording = Arc::new(RecordingStore {
        inner: store,
        keys: Mutex::new(Vec::new()),
    });
    let probe = Probe::succeeding();
    let running = App::new(&kafka)
        .idempotency_store(recording.clone())
        .listener(probed_once.with_state(probe.clone()))
        .start()
        .unwrap();
    let hostile = ["x\r\nFLUSHALL\r\n", "a b", "*", "erp:idem:*", ""];
    let mut values: Vec<Vec<u8>> = hostile
        .iter()
        .map(|id| envelope_json(id, &movement("SKU-6", 1)))
        .collect();
    let good = new_id();
    values.push(envelope_json(&good, &movement("SKU-6", 2)));
    produce_raw(&kafka, TOPIC, "SKU-6", &values).await;
    let dead = read_records(&kafka, "erp.inventory.movements.DLT", hostile.len()).await;
    probe.wait_for_calls(1).await;
    running.shutdown().await;
    for record in &dead {
        let info = support::dead_letter_info(record);
        assert!(info.message.contains("eventId"), "{}", info.message);
    }
    let expected = idempotency_key("search-sync", &good.parse().unwrap());
    let keys = recording.keys.lock().unwrap().clone();
    assert!(
        !keys.is_empty() && keys.iter().all(|k| *k == expected),
        "{keys:?}"
    );
}
