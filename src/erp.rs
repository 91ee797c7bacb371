//! The whole demo ERP in one application: the five modules of the seed's topic table, with a
//! handler that is retried, a poison pill that goes to the dead-letter topic, and a duplicate
//! that idempotency skips.

use std::fmt;
use std::time::Duration;

use erp_events::dlt::decode_dead_letter_headers;
use erp_events::{App, Envelope, InProcessBus, Kafka};
use rdkafka::Message;
use rdkafka::message::Headers;
use rdkafka::producer::{FutureProducer, FutureRecord};

use crate::audit::{Audit, AuditSummary};
use crate::clinical::{Clinical, ClinicalSummary};
use crate::demo::{DemoError, Module, read_from_start, until_finished};
use crate::inventory::{Inventory, InventorySummary};
use crate::purchase::{Purchasing, PurchasingSummary};
use crate::sales::{SaleCompleted, Sales, SalesSummary};

/// What a legacy exporter writes to the sales topic: CSV, not an envelope.
pub const POISON_PILL: &[u8] = b"S-5006;SKU-100;3;19.99";

/// How long reading the dead-letter topics may take.
const DEAD_LETTER_PATIENCE: Duration = Duration::from_secs(30);

/// What every module's listeners did, and what the dead-letter topics hold.
#[derive(Debug, Clone, PartialEq)]
pub struct ErpSummary {
    /// erp.inventory.movements.
    pub inventory: InventorySummary,
    /// erp.purchase.lifecycle.
    pub purchasing: PurchasingSummary,
    /// erp.sales.transactions.
    pub sales: SalesSummary,
    /// erp.vma.clinical.
    pub clinical: ClinicalSummary,
    /// erp.audit.events.
    pub audit: AuditSummary,
    /// Every dead letter: (topic, consumer group, reason).
    pub dead_letters: Vec<(String, String, String)>,
    /// What the health endpoint showed before the shutdown, when the app serves one.
    pub health: Option<HealthSeen>,
}

/// What a probe and a scrape of the health endpoint saw.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthSeen {
    /// Where it listens.
    pub address: std::net::SocketAddr,
    /// `/health/ready`'s status and body.
    pub ready: (u16, String),
    /// `/metrics`' `erp_events_records_handled_total` lines.
    pub handled: Vec<String>,
}

/// Runs the five modules together on `app`, then the three mishaps, and reports.
pub async fn run(app: App) -> Result<ErpSummary, DemoError> {
    let (inventory, purchasing, sales, clinical, audit) =
        <(Inventory, Purchasing, Sales, Clinical, Audit)>::default();
    // The search cluster times out once: search-sync retries after 1 s and succeeds.
    inventory.index.time_out_next(1);
    let app = audit.listen(clinical.listen(sales.listen(purchasing.listen(inventory.listen(app)))));
    let publishers = (
        app.publisher(Inventory::PRODUCER)?,
        app.publisher(Purchasing::PRODUCER)?,
        app.publisher(Sales::PRODUCER)?,
        app.publisher(Clinical::PRODUCER)?,
        app.publisher(Audit::PRODUCER)?,
    );
    let (kafka, bus) = (app.kafka().cloned(), app.in_process_bus().clone());
    let running = app.start()?;
    let mut published = vec![
        (Inventory::TOPIC, inventory.publish(&publishers.0).await?),
        (Purchasing::TOPIC, purchasing.publish(&publishers.1).await?),
        (Sales::TOPIC, sales.publish(&publishers.2).await?),
        (Clinical::TOPIC, clinical.publish(&publishers.3).await?),
        (Audit::TOPIC, audit.publish(&publishers.4).await?),
    ];
    // The ETL service re-sends a sale after a restart: same envelope, same eventId.
    let resent = Envelope::new(
        Sales::PRODUCER,
        SaleCompleted::new("S-5005", "SKU-200", 1, 6_500),
    );
    publishers.2.publish_envelope(&resent).await?;
    publishers.2.publish_envelope(&resent).await?;
    published.push((Sales::TOPIC, 2));
    // A legacy exporter writes CSV to the sales topic (only Kafka can carry such bytes).
    if let Some(kafka) = &kafka {
        produce_raw(kafka, Sales::TOPIC, "SKU-100", POISON_PILL).await?;
        published.push((Sales::TOPIC, 1));
    }
    until_finished(&running, &published).await;
    let health = match running.health_address() {
        Some(address) => Some(look_at_health(address).await?),
        None => None,
    };
    let reports = running.shutdown().await;
    let mut dead_letters = Vec::new();
    for topic in [
        Inventory::TOPIC,
        Purchasing::TOPIC,
        Sales::TOPIC,
        Clinical::TOPIC,
        Audit::TOPIC,
    ] {
        let count: u64 = reports
            .iter()
            .filter(|report| report.topic == topic)
            .map(|report| report.counts.dead_lettered)
            .sum();
        dead_letters.extend(read_dead_letters(kafka.as_ref(), &bus, topic, count as usize).await?);
    }
    dead_letters.sort();
    Ok(ErpSummary {
        inventory: inventory.summary(&reports),
        purchasing: purchasing.summary(&reports),
        sales: sales.summary(&reports),
        clinical: clinical.summary(&reports),
        audit: audit.summary(&reports),
        dead_letters,
        health,
    })
}

