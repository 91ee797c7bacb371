//! Idempotent dispatch, one behavioural suite run against both stores: the in-memory store and a
//! real Redis, one server (`REDIS_URL`) and a Redis Cluster (`ERP_REDIS_CLUSTER_NODES`). Each scenario goes through Kafka (the embedded broker).

mod support;

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};

use erp_demo::inventory::{InventoryMovement, MovementAction};
use erp_events::idempotency::{
    Claim, Confirmation, IdempotencyStore, StoreFuture, idempotency_key,
};
use erp_events::{
    App, ConfirmMode, Envelope, HandlerError, IdempotencySettings, ListenerExt, State, erp_listener,
};
use rdkafka::Message;
use support::services::{redis_cluster_nodes, redis_url};
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

/// Publishes a movement of `product` with a new eventId, and returns that id.
async fn produce_new(kafka: &erp_events::Kafka, product: &str) -> String {
    let id = new_id();
    let value = envelope_json(&id, &movement(product, 1));
    produce_raw(kafka, TOPIC, product, &[value]).await;
    id
}

/// Publishes one event (quantity 1) of `product` to partitions 0 and 1, then a sentinel to
/// each, and waits until `probe` saw both sentinels (so each copy was handled or skipped);
/// returns the event's id.
async fn one_event_on_two_partitions(
    kafka: &erp_events::Kafka,
    probe: &Probe,
    product: &str,
) -> String {
    let id = new_id();
    let value = envelope_json(&id, &movement(product, 1));
    produce_to(kafka, TOPIC, 0, "copy-a", &value).await;
    produce_to(kafka, TOPIC, 1, "copy-b", &value).await;
    let sentinels = [new_id(), new_id()];
    for (partition, sentinel) in (0..).zip(&sentinels) {
        let value = envelope_json(sentinel, &movement(product, 2));
        produce_to(kafka, TOPIC, partition, "sentinel", &value).await;
    }
    probe
        .wait_until("both sentinels", |calls| {
            sentinels
                .iter()
                .all(|s| calls.iter().any(|c| c.event_id.to_string() == *s))
        })
        .await;
    id
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
        mod redis_cluster {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    if let Some(nodes) = super::redis_cluster_nodes(stringify!($scenario)) {
                        let nodes: Vec<&str> = nodes.iter().map(String::as_str).collect();
                        let store = erp_events::RedisStore::cluster(&nodes).unwrap();
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
    an_expired_holder_cannot_delete_another_claim_or_its_done,
    a_claim_retried_by_its_owner_is_its_own,
    a_handler_running_past_its_lease_is_not_run_twice,
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
        store
            .claim(&[key], "a test", Duration::from_secs(1))
            .await
            .unwrap(),
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
            .claim(std::slice::from_ref(&key), "a consumer that died", lease)
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
    for racer in 0..16 {
        let (store, keys) = (store.clone(), vec![key.clone()]);
        racers.spawn(async move {
            let owner = format!("racer {racer}");
            store
                .claim(&keys, &owner, Duration::from_secs(5))
                .await
                .unwrap()[0]
        });
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
    let id = one_event_on_two_partitions(&kafka, &probe, "SKU-4").await;
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

async fn a_handler_running_past_its_lease_is_not_run_twice(store: Store) {
    // The same event on two partitions: the worker that claims it first holds it for four
    // leases; its lease is renewed while the handler runs, so the other never takes it over.
    #[erp_listener(group = "search-sync", retries = 0, concurrency = 4)]
    async fn outlasting(
        event: Envelope<InventoryMovement>,
        State(probe): State<Probe>,
    ) -> Result<(), HandlerError> {
        if event.payload.quantity == 1 {
            tokio::time::sleep(Duration::from_millis(1200)).await;
        }
        probe.call(&event)
    }
    let kafka = kafka();
    let probe = Probe::succeeding();
    let lease = Duration::from_millis(300);
    let running = App::new(&kafka)
        .idempotency_store(store)
        .idempotency_settings(IdempotencySettings {
            lease,
            ..IdempotencySettings::default()
        })
        .listener(outlasting.with_state(probe.clone()))
        .start()
        .unwrap();
    let id = one_event_on_two_partitions(&kafka, &probe, "SKU-L").await;
    let report = &running.shutdown().await[0];
    let runs = probe
        .calls()
        .iter()
        .filter(|c| c.event_id.to_string() == id)
        .count();
    assert_eq!((runs, report.counts.duplicates), (1, 1), "{report:?}");
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
    let id = produce_new(&kafka, "SKU-5").await;
    probe.wait_for_calls(1).await;
    running.shutdown().await;
    let confirmed_by = Instant::now();
    let key = idempotency_key("search-sync", &id.parse().unwrap());
    let keys = std::slice::from_ref(&key);
    assert_eq!(
        store
            .claim(keys, "a test", Duration::from_millis(1))
            .await
            .unwrap(),
        [Claim::Done]
    );
    tokio::time::sleep_until((confirmed_by + ttl + Duration::from_millis(100)).into()).await;
    assert_eq!(
        store
            .claim(keys, "a test", Duration::from_millis(1))
            .await
            .unwrap(),
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
    fn claim<'a>(
        &'a self,
        keys: &'a [String],
        owner: &'a str,
        lease: Duration,
    ) -> StoreFuture<'a, Vec<Claim>> {
        self.keys.lock().unwrap().extend_from_slice(keys);
        self.inner.claim(keys, owner, lease)
    }
    fn confirm<'a>(
        &'a self,
        keys: &'a [String],
        owner: &'a str,
        ttl: Duration,
    ) -> StoreFuture<'a, Vec<Confirmation>> {
        self.keys.lock().unwrap().extend_from_slice(keys);
        self.inner.confirm(keys, owner, ttl)
    }
    fn release<'a>(&'a self, keys: &'a [String], owner: &'a str) -> StoreFuture<'a, ()> {
        self.keys.lock().unwrap().extend_from_slice(keys);
        self.inner.release(keys, owner)
    }
    fn renew<'a>(
        &'a self,
        keys: &'a [String],
        owner: &'a str,
        lease: Duration,
    ) -> StoreFuture<'a, ()> {
        self.keys.lock().unwrap().extend_from_slice(keys);
        self.inner.renew(keys, owner, lease)
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

