//! VMA clinical: the lifecycle of clinical cases (`erp.vma.clinical`).
//!
//! Listeners: **audit** keeps each case's history and refuses a stage that does not follow the
//! one before (a record out of its lifecycle is dead-lettered for a person to look at);
//! **analytics** counts cases per stage.

use std::collections::BTreeMap;
use std::fmt;

use erp_events::{
    App, Envelope, Event, HandlerError, ListenerExt, ListenerReport, Publisher, State, erp_event,
    erp_listener, erp_type,
};

use crate::demo::{DemoError, Module, ReportTable, Shared, reports_of};

/// Where a clinical case stands; its name is the envelope's `eventType`.
#[erp_type]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CaseStage {
    /// A case was opened for a patient.
    CaseOpened,
    /// The procedure was scheduled.
    ProcedureScheduled,
    /// The procedure was performed, with a device from a lot.
    ProcedurePerformed,
    /// The case was closed after follow-up.
    CaseClosed,
}

/// A clinical case reaching a stage, keyed by case so its stages stay in order.
#[erp_event(topic = "erp.vma.clinical", key = case_id, event_type = stage)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClinicalCaseEvent {
    /// The case.
    pub case_id: String,
    /// The stage reached.
    pub stage: CaseStage,
    /// The hospital site.
    pub site: String,
    /// The device lot used, once the procedure was performed (for recalls).
    pub device_lot: Option<String>,
}

/// Each case's stages, in the order they were recorded.
#[derive(Debug, Clone, Default)]
pub struct CaseHistory {
    cases: Shared<BTreeMap<String, Vec<CaseStage>>>,
}

/// A stage that does not follow the case's last one.
#[derive(Debug, thiserror::Error)]
#[error("case {case_id}: {stage:?} cannot follow {}", last.map_or("nothing (the case was never opened)".to_owned(), |last| format!("{last:?}")))]
pub struct OutOfLifecycle {
    case_id: String,
    stage: CaseStage,
    last: Option<CaseStage>,
}

impl CaseHistory {
    /// The stages of each case.
    pub fn cases(&self) -> BTreeMap<String, Vec<CaseStage>> {
        self.cases.get()
    }
}

/// Records each case's stages; a stage out of the lifecycle is permanent (not retried).
#[erp_listener(group = "audit", retries = 3)]
pub async fn record_case_history(
    event: Envelope<ClinicalCaseEvent>,
    State(history): State<CaseHistory>,
) -> Result<(), HandlerError> {
    let case = &event.payload;
    let mut cases = history.cases.lock();
    let last = cases
        .get(&case.case_id)
        .and_then(|stages| stages.last().copied());
    let follows = match last {
        None => case.stage == CaseStage::CaseOpened,
        Some(last) => case.stage > last,
    };
    if !follows {
        return Err(HandlerError::permanent(OutOfLifecycle {
            case_id: case.case_id.clone(),
            stage: case.stage,
            last,
        }));
    }
    cases
        .entry(case.case_id.clone())
        .or_default()
        .push(case.stage);
    Ok(())
}

/// Cases per stage reached.
#[derive(Debug, Clone, Default)]
pub struct StageCounts {
    counts: Shared<BTreeMap<CaseStage, u64>>,
}

impl StageCounts {
    /// How many cases reached each stage.
    pub fn counts(&self) -> BTreeMap<CaseStage, u64> {
        self.counts.get()
    }
}

/// Counts stage changes for the clinical dashboards.
#[erp_listener(group = "analytics")]
pub async fn count_case_stages(
    event: Envelope<ClinicalCaseEvent>,
    State(counts): State<StageCounts>,
) -> Result<(), HandlerError> {
    *counts.counts.lock().entry(event.payload.stage).or_default() += 1;
    Ok(())
}

/// The clinical module: the case history and the stage counts its consumers keep.
#[derive(Debug, Clone, Default)]
pub struct Clinical {
    /// audit's history.
    pub history: CaseHistory,
    /// analytics' counts.
    pub stages: StageCounts,
}

/// What the clinical listeners did.
#[derive(Debug, Clone, PartialEq)]
pub struct ClinicalSummary {
    /// Each case's stages, as audit recorded them.
    pub cases: BTreeMap<String, Vec<CaseStage>>,
    /// Cases per stage, as analytics counted them.
    pub stage_counts: BTreeMap<CaseStage, u64>,
    /// The listeners' reports.
    pub reports: Vec<ListenerReport>,
}

fn case(case_id: &str, stage: CaseStage, device_lot: Option<&str>) -> ClinicalCaseEvent {
    ClinicalCaseEvent {
        case_id: case_id.to_owned(),
        stage,
        site: "St. Mary's".to_owned(),
        device_lot: device_lot.map(str::to_owned),
    }
}

impl Module for Clinical {
    const TOPIC: &'static str = ClinicalCaseEvent::TOPIC;
    const PRODUCER: &'static str = "vma-clinical-service";
    type Summary = ClinicalSummary;

    fn listen(&self, app: App) -> App {
        app.listener(record_case_history.with_state(self.history.clone()))
            .listener(count_case_stages.with_state(self.stages.clone()))
    }

    async fn publish(&self, publisher: &Publisher) -> Result<u64, DemoError> {
        use CaseStage::*;
        let events = [
            case("CASE-7", CaseOpened, None),
            case("CASE-8", CaseOpened, None),
            case("CASE-7", ProcedureScheduled, None),
            case("CASE-7", ProcedurePerformed, Some("LOT-2291")),
            case("CASE-8", ProcedureScheduled, None),
            case("CASE-7", CaseClosed, None),
            // A case the clinical service never opened: audit refuses it.
            case("CASE-9", ProcedurePerformed, Some("LOT-2291")),
        ];
        Ok(publisher.publish_all(&events).await?.len() as u64)
    }

    fn summary(&self, reports: &[ListenerReport]) -> ClinicalSummary {
        ClinicalSummary {
            cases: self.history.cases(),
            stage_counts: self.stages.counts(),
            reports: reports_of(Self::TOPIC, reports),
        }
    }
}

impl fmt::Display for ClinicalSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "erp.vma.clinical")?;
        for (case_id, stages) in &self.cases {
            writeln!(f, "  audit: {case_id}: {stages:?}")?;
        }
        writeln!(f, "  analytics: cases per stage: {:?}", self.stage_counts)?;
        write!(f, "{}", ReportTable(&self.reports))
    }
}
