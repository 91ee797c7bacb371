//! The listener runtime through the embedded broker: retries, dead letters (poison pills are in
//! `poison.rs`), commits, restarts, groups, shutdown and ordering, asserted on what Kafka holds
//! afterwards.

mod support;

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use erp_demo::inventory::{InventoryMovement, MovementAction};
use erp_events::{App, Envelope, HandlerError, ListenerExt, State, erp_listener};
use rdkafka::Message;
use support::{Probe, committed, dead_letter_info, header, kafka, read_records};

const TOPIC: &str = "erp.inventory.movements";
const DLT: &str = "erp.inventory.movements.DLT";

fn movement(product: &str, quantity: i64) -> InventoryMovement {
    InventoryMovement::new(product, "WH-1", MovementAction::Received, quantity)
}

#[erp_listener(group = "search-sync", retries = 3)]
async fn probed(
    event: Envelope<InventoryMovement>,
    State(probe): State<Probe>,
) -> Result<(), HandlerError> {
    probe.call(&event)
}

#[erp_listener(group = "analytics", retries = 3)]
async fn probed_analytics(
    event: Envelope<InventoryMovement>,
    State(probe): State<Probe>,
) -> Result<(), HandlerError> {
    probe.call(&event)
}

#[tokio::test(start_paused = true)]
async fn a_handler_failing_twice_runs_three_times_with_backoff_and_commits() {
    let kafka = kafka();
    let probe = Probe::failing(2);
    let running = App::new(&kafka)
        .listener(probed.with_state(probe.clone()))
        .start()
        .unwrap();
    let publisher = kafka.publisher("inventory-service").unwrap();
    let delivery = publisher.publish(&movement("SKU-1", 5)).await.unwrap();

    let calls = probe.wait_for_calls(3).await;
    let reports = running.shutdown().await;
    assert_eq!(calls.len(), 3, "{calls:?}");
    let gaps: Vec<Duration> = calls.windows(2).map(|w| w[1].at - w[0].at).collect();
    assert!(
        gaps[0] >= Duration::from_secs(1) && gaps[0] < Duration::from_millis(1100),
        "{gaps:?}"
    );
    assert!(
        gaps[1] >= Duration::from_secs(2) && gaps[1] < Duration::from_millis(2100),
        "{gaps:?}"
    );
    assert_eq!(
        (reports[0].counts.handled, reports[0].counts.retries),
        (1, 2)
    );
    assert_eq!(reports[0].counts.dead_lettered, 0);
    let offsets = committed(&kafka, "search-sync", TOPIC);
    assert_eq!(
        offsets.get(&delivery.partition),
        Some(&(delivery.offset + 1))
    );
    assert_eq!(support::records_in(&kafka, DLT), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_without_traceparent_continues_its_envelopes_trace_id() {
    let kafka = kafka();
    let probe = Probe::succeeding();
    let running = App::new(&kafka)
        .listener(probed.with_state(probe.clone()))
        .start()
        .unwrap();
    // As the seed's Kotlin producer writes it: a `traceId` in the envelope, no header.
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let mut envelope = Envelope::new("inventory-service", movement("SKU-T", 1));
    envelope.trace_id = Some(trace_id.to_owned());
    support::produce_raw(&kafka, TOPIC, "SKU-T", &[envelope.to_json().unwrap()]).await;
    let calls = probe.wait_for_calls(1).await;
    running.shutdown().await;
    assert_eq!(calls[0].trace_id.as_deref(), Some(trace_id));
}

#[tokio::test(start_paused = true)]
async fn a_handler_that_always_fails_is_dead_lettered_like_spring_does() {
    let kafka = kafka();
    let probe = Probe::always_failing();
    let running = App::new(&kafka)
        .listener(probed.with_state(probe.clone()))
        .start()
        .unwrap();
    let publisher = kafka.publisher("inventory-service").unwrap();
    let delivery = publisher.publish(&movement("SKU-7", 3)).await.unwrap();

    // The clock only skips the backoff while nothing blocks, so await the attempts first.
    probe.wait_for_calls(4).await;
    let dead = read_records(&kafka, DLT, 1).await;
    let reports = running.shutdown().await;
    let calls = probe.calls();
    assert_eq!(calls.len(), 4, "retries = 3 means four attempts");
    assert_eq!(reports[0].counts.dead_lettered, 1);

    let original = &read_records(&kafka, TOPIC, 1).await[0];
    let dead = &dead[0];
    assert_eq!(dead.partition(), delivery.partition);
    assert_eq!(dead.key(), original.key());
    assert_eq!(dead.payload(), original.payload());
    let traceparent = header(original, "traceparent").unwrap();
    assert_eq!(header(dead, "traceparent"), Some(traceparent.clone()));
    let trace_id = erp_events::TraceContext::parse(&traceparent)
        .unwrap()
        .trace_id_hex();
    assert!(
        calls
            .iter()
            .all(|c| c.trace_id.as_deref() == Some(trace_id.as_str())),
        "every attempt continues the record's trace"
    );

    let info = dead_letter_info(dead);
    assert_eq!(info.original_topic, TOPIC);
    assert_eq!(
        (info.original_partition, info.original_offset),
        (delivery.partition, delivery.offset)
    );
    assert_eq!(info.original_timestamp, original.timestamp().to_millis());
    assert_eq!(info.original_timestamp_type.as_deref(), Some("CreateTime"));
    assert_eq!(info.consumer_group, "search-sync");
    assert_eq!(info.error_type, "std::io::error::Error");
    assert_eq!(info.message, "simulated failure 4");
    assert_eq!(info.attempts, Some(4));
    let offsets = committed(&kafka, "search-sync", TOPIC);
    assert_eq!(
        offsets.get(&delivery.partition),
        Some(&(delivery.offset + 1))
    );
}

#[tokio::test(start_paused = true)]
async fn a_permanent_failure_is_not_retried() {
    let kafka = kafka();
    let probe = Probe::permanently_failing();
    let running = App::new(&kafka)
        .listener(probed.with_state(probe.clone()))
        .start()
        .unwrap();
    kafka
        .publisher("inventory-service")
        .unwrap()
        .publish(&movement("SKU-3", 1))
        .await
        .unwrap();
    let dead = read_records(&kafka, DLT, 1).await;
    running.shutdown().await;
    assert_eq!(probe.calls().len(), 1);
    assert_eq!(dead_letter_info(&dead[0]).attempts, Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_listener_resumes_after_its_last_commit() {
    #[erp_listener(group = "search-sync", idempotent = false)]
    async fn counted(
        event: Envelope<InventoryMovement>,
        State(probe): State<Probe>,
    ) -> Result<(), HandlerError> {
        probe.call(&event)
    }
    let kafka = kafka();
    let publisher = kafka.publisher("inventory-service").unwrap();
    let first: Vec<_> = (0..100)
        .map(|i| movement(&format!("SKU-{}", i % 7), i))
        .collect();
    publisher.publish_all(&first).await.unwrap();
    let probe = Probe::succeeding();
    let running = App::new(&kafka)
        .listener(counted.with_state(probe.clone()))
        .start()
        .unwrap();
    probe.wait_for_calls(100).await;
    running.shutdown().await;
    let total: i64 = committed(&kafka, "search-sync", TOPIC).values().sum();
    assert_eq!(total, 100, "every handled record is committed at shutdown");

    let second: Vec<_> = (100..150)
        .map(|i| movement(&format!("SKU-{}", i % 7), i))
        .collect();
    publisher.publish_all(&second).await.unwrap();
    let restarted = Probe::succeeding();
    let running = App::new(&kafka)
        .listener(counted.with_state(restarted.clone()))
        .start()
        .unwrap();
    restarted.wait_for_calls(50).await;
    running.shutdown().await;
    let mut quantities: Vec<i64> = restarted.calls().iter().map(|c| c.quantity).collect();
    quantities.sort_unstable();
    assert_eq!(
        quantities,
        (100..150).collect::<Vec<_>>(),
        "nothing committed is handled again, nothing skipped"
    );
    assert_eq!(probe.calls().len(), 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_groups_each_receive_every_event() {
    let kafka = kafka();
    let (search, analytics) = (Probe::succeeding(), Probe::succeeding());
    let running = App::new(&kafka)
        .listener(probed.with_state(search.clone()))
        .listener(probed_analytics.with_state(analytics.clone()))
        .start()
        .unwrap();
    let events: Vec<_> = (0..40).map(|i| movement(&format!("SKU-{i}"), i)).collect();
    kafka
        .publisher("inventory-service")
        .unwrap()
        .publish_all(&events)
        .await
        .unwrap();
    for probe in [&search, &analytics] {
        let calls = probe.wait_for_calls(40).await;
        let ids: HashSet<_> = calls.iter().map(|c| c.event_id).collect();
        assert_eq!(ids.len(), 40);
    }
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_mid_stream_loses_nothing() {
    let kafka = kafka();
    let events: Vec<_> = (0..10_000)
        .map(|i| movement(&format!("SKU-{}", i % 50), i))
        .collect();
    kafka
        .publisher("inventory-service")
        .unwrap()
        .publish_all(&events)
        .await
        .unwrap();
    let probe = Probe::succeeding();
    let running = App::new(&kafka)
        .listener(probed.with_state(probe.clone()))
        .start()
        .unwrap();
    probe.wait_for_calls(3_000).await;
    let first_run = running.shutdown().await[0].counts.handled;
    assert!(first_run < 10_000, "the stream was interrupted");

    let running = App::new(&kafka)
        .listener(probed.with_state(probe.clone()))
        .start()
        .unwrap();
    let calls = probe
        .wait_until("all 10k records handled", |calls| {
            calls
                .iter()
                .map(|c| c.quantity)
                .collect::<HashSet<_>>()
                .len()
                == 10_000
        })
        .await;
    running.shutdown().await;
    let total: i64 = committed(&kafka, "search-sync", TOPIC).values().sum();
    assert_eq!(total, 10_000);
    println!(
        "first run handled {first_run}; {} calls in all for 10000 records",
        calls.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_products_events_are_handled_in_publish_order_with_concurrency() {
    #[erp_listener(group = "analytics", concurrency = 6)]
    async fn ordered(
        event: Envelope<InventoryMovement>,
        State(probe): State<Probe>,
    ) -> Result<(), HandlerError> {
        // Yield so that partitions interleave.
        tokio::task::yield_now().await;
        probe.call(&event)
    }
    let kafka = kafka();
    let probe = Probe::succeeding();
    let running = App::new(&kafka)
        .listener(ordered.with_state(probe.clone()))
        .start()
        .unwrap();
    let events: Vec<_> = (0..3_000)
        .map(|i| movement(&format!("SKU-{}", i % 30), i))
        .collect();
    kafka
        .publisher("inventory-service")
        .unwrap()
        .publish_all(&events)
        .await
        .unwrap();
    let calls = probe.wait_for_calls(3_000).await;
    running.shutdown().await;
    let mut by_product: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for call in &calls {
        by_product
            .entry(call.product.clone())
            .or_default()
            .push(call.quantity);
    }
    assert_eq!(by_product.len(), 30);
    for (product, quantities) in by_product {
        assert!(
            quantities.windows(2).all(|w| w[0] < w[1]),
            "{product}: {quantities:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_whose_dead_letter_cannot_be_written_stays_uncommitted_until_it_can() {
    let kafka = kafka();
    let broker = kafka
        .embedded()
        .expect("this test simulates a DLT outage on the embedded broker");
    broker.set_topic_available(DLT, false).unwrap();
    let probe = Probe::permanently_failing();
    let running = App::new(&kafka)
        .listener(probed.with_state(probe.clone()))
        .start()
        .unwrap();
    let delivery = kafka
        .publisher("inventory-service")
        .unwrap()
        .publish(&movement("SKU-D", 1))
        .await
        .unwrap();
    probe.wait_for_calls(1).await;
    // After about 10 s of failures the partition is reported as stalled (once), and counted.
    let stalled = running.wait_until(|reports| reports[0].counts.stalls == 1);
    tokio::time::timeout(support::PATIENCE, stalled)
        .await
        .expect("the stall is reported");
    running.shutdown().await;
    assert_eq!(
        committed(&kafka, "search-sync", TOPIC).get(&delivery.partition),
        None
    );

    broker.set_topic_available(DLT, true).unwrap();
    assert_eq!(support::records_in(&kafka, DLT), 0);
    let running = App::new(&kafka)
        .listener(probed.with_state(probe.clone()))
        .start()
        .unwrap();
    let dead = read_records(&kafka, DLT, 1).await;
    running.shutdown().await;
    assert_eq!(dead_letter_info(&dead[0]).original_offset, delivery.offset);
    assert_eq!(
        probe.calls().len(),
        2,
        "the record was tried again after the restart"
    );
    assert_eq!(
        committed(&kafka, "search-sync", TOPIC).get(&delivery.partition),
        Some(&(delivery.offset + 1))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_member_takes_over_partitions_without_losing_records() {
    let _ = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_test_writer()
        .try_init();
    let kafka = kafka();
    let publisher = kafka.publisher("inventory-service").unwrap();
    let batch = |from: i64| -> Vec<InventoryMovement> {
        (from..from + 3_000)
            .map(|i| movement(&format!("SKU-{}", i % 60), i))
            .collect()
    };
    let probe = Probe::succeeding();
    let first = App::new(&kafka)
        .listener(probed.with_state(probe.clone()))
        .start()
        .unwrap();
    publisher.publish_all(&batch(0)).await.unwrap();
    probe.wait_for_calls(500).await;
    let second = App::new(&kafka)
        .listener(probed.with_state(probe.clone()))
        .start()
        .unwrap();
    publisher.publish_all(&batch(3_000)).await.unwrap();
    let calls = probe
        .wait_until("the two members together handled all 6000", |calls| {
            calls
                .iter()
                .map(|c| c.quantity)
                .collect::<HashSet<_>>()
                .len()
                == 6_000
        })
        .await;
    let by_second = second.shutdown().await[0].counts.handled;
    let by_first = first.shutdown().await[0].counts.handled;
    assert!(by_second > 0, "the second member was given partitions");
    // A member leaving makes the other rebalance while it stops; a broker that refuses commits
    // during a join (as librdkafka's mock does) leaves some finished records uncommitted. They
    // are redelivered, never lost: a fresh member handles exactly what is not committed.
    let uncommitted = 6_000
        - committed(&kafka, "search-sync", TOPIC)
            .values()
            .sum::<i64>();
    let third = App::new(&kafka)
        .listener(probed.with_state(probe.clone()))
        .start()
        .unwrap();
    // Its own count, not the shared probe's: the first two may still have handled a few
    // records (redeliveries around the rebalance) after `calls` was taken.
    let caught_up = third.wait_until(|reports| reports[0].counts.handled >= uncommitted as u64);
    tokio::time::timeout(Duration::from_secs(60), caught_up)
        .await
        .expect("the third member handles every uncommitted record");
    let by_third = third.shutdown().await[0].counts.handled;
    assert_eq!(by_third, uncommitted as u64);
    let total: i64 = committed(&kafka, "search-sync", TOPIC).values().sum();
    assert_eq!(total, 6_000);
    println!(
        "6000 records: first member {by_first}, second {by_second}, {} redelivered around the rebalance, {uncommitted} uncommitted at the stop and handled by a third",
        calls.len() - 6_000
    );
}