async fn an_expired_holder_cannot_delete_another_claim_or_its_done(store: Store) {
    let key = idempotency_key("analytics", &uuid::Uuid::now_v7());
    let keys = std::slice::from_ref(&key);
    let lease = Duration::from_millis(300);
    let claim = |owner: &'static str| store.claim(keys, owner, lease);
    assert_eq!(claim("slow").await.unwrap(), [Claim::Acquired]);
    tokio::time::sleep(lease + Duration::from_millis(100)).await;
    // The slow holder's lease ran out: another takes the event over.
    assert_eq!(claim("next").await.unwrap(), [Claim::Acquired]);
    store.release(keys, "slow").await.unwrap();
    // Nor can its renewals cut the new claim's lease short.
    store
        .renew(keys, "slow", Duration::from_millis(1))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(
        claim("third").await.unwrap(),
        [Claim::InProgress],
        "the late holder's release and renewal left the new claim alone"
    );
    assert_eq!(
        store
            .confirm(keys, "slow", Duration::from_secs(60))
            .await
            .unwrap(),
        [Confirmation::Lost],
        "the late holder's confirm says it lost the claim, and writes nothing"
    );
    assert_eq!(claim("third").await.unwrap(), [Claim::InProgress]);
    assert_eq!(
        store
            .confirm(keys, "next", Duration::from_secs(60))
            .await
            .unwrap(),
        [Confirmation::Confirmed]
    );
    store.release(keys, "slow").await.unwrap();
    assert_eq!(
        claim("third").await.unwrap(),
        [Claim::Done],
        "nor can it delete the new holder's done"
    );
    assert_eq!(
        store
            .confirm(keys, "slow", Duration::from_secs(60))
            .await
            .unwrap(),
        [Confirmation::AlreadyDone]
    );
}

async fn a_claim_retried_by_its_owner_is_its_own(store: Store) {
    // A claim whose answer was lost (a timeout after Redis applied it) is asked again by its
    // owner: it is the owner's at once, not another's to wait for until the lease ends.
    let key = idempotency_key("analytics", &uuid::Uuid::now_v7());
    let keys = std::slice::from_ref(&key);
    let lease = Duration::from_secs(30);
    assert_eq!(
        store.claim(keys, "me", lease).await.unwrap(),
        [Claim::Acquired]
    );
    assert_eq!(
        store.claim(keys, "me", lease).await.unwrap(),
        [Claim::Acquired]
    );
    assert_eq!(
        store.claim(keys, "you", lease).await.unwrap(),
        [Claim::InProgress]
    );
    // So is a confirm retried after its answer was lost.
    let ttl = Duration::from_secs(60);
    assert_eq!(
        store.confirm(keys, "me", ttl).await.unwrap(),
        [Confirmation::Confirmed]
    );
    assert_eq!(
        store.confirm(keys, "me", ttl).await.unwrap(),
        [Confirmation::AlreadyDone]
    );
    assert_eq!(
        store.claim(keys, "you", lease).await.unwrap(),
        [Claim::Done]
    );
}

