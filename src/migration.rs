//! The seed's V2/V3 coexistence: modules move from in-process events to Kafka one at a time, by
//! configuration, and a module that publishes nothing yet lives beside those that do.
//!
//! Purchasing publishes (a V3 module); sales still calls its use cases directly and publishes
//! nothing (a V2 module), while its future consumers (analytics, fifo) already listen. The same
//! code runs each phase; only `ERP_IN_PROCESS_TOPICS` changes.

use std::fmt;

use erp_events::{App, Config, InProcessTopics, ListenerReport};

use crate::demo::{DemoError, Module, ReportTable, until_finished};
use crate::purchase::{Purchasing, PurchasingSummary};
use crate::sales::Sales;

/// One phase: the value of `ERP_IN_PROCESS_TOPICS` it runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Before Kafka: every topic in process (Spring's `ApplicationEvent`).
    BeforeKafka,
    /// Purchasing moved to Kafka; the other topics still in process.
    PurchasingOnKafka,
}

impl Phase {
    /// The `ERP_IN_PROCESS_TOPICS` of this phase.
    pub fn in_process_topics(self) -> &'static str {
        match self {
            Phase::BeforeKafka => "*",
            Phase::PurchasingOnKafka => {
                "erp.inventory.movements,erp.sales.transactions,erp.vma.clinical,erp.audit.events"
            }
        }
    }

    /// The configuration of this phase: the embedded broker, the in-memory store, and
    /// [`Phase::in_process_topics`].
    pub fn config(self) -> Config {
        Config {
            in_process: InProcessTopics::parse(self.in_process_topics()),
            ..Config::embedded()
        }
    }
}

/// What one phase did.
#[derive(Debug, Clone, PartialEq)]
pub struct PhaseSummary {
    /// The phase.
    pub phase: Phase,
    /// Whether the application had Kafka at all.
    pub kafka: bool,
    /// Purchase events that went through the in-process bus (per consumer group's progress).
    pub purchase_events_in_process: i64,
    /// What the purchasing consumers did: the same in every phase.
    pub purchasing: PurchasingSummary,
    /// The sales consumers' reports: nothing to do while sales publishes nothing.
    pub sales_reports: Vec<ListenerReport>,
}

/// Runs one phase: purchasing publishes its orders; sales' consumers listen to a topic nobody
/// writes yet.
pub async fn run(phase: Phase) -> Result<PhaseSummary, DemoError> {
    let app = App::from_config(&phase.config(), erp_events::catalog!())?;
    let (purchasing, sales) = (Purchasing::default(), Sales::default());
    let app = sales.listen(purchasing.listen(app));
    let publisher = app.publisher(Purchasing::PRODUCER)?;
    let kafka = app.kafka().is_some();
    let bus = app.in_process_bus().clone();
    let running = app.start()?;
    let published = purchasing.publish(&publisher).await?;
    until_finished(&running, &[(Purchasing::TOPIC, published)]).await;
    let reports = running.shutdown().await;
    Ok(PhaseSummary {
        phase,
        kafka,
        purchase_events_in_process: bus.committed("finance", Purchasing::TOPIC).values().sum(),
        purchasing: purchasing.summary(&reports),
        sales_reports: crate::demo::reports_of(Sales::TOPIC, &reports),
    })
}

impl fmt::Display for PhaseSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:?}: ERP_IN_PROCESS_TOPICS={} (Kafka {}; purchase events through the in-process bus: {})",
            self.phase,
            self.phase.in_process_topics(),
            if self.kafka { "started" } else { "not used" },
            self.purchase_events_in_process
        )?;
        writeln!(f, "{}", self.purchasing)?;
        writeln!(f, "erp.sales.transactions (sales publishes nothing yet)")?;
        write!(f, "{}", ReportTable(&self.sales_reports))
    }
}