/// Probes readiness and scrapes the metrics, as Kubernetes and Prometheus would.
async fn look_at_health(address: std::net::SocketAddr) -> Result<HealthSeen, DemoError> {
    let (ready, metrics) = tokio::task::spawn_blocking(move || {
        let ready = http_get(address, "/health/ready")?;
        Ok::<_, std::io::Error>((ready, http_get(address, "/metrics")?.1))
    })
    .await??;
    let handled = metrics
        .lines()
        .filter(|line| line.starts_with("erp_events_records_handled_total{"))
        .map(str::to_owned)
        .collect();
    Ok(HealthSeen {
        address,
        ready,
        handled,
    })
}

/// `GET path` on an HTTP/1 server at `address` (blocking): the status code and the body.
pub fn http_get(address: std::net::SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address)?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: erp\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map(|(_, body)| body);
    Ok((status, body.unwrap_or_default().to_owned()))
}

/// Produces `value` as it is, bypassing the envelope: what a misbehaving producer does.
async fn produce_raw(kafka: &Kafka, topic: &str, key: &str, value: &[u8]) -> Result<(), DemoError> {
    let producer: FutureProducer = kafka.client_config().create()?;
    let record = FutureRecord::to(topic).key(key).payload(value);
    producer
        .send(record, DEAD_LETTER_PATIENCE)
        .await
        .map_err(|(error, _)| error)?;
    Ok(())
}

/// The `count` dead letters of `topic` as (topic, group, reason): from the in-process bus when
/// the topic travels there, else from `<topic>.DLT` on Kafka.
async fn read_dead_letters(
    kafka: Option<&Kafka>,
    bus: &InProcessBus,
    topic: &str,
    count: usize,
) -> Result<Vec<(String, String, String)>, DemoError> {
    let in_process = bus.dead_letters(topic);
    let describe = |headers: Vec<(&str, Option<&[u8]>)>| -> Result<_, DemoError> {
        let info = decode_dead_letter_headers(headers)?;
        Ok((info.original_topic, info.consumer_group, info.message))
    };
    match kafka {
        Some(kafka) if in_process.is_empty() && count > 0 => {
            let (kafka, dlt) = (kafka.clone(), kafka.dead_letter_topic(topic));
            let messages = tokio::task::spawn_blocking(move || {
                read_from_start(&kafka, &dlt, count, DEAD_LETTER_PATIENCE, |_| true)
            })
            .await??;
            messages
                .iter()
                .map(|message| {
                    let headers = message
                        .headers()
                        .map(|h| h.iter().map(|h| (h.key, h.value)).collect());
                    describe(headers.unwrap_or_default())
                })
                .collect()
        }
        _ => in_process
            .iter()
            .map(|record| describe(record.headers().collect()))
            .collect(),
    }
}

impl fmt::Display for ErpSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let modules: [&dyn fmt::Display; 5] = [
            &self.inventory,
            &self.purchasing,
            &self.sales,
            &self.clinical,
            &self.audit,
        ];
        for module in modules {
            writeln!(f, "{module}")?;
        }
        writeln!(f, "dead letters (topic, group, reason):")?;
        for (topic, group, reason) in &self.dead_letters {
            writeln!(f, "  {topic} [{group}]: {reason}")?;
        }
        if let Some(health) = &self.health {
            let address = health.address;
            writeln!(f, "health endpoint (before the shutdown):")?;
            writeln!(f, "  scrape http://{address}/metrics, e.g.:")?;
            for line in &health.handled {
                writeln!(f, "    {line}")?;
            }
            let (status, body) = &health.ready;
            let body = body.trim_end();
            writeln!(
                f,
                "  http://{address}/health/ready answered {status}: {body}"
            )?;
        }
        Ok(())
    }
}
