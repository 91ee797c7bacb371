//! Failure containment: what goes wrong inside a handler stays a failed attempt of one record;
//! the partition, its worker and the records after it go on. On the embedded broker and in
//! process alike. A record no Rust client would write (a header name that is not UTF-8) is
//! handled like any other.

mod support;

use erp_demo::inventory::{InventoryMovement, MovementAction};
use erp_events::{App, Envelope, HandlerError, Kafka, ListenerReport, Running, erp_listener};
use rdkafka::Message;
use rdkafka::message::Headers;
use support::{PATIENCE, dead_letter_info, kafka, read_records};

const TOPIC: &str = "erp.inventory.movements";

/// Panics on the movement of quantity 2, handles the others.
#[erp_listener(group = "search-sync", retries = 0)]
async fn panics_on_the_second(event: Envelope<InventoryMovement>) -> Result<(), HandlerError> {
    if event.payload.quantity == 2 {
        panic!("index corrupted by {}", event.payload.product_id);
    }
    Ok(())
}

fn four_movements_of_one_product() -> Vec<InventoryMovement> {
    (1..=4)
        .map(|i| InventoryMovement::new("SKU-P", "WH-1", MovementAction::Received, i))
        .collect()
}

/// Waits until the listener handled 3 and dead-lettered 1, failing after [`PATIENCE`].
async fn three_handled_one_dead_lettered(running: &Running) -> Vec<ListenerReport> {
    let done = |reports: &[ListenerReport]| {
        let counts = &reports[0].counts;
        counts.handled == 3 && counts.dead_lettered == 1
    };
    let waited = tokio::time::timeout(PATIENCE, running.wait_until(done)).await;
    assert!(
        waited.is_ok(),
        "after a panic, the next records are handled: {:?}",
        running.reports()
    );
    running.reports()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_handler_is_a_failed_attempt_and_the_partition_goes_on() {
    let kafka = kafka();
    let running = App::new(&kafka)
        .listener(panics_on_the_second)
        .start()
        .unwrap();
    let publisher = kafka.publisher("inventory-service").unwrap();
    let deliveries = publisher
        .publish_all(&four_movements_of_one_product())
        .await
        .unwrap();
    three_handled_one_dead_lettered(&running).await;
    running.shutdown().await;
    let dead = read_records(&kafka, &kafka.dead_letter_topic(TOPIC), 1).await;
    let info = dead_letter_info(&dead[0]);
    assert_eq!(info.original_offset, deliveries[1].offset);
    assert_eq!(info.error_type, "erp_events::Panicked");
    assert_eq!(
        info.message,
        "the handler panicked: index corrupted by SKU-P"
    );
    assert_eq!(info.attempts, Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_handler_in_process_is_a_failed_attempt_too() {
    let app = App::in_process(erp_events::catalog!());
    let bus = app.in_process_bus().clone();
    let publisher = app.publisher("inventory-service").unwrap();
    let running = app.listener(panics_on_the_second).start().unwrap();
    publisher
        .publish_all(&four_movements_of_one_product())
        .await
        .unwrap();
    three_handled_one_dead_lettered(&running).await;
    running.shutdown().await;
    let dead = bus.dead_letters(TOPIC);
    let info = erp_events::dlt::decode_dead_letter_headers(dead[0].headers()).unwrap();
    assert_eq!(info.error_type, "erp_events::Panicked");
    assert!(info.message.contains("index corrupted by SKU-P"));
}

/// Fails permanently on quantity 2 (so that its record is copied to the dead-letter topic).
#[erp_listener(group = "search-sync", retries = 0)]
async fn refuses_the_second(event: Envelope<InventoryMovement>) -> Result<(), HandlerError> {
    if event.payload.quantity == 2 {
        return Err(HandlerError::permanent("refused"));
    }
    Ok(())
}

/// Writes one record whose header name is not UTF-8 (`0xFF 'x'`), as a C client can; no Rust
/// client can (rdkafka takes `&str` names), hence librdkafka's C API.
fn produce_with_a_binary_header_name(kafka: &Kafka, key: &[u8], value: &[u8]) {
    use rdkafka::producer::{BaseProducer, Producer};
    use rdkafka_sys::rd_kafka_vtype_t::*;
    use std::ffi::{CString, c_int};
    let producer: BaseProducer = kafka.client_config().create().unwrap();
    let topic = CString::new(TOPIC).unwrap();
    let (name, header_value) = ([0xFF_u8, b'x'], *b"v");
    // SAFETY: every pointer is valid for the call (librdkafka copies the key, the value
    // (`RD_KAFKA_MSG_F_COPY`) and the header, and owns `headers` once the call succeeds); the
    // variadic list is librdkafka's (type, value...) pairs, ended by `RD_KAFKA_VTYPE_END`.
    let error = unsafe {
        let headers = rdkafka_sys::rd_kafka_headers_new(1);
        rdkafka_sys::rd_kafka_header_add(
            headers,
            name.as_ptr().cast(),
            name.len() as isize,
            header_value.as_ptr().cast(),
            header_value.len() as isize,
        );
        rdkafka_sys::rd_kafka_producev(
            producer.client().native_ptr(),
            RD_KAFKA_VTYPE_TOPIC as c_int,
            topic.as_ptr(),
            RD_KAFKA_VTYPE_MSGFLAGS as c_int,
            rdkafka_sys::RD_KAFKA_MSG_F_COPY as c_int,
            RD_KAFKA_VTYPE_KEY as c_int,
            key.as_ptr(),
            key.len(),
            RD_KAFKA_VTYPE_VALUE as c_int,
            value.as_ptr(),
            value.len(),
            RD_KAFKA_VTYPE_HEADERS as c_int,
            headers,
            RD_KAFKA_VTYPE_END as c_int,
        )
    };
    assert_eq!(
        error,
        rdkafka_sys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR
    );
    producer.flush(std::time::Duration::from_secs(10)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_name_that_is_not_utf8_is_read_and_kept_not_a_panic() {
    // No `traceId` in the envelope: the listener reads the `traceparent` header, and so every
    // header name, as it polls the record.
    dead_letter_keeps_a_binary_header_name(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_carries_the_headers_the_listener_left_unread() {
    // A `traceId` in the envelope: the listener leaves the headers at the broker as it polls,
    // and reads them back to dead-letter the record.
    dead_letter_keeps_a_binary_header_name(Some("4bf92f3577b34da6a3ce929d0e0e4736")).await;
}

/// Dead-letters a record with a header name that is not UTF-8, whose envelope names
/// `trace_id`, between two that are handled; its dead letter keeps the header.
async fn dead_letter_keeps_a_binary_header_name(trace_id: Option<&str>) {
    let kafka = kafka();
    let running = App::new(&kafka)
        .listener(refuses_the_second)
        .start()
        .unwrap();
    let publisher = kafka.publisher("inventory-service").unwrap();
    let [first, second, third]: [InventoryMovement; 3] = (1..=3)
        .map(|i| InventoryMovement::new("SKU-H", "WH-1", MovementAction::Received, i))
        .collect::<Vec<_>>()
        .try_into()
        .unwrap();
    publisher.publish(&first).await.unwrap();
    let mut envelope = Envelope::new("legacy-c-client", second);
    envelope.trace_id = trace_id.map(str::to_owned);
    produce_with_a_binary_header_name(&kafka, b"SKU-H", &envelope.to_json().unwrap());
    publisher.publish(&third).await.unwrap();
    let done = |reports: &[ListenerReport]| {
        let counts = &reports[0].counts;
        counts.handled == 2 && counts.dead_lettered == 1
    };
    let waited = tokio::time::timeout(PATIENCE, running.wait_until(done)).await;
    assert!(waited.is_ok(), "{:?}", running.reports());
    running.shutdown().await;
    let dead = read_records(&kafka, &kafka.dead_letter_topic(TOPIC), 1).await;
    let headers: Vec<(String, Option<Vec<u8>>)> = dead[0]
        .headers()
        .unwrap()
        .iter()
        .map(|h| (h.key.to_owned(), h.value.map(<[u8]>::to_vec)))
        .collect();
    assert_eq!(
        headers[0],
        ("\u{FFFD}x".to_owned(), Some(b"v".to_vec())),
        "the header kept, its name decoded as Java's client decodes it"
    );
    assert_eq!(dead_letter_info(&dead[0]).message, "refused");
}

/// Handles everything, counting per product.
#[erp_listener(group = "search-sync", retries = 0)]
async fn handles(event: Envelope<InventoryMovement>) -> Result<(), HandlerError> {
    let _ = event;
    Ok(())
}

/// Four movements of one product whose first read kills its worker (a test-util fault, once
/// per `test`: as a bug outside a handler would).
fn killer_and_others(test: &str) -> Vec<InventoryMovement> {
    let product = format!("{}:{test}", erp_events::test_util::KILL_WORKER_MARKER);
    (1..=4)
        .map(|i| InventoryMovement::new(&product, "WH-1", MovementAction::Received, i))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_kafka_worker_stops_its_group_and_another_member_takes_the_partition() {
    let kafka = kafka();
    let first = App::new(&kafka).listener(handles).start().unwrap();
    let second = App::new(&kafka).listener(handles).start().unwrap();
    // One product, one partition: the first worker to read it dies; its group stops and
    // leaves, and the partition's records are handled by the member that is left.
    kafka
        .publisher("inventory-service")
        .unwrap()
        .publish_all(&killer_and_others("kafka"))
        .await
        .unwrap();
    let all_handled = async {
        loop {
            let handled: u64 = [&first, &second]
                .iter()
                .map(|running| running.reports()[0].counts.handled)
                .sum();
            if handled >= 4 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(PATIENCE, all_handled)
        .await
        .expect("the partition of the dead worker is handled by the other member");
    first.shutdown().await;
    second.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishing_to_a_dead_in_process_worker_is_an_error_not_a_loss() {
    let app = App::in_process(erp_events::catalog!());
    let publisher = app.publisher("inventory-service").unwrap();
    let running = app.listener(handles).start().unwrap();
    let events = killer_and_others("in-process");
    publisher.publish(&events[0]).await.unwrap();
    let refused = async {
        loop {
            match publisher.publish(&events[1]).await {
                Ok(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
                Err(error) => return error,
            }
        }
    };
    let error = tokio::time::timeout(PATIENCE, refused)
        .await
        .expect("publishing fails once the worker is dead");
    assert!(
        matches!(
            error,
            erp_events::PublishError::InProcess {
                source: erp_events::InProcessError::ListenerGone {
                    group: "search-sync"
                },
                ..
            }
        ),
        "{error:?}"
    );
    running.shutdown().await;
}