/// A handler that holds its event until the test lets it go, then applies its effect with
/// `RedisStore::apply_and_confirm`.
#[derive(Clone)]
struct HeldEffect {
    store: erp_events::RedisStore,
    gate: Gate,
    outcome: Arc<Mutex<Option<Result<(), String>>>>,
}

#[erp_listener(group = "analytics", retries = 0)]
async fn held_effect(
    event: Envelope<InventoryMovement>,
    State(held): State<HeldEffect>,
) -> Result<(), HandlerError> {
    held.gate.pass().await;
    let mut effect = ::redis::pipe();
    effect
        .cmd("HINCRBY")
        .arg(HELD_EFFECTS)
        .arg(event.event_id.to_string())
        .arg(1)
        .ignore();
    let applied = held.store.apply_and_confirm(effect).await;
    *held.outcome.lock().unwrap() = Some(applied.as_ref().map(drop).map_err(|e| e.to_string()));
    applied.map_err(HandlerError::permanent)
}

/// Where `held_effect` counts its effects: in the `analytics` group's hash slot, which a script
/// on a Redis Cluster may reach beside the group's claims.
const HELD_EFFECTS: &str = "erp:test:{analytics}:held-effects";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_effect_after_the_claim_was_taken_over_is_not_applied() {
    let test = "an_effect_after_the_claim_was_taken_over_is_not_applied";
    if let Some(url) = redis_url(test) {
        effect_after_takeover(erp_events::RedisStore::new(&url).unwrap()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_cluster_an_effect_after_the_claim_was_taken_over_is_not_applied() {
    let test = "on_a_cluster_an_effect_after_the_claim_was_taken_over_is_not_applied";
    if let Some(nodes) = redis_cluster_nodes(test) {
        let nodes: Vec<&str> = nodes.iter().map(String::as_str).collect();
        effect_after_takeover(erp_events::RedisStore::cluster(&nodes).unwrap()).await;
    }
}

async fn effect_after_takeover(store: erp_events::RedisStore) {
    let kafka = kafka();
    let held = HeldEffect {
        store: store.clone(),
        gate: Gate::default(),
        outcome: Arc::default(),
    };
    let lease = Duration::from_millis(300);
    let running = App::new(&kafka)
        .idempotency_store(store.clone())
        .idempotency_settings(IdempotencySettings {
            lease,
            ..IdempotencySettings::default()
        })
        .listener(held_effect.with_state(held.clone()))
        .start()
        .unwrap();
    let id = produce_new(&kafka, "SKU-H").await;
    held.gate.started.notified().await;
    // The claim runs out while the handler is held (as it does when the holder's renewals
    // cannot reach Redis for a lease), and another consumer takes the event over.
    let key = idempotency_key("analytics", &id.parse().unwrap());
    let keys = std::slice::from_ref(&key);
    let mut connection = store.connection();
    let expired: i64 = ::redis::cmd("DEL")
        .arg(&key)
        .query_async(&mut connection)
        .await
        .unwrap();
    assert_eq!(expired, 1, "the handler held its claim");
    assert_eq!(
        store
            .claim(keys, "the next consumer", Duration::from_secs(30))
            .await
            .unwrap(),
        [Claim::Acquired]
    );
    held.gate.go.notify_one();
    let outcome = support::within(support::PATIENCE, "the held handler ends", async {
        loop {
            if let Some(outcome) = held.outcome.lock().unwrap().clone() {
                return outcome;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    running.shutdown().await;
    let error = outcome.expect_err("the late effect is refused");
    assert!(error.contains("another consumer holds it"), "{error}");
    let mut connection = store.connection();
    let count: Option<i64> = ::redis::cmd("HGET")
        .arg(HELD_EFFECTS)
        .arg(&id)
        .query_async(&mut connection)
        .await
        .unwrap();
    assert_eq!(count, None, "nothing applied");
    // The old holder renewed its claims while its handler was held; had that touched the new
    // claim, its 30 s lease would now be the old one's 300 ms, run out by now.
    tokio::time::sleep(lease * 2).await;
    assert_eq!(
        store
            .claim(keys, "a third", Duration::from_secs(1))
            .await
            .unwrap(),
        [Claim::InProgress],
        "the next consumer's claim stands"
    );
}

/// Where a handler signals that it started, then waits to be let go.
#[derive(Clone, Default)]
struct Gate {
    started: Arc<tokio::sync::Notify>,
    go: Arc<tokio::sync::Notify>,
}

impl Gate {
    async fn pass(&self) {
        self.started.notify_one();
        self.go.notified().await;
    }
}

#[erp_listener(group = "analytics", retries = 0)]
async fn gated(
    _event: Envelope<InventoryMovement>,
    State(gate): State<Gate>,
) -> Result<(), HandlerError> {
    gate.pass().await;
    Ok(())
}

/// Polls `check` until it holds (a committed offset and the store's error count change on the
/// consumer's and the worker's clocks, not on an event the test can await).
async fn until(what: &str, check: impl Fn() -> bool) {
    support::within(support::PATIENCE, what, async {
        while !check() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handled_event_is_committed_only_once_its_done_marker_is_written() {
    let test = "a_handled_event_is_committed_only_once_its_done_marker_is_written";
    let Some(mut redis) = support::services::RedisServer::start(test) else {
        return;
    };
    let kafka = kafka();
    let gate = Gate::default();
    let running = App::new(&kafka)
        .idempotency_store(erp_events::RedisStore::new(&redis.url()).unwrap())
        .consumer_config("auto.commit.interval.ms", "50")
        .health_endpoint("127.0.0.1:0")
        .listener(gated.with_state(gate.clone()))
        .start()
        .unwrap();
    let address = running.health_address().unwrap();
    let id = produce_new(&kafka, "SKU-C").await;
    gate.started.notified().await;
    // Redis goes away between the handler's success and its confirmation.
    redis.stop();
    gate.go.notify_one();
    let store_errors = || {
        let (_, metrics) = erp_demo::erp::http_get(address, "/metrics").unwrap();
        metrics
            .lines()
            .filter(|line| line.starts_with("erp_events_store_errors_total{"))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
            .sum::<u64>()
    };
    // Five failed confirmations: about 0.75 s, fifteen commit intervals.
    until("the confirmation fails five times", || store_errors() >= 5).await;
    let record = read_records(&kafka, TOPIC, 1).await;
    let (partition, offset) = (record[0].partition(), record[0].offset());
    let committed_past = || {
        committed(&kafka, "analytics", TOPIC)
            .get(&partition)
            .is_some_and(|next| *next > offset)
    };
    assert!(
        !committed_past(),
        "committed before its done marker was written"
    );
    redis.restart();
    until("the offset is committed once Redis is back", committed_past).await;
    running.shutdown().await;
    let store = erp_events::RedisStore::new(&redis.url()).unwrap();
    let key = idempotency_key("analytics", &id.parse().unwrap());
    assert_eq!(
        store
            .claim(
                std::slice::from_ref(&key),
                "a redelivery",
                Duration::from_secs(1)
            )
            .await
            .unwrap(),
        [Claim::Done],
        "confirmed after Redis came back"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirming_each_record_a_record_handled_as_the_app_stops_is_committed() {
    let kafka = kafka();
    let gate = Gate::default();
    let running = App::new(&kafka)
        .idempotency_settings(IdempotencySettings {
            confirm: ConfirmMode::EachRecord,
            ..IdempotencySettings::default()
        })
        .listener(gated.with_state(gate.clone()))
        .start()
        .unwrap();
    produce_new(&kafka, "SKU-S").await;
    gate.started.notified().await;
    let mut shutdown = std::pin::pin!(running.shutdown());
    // Its first step tells the partitions to stop, while the handler is held.
    let first = std::future::poll_fn(|cx| Poll::Ready(shutdown.as_mut().poll(cx))).await;
    assert!(first.is_pending(), "the held handler holds the shutdown");
    gate.go.notify_one();
    let reports = shutdown.await;
    assert_eq!(reports[0].counts.handled, 1, "finished, so counted");
    let record = read_records(&kafka, TOPIC, 1).await;
    let (partition, offset) = (record[0].partition(), record[0].offset());
    let committed = committed(&kafka, "analytics", TOPIC);
    assert_eq!(
        committed.get(&partition),
        Some(&(offset + 1)),
        "its marker written as it stopped, so its offset committed"
    );
}
