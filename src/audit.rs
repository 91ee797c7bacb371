//! Audit: the append-only trail every module writes (`erp.audit.events`).
//!
//! Listeners: **audit** appends each record to the trail, in order per entity; **compliance**
//! flags actions that need a second look (deletions, price overrides) when the actor is not an
//! approver.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use erp_events::{
    App, Envelope, Event, HandlerError, ListenerExt, ListenerReport, Publisher, State, erp_event,
    erp_listener,
};

use crate::demo::{DemoError, Module, ReportTable, Shared, reports_of};

/// Something a user did to an entity, keyed by entity so its records stay in order.
#[erp_event(topic = "erp.audit.events", key = entity_id)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// The module the action happened in, e.g. `inventory`.
    pub module: String,
    /// The entity acted on, e.g. `PO-1001`.
    pub entity_id: String,
    /// What was done, e.g. `APPROVE`, `DELETE`, `PRICE_OVERRIDE`.
    pub action: String,
    /// Who did it.
    pub actor: String,
    /// Free text, when the module has more to say.
    pub detail: Option<String>,
}

/// One line of the trail: who did what, where, published by which service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrailEntry {
    /// The service that published the record.
    pub source: String,
    /// The record.
    pub record: AuditRecord,
}

/// The append-only audit trail.
#[derive(Debug, Clone, Default)]
pub struct AuditTrail {
    entries: Shared<Vec<TrailEntry>>,
}

impl AuditTrail {
    /// Every entry, in the order appended.
    pub fn entries(&self) -> Vec<TrailEntry> {
        self.entries.get()
    }
}

/// Appends each record to the trail.
#[erp_listener(group = "audit", retries = 3)]
pub async fn append_to_trail(
    event: Envelope<AuditRecord>,
    State(trail): State<AuditTrail>,
) -> Result<(), HandlerError> {
    let entry = TrailEntry {
        source: event.source,
        record: event.payload,
    };
    trail.entries.lock().push(entry);
    Ok(())
}

/// Actions flagged for review, and the approvers whose actions are not.
#[derive(Debug, Clone)]
pub struct ComplianceDesk {
    approvers: Arc<[String]>,
    flags: Shared<Vec<String>>,
}

impl ComplianceDesk {
    /// The flags raised, as readable lines.
    pub fn flags(&self) -> Vec<String> {
        self.flags.get()
    }
}

/// Flags sensitive actions by people who are not approvers.
#[erp_listener(group = "compliance", retries = 3)]
pub async fn screen_actions(
    event: Envelope<AuditRecord>,
    State(desk): State<ComplianceDesk>,
) -> Result<(), HandlerError> {
    let record = &event.payload;
    let sensitive = matches!(record.action.as_str(), "DELETE" | "PRICE_OVERRIDE");
    if sensitive && !desk.approvers.contains(&record.actor) {
        let flag = format!(
            "{} by {} on {} ({})",
            record.action, record.actor, record.entity_id, record.module
        );
        desk.flags.lock().push(flag);
    }
    Ok(())
}

/// The audit module: the trail and the compliance desk.
#[derive(Debug, Clone)]
pub struct Audit {
    /// audit's trail.
    pub trail: AuditTrail,
    /// compliance's desk.
    pub desk: ComplianceDesk,
}

impl Default for Audit {
    /// A desk whose only approver is `controller-1`.
    fn default() -> Self {
        Audit {
            trail: AuditTrail::default(),
            desk: ComplianceDesk {
                approvers: Arc::from(["controller-1".to_owned()]),
                flags: Shared::default(),
            },
        }
    }
}

/// What the audit listeners did.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditSummary {
    /// Trail entries per publishing service.
    pub entries_per_source: BTreeMap<String, usize>,
    /// The flags compliance raised.
    pub flags: Vec<String>,
    /// The listeners' reports.
    pub reports: Vec<ListenerReport>,
}

fn record(module: &str, entity_id: &str, action: &str, actor: &str) -> AuditRecord {
    AuditRecord {
        module: module.to_owned(),
        entity_id: entity_id.to_owned(),
        action: action.to_owned(),
        actor: actor.to_owned(),
        detail: None,
    }
}

impl Module for Audit {
    const TOPIC: &'static str = AuditRecord::TOPIC;
    /// Every module writes the trail; each record's envelope names its own service.
    const PRODUCER: &'static str = "erp-modules";
    type Summary = AuditSummary;

    fn listen(&self, app: App) -> App {
        app.listener(append_to_trail.with_state(self.trail.clone()))
            .listener(screen_actions.with_state(self.desk.clone()))
    }

    async fn publish(&self, publisher: &Publisher) -> Result<u64, DemoError> {
        let records = [
            (
                "purchase-service",
                record("purchase", "PO-1001", "APPROVE", "controller-1"),
            ),
            (
                "inventory-service",
                record("inventory", "SKU-100", "ADJUST", "clerk-17"),
            ),
            (
                "sales-service",
                record("sales", "S-5002", "PRICE_OVERRIDE", "clerk-4"),
            ),
            (
                "purchase-service",
                record("purchase", "PO-1003", "DELETE", "controller-1"),
            ),
            (
                "vma-clinical-service",
                record("vma", "CASE-7", "DELETE", "nurse-2"),
            ),
        ];
        for (source, record) in records.iter().cloned() {
            // The service that did it is the envelope's source, whoever carries it.
            publisher
                .publish_envelope(&Envelope::new(source, record))
                .await?;
        }
        Ok(records.len() as u64)
    }

    fn summary(&self, reports: &[ListenerReport]) -> AuditSummary {
        let mut entries_per_source = BTreeMap::new();
        for entry in self.trail.entries() {
            *entries_per_source.entry(entry.source).or_default() += 1;
        }
        let mut flags = self.desk.flags();
        // Records of different entities are handled in parallel: their order is not defined.
        flags.sort();
        AuditSummary {
            entries_per_source,
            flags,
            reports: reports_of(Self::TOPIC, reports),
        }
    }
}

impl fmt::Display for AuditSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "erp.audit.events")?;
        writeln!(
            f,
            "  audit: trail entries per service: {:?}",
            self.entries_per_source
        )?;
        for flag in &self.flags {
            writeln!(f, "  compliance: flagged {flag}")?;
        }
        write!(f, "{}", ReportTable(&self.reports))
    }
}
