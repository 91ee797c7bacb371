//! The `otlp` feature as a collector receives it: after a publish and its handling, the spans
//! arrive as one OTLP/HTTP protobuf export, decoded here with OpenTelemetry's own message types,
//! with the service's name on the resource.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;

use erp_demo::inventory::{InventoryMovement, MovementAction};
use erp_events::otlp::OtlpTraces;
use erp_events::{App, Envelope, HandlerError, erp_listener};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use prost::Message as _;
use support::{PATIENCE, kafka};
use tracing_subscriber::layer::SubscriberExt;

#[erp_listener(group = "search-sync")]
async fn indexes(_event: Envelope<InventoryMovement>) -> Result<(), HandlerError> {
    Ok(())
}

/// One HTTP request as the collector's endpoint receives it: path, content type and body.
struct Received {
    path: String,
    content_type: String,
    body: Vec<u8>,
}

/// Accepts connections on `listener`, passing every request on and answering it 200.
fn collect(listener: TcpListener, requests: mpsc::Sender<Received>) {
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { return };
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        loop {
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
                break;
            }
            let path = request_line
                .split(' ')
                .nth(1)
                .unwrap_or_default()
                .to_owned();
            let (mut length, mut content_type) = (0, String::new());
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                let line = line.trim_end();
                if line.is_empty() {
                    break;
                }
                let (name, value) = line.split_once(':').unwrap();
                match name.to_ascii_lowercase().as_str() {
                    "content-length" => length = value.trim().parse().unwrap(),
                    "content-type" => content_type = value.trim().to_owned(),
                    _ => {}
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            // Passed on before the answer: once the exporter has its answer, the test has it.
            let _ = requests.send(Received {
                path,
                content_type,
                body,
            });
            stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                .unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spans_reach_the_collector_over_otlp_http() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}/v1/traces", listener.local_addr().unwrap());
    let (requests, received) = mpsc::channel();
    std::thread::spawn(move || collect(listener, requests));
    let traces = OtlpTraces::to_endpoint("inventory-service", &endpoint).unwrap();
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(traces.layer()))
        .unwrap();

    let kafka = kafka();
    let app = App::new(&kafka);
    let publisher = app.publisher("inventory-service").unwrap();
    let running = app.listener(indexes).start().unwrap();
    let movement = InventoryMovement::new("SKU-X", "WH-1", MovementAction::Received, 1);
    publisher.publish(&movement).await.unwrap();
    let handled = running.wait_until(|reports| reports[0].counts.handled == 1);
    tokio::time::timeout(PATIENCE, handled).await.unwrap();
    running.shutdown().await;
    tokio::task::spawn_blocking(move || traces.shutdown())
        .await
        .unwrap();

    let mut names = Vec::new();
    let mut services = Vec::new();
    while let Ok(request) = received.try_recv() {
        assert_eq!(request.path, "/v1/traces");
        assert_eq!(request.content_type, "application/x-protobuf");
        let export = ExportTraceServiceRequest::decode(request.body.as_slice()).unwrap();
        for resource_spans in export.resource_spans {
            let resource = resource_spans.resource.unwrap_or_default();
            services.extend(
                resource
                    .attributes
                    .into_iter()
                    .filter(|attribute| attribute.key == "service.name")
                    .filter_map(|attribute| match attribute.value?.value? {
                        Value::StringValue(name) => Some(name),
                        _ => None,
                    }),
            );
            for scope in resource_spans.scope_spans {
                names.extend(scope.spans.into_iter().map(|span| span.name));
            }
        }
    }
    assert!(
        names.contains(&"send erp.inventory.movements".to_owned())
            && names.contains(&"process erp.inventory.movements".to_owned()),
        "{names:?}"
    );
    assert!(
        services
            .iter()
            .all(|service| service == "inventory-service")
            && !services.is_empty()
    );
}
