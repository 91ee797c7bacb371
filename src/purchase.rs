//! Purchasing: purchase orders created, shipped by the supplier and received
//! (`erp.purchase.lifecycle`).
//!
//! Listeners: **finance** keeps the payables ledger (open commitments and amounts owed per
//! supplier); **inventory** keeps the expected receipts per product.

use std::collections::BTreeMap;
use std::fmt;

use erp_events::{
    App, Envelope, Event, HandlerError, ListenerExt, ListenerReport, Publisher, State, erp_event,
    erp_listener, erp_type,
};

use crate::demo::{DemoError, Module, ReportTable, Shared, reports_of};

/// Where a purchase order stands; its name is the envelope's `eventType`.
#[erp_type]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PurchaseStage {
    /// The order was placed with the supplier.
    PoCreated,
    /// The supplier shipped it.
    PoShipped,
    /// The goods arrived and were counted.
    PoReceived,
}

/// One product on a purchase order.
#[erp_type]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderLine {
    /// The product (SKU).
    pub product_id: String,
    /// Units ordered.
    pub quantity: i64,
    /// Price per unit, in cents.
    pub unit_cost_cents: i64,
}

/// A purchase order reaching a stage, keyed by order so one order's stages stay in order.
#[erp_event(topic = "erp.purchase.lifecycle", key = po_number, event_type = stage)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurchaseOrderEvent {
    /// The order number.
    pub po_number: String,
    /// The supplier.
    pub supplier: String,
    /// The stage reached.
    pub stage: PurchaseStage,
    /// What was ordered.
    pub lines: Vec<OrderLine>,
    /// The promised delivery date (ISO 8601), once known.
    pub expected_on: Option<String>,
}

impl PurchaseOrderEvent {
    /// The order's value, in cents.
    pub fn total_cents(&self) -> i64 {
        self.lines
            .iter()
            .map(|line| line.quantity * line.unit_cost_cents)
            .sum()
    }
}

/// Per supplier: committed (ordered, not received) and payable (received, owed), in cents.
#[derive(Debug, Clone, Default)]
pub struct PayablesLedger {
    balances: Shared<BTreeMap<String, SupplierBalance>>,
}

/// One supplier's balance, in cents.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SupplierBalance {
    /// Ordered but not yet received.
    pub committed: i64,
    /// Received and owed.
    pub payable: i64,
}

impl PayablesLedger {
    /// Each supplier's balance.
    pub fn balances(&self) -> BTreeMap<String, SupplierBalance> {
        self.balances.get()
    }
}

/// Books commitments when orders are placed and payables when goods arrive.
#[erp_listener(group = "finance", retries = 3)]
pub async fn book_payables(
    event: Envelope<PurchaseOrderEvent>,
    State(ledger): State<PayablesLedger>,
) -> Result<(), HandlerError> {
    let order = &event.payload;
    let mut balances = ledger.balances.lock();
    let balance = balances.entry(order.supplier.clone()).or_default();
    match order.stage {
        PurchaseStage::PoCreated => balance.committed += order.total_cents(),
        PurchaseStage::PoShipped => {}
        PurchaseStage::PoReceived => {
            balance.committed -= order.total_cents();
            balance.payable += order.total_cents();
        }
    }
    Ok(())
}

/// Units per product expected from suppliers: ordered, and of those, on the way.
#[derive(Debug, Clone, Default)]
pub struct ExpectedReceipts {
    per_product: Shared<BTreeMap<String, Expected>>,
}

/// Units of one product expected from suppliers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Expected {
    /// Ordered and not yet received.
    pub ordered: i64,
    /// Of those, shipped by the supplier.
    pub in_transit: i64,
}

impl ExpectedReceipts {
    /// What is expected of each product.
    pub fn per_product(&self) -> BTreeMap<String, Expected> {
        self.per_product.get()
    }
}

/// Tracks the units warehouses should expect.
#[erp_listener(group = "inventory", retries = 3)]
pub async fn track_expected_receipts(
    event: Envelope<PurchaseOrderEvent>,
    State(receipts): State<ExpectedReceipts>,
) -> Result<(), HandlerError> {
    let mut per_product = receipts.per_product.lock();
    for line in &event.payload.lines {
        let expected = per_product.entry(line.product_id.clone()).or_default();
        match event.payload.stage {
            PurchaseStage::PoCreated => expected.ordered += line.quantity,
            PurchaseStage::PoShipped => expected.in_transit += line.quantity,
            PurchaseStage::PoReceived => {
                expected.ordered -= line.quantity;
                expected.in_transit -= line.quantity;
            }
        }
    }
    Ok(())
}

/// The purchasing module: the ledgers its consumers keep.
#[derive(Debug, Clone, Default)]
pub struct Purchasing {
    /// finance's ledger.
    pub payables: PayablesLedger,
    /// inventory's expected receipts.
    pub receipts: ExpectedReceipts,
}

/// What the purchasing listeners did.
#[derive(Debug, Clone, PartialEq)]
pub struct PurchasingSummary {
    /// Per supplier, as finance booked it.
    pub balances: BTreeMap<String, SupplierBalance>,
    /// Per product, as inventory expects it.
    pub expected: BTreeMap<String, Expected>,
    /// The listeners' reports.
    pub reports: Vec<ListenerReport>,
}

fn order(po_number: &str, supplier: &str, lines: &[(&str, i64, i64)]) -> PurchaseOrderEvent {
    PurchaseOrderEvent {
        po_number: po_number.to_owned(),
        supplier: supplier.to_owned(),
        stage: PurchaseStage::PoCreated,
        lines: lines
            .iter()
            .map(|&(product_id, quantity, unit_cost_cents)| OrderLine {
                product_id: product_id.to_owned(),
                quantity,
                unit_cost_cents,
            })
            .collect(),
        expected_on: None,
    }
}

fn at_stage(
    order: &PurchaseOrderEvent,
    stage: PurchaseStage,
    expected_on: &str,
) -> PurchaseOrderEvent {
    PurchaseOrderEvent {
        stage,
        expected_on: Some(expected_on.to_owned()),
        ..order.clone()
    }
}

impl Module for Purchasing {
    const TOPIC: &'static str = PurchaseOrderEvent::TOPIC;
    const PRODUCER: &'static str = "purchase-service";
    type Summary = PurchasingSummary;

    fn listen(&self, app: App) -> App {
        app.listener(book_payables.with_state(self.payables.clone()))
            .listener(track_expected_receipts.with_state(self.receipts.clone()))
    }

    async fn publish(&self, publisher: &Publisher) -> Result<u64, DemoError> {
        let acme = order(
            "PO-1001",
            "ACME",
            &[("SKU-100", 50, 1_250), ("SKU-200", 20, 4_000)],
        );
        let globex = order("PO-1002", "Globex", &[("SKU-300", 10, 9_900)]);
        let initech = order("PO-1003", "Initech", &[("SKU-100", 30, 1_200)]);
        let events = [
            acme.clone(),
            globex.clone(),
            at_stage(&acme, PurchaseStage::PoShipped, "2026-12-01"),
            initech,
            at_stage(&globex, PurchaseStage::PoShipped, "2026-12-03"),
            at_stage(&acme, PurchaseStage::PoReceived, "2026-12-01"),
        ];
        Ok(publisher.publish_all(&events).await?.len() as u64)
    }

    fn summary(&self, reports: &[ListenerReport]) -> PurchasingSummary {
        PurchasingSummary {
            balances: self.payables.balances(),
            expected: self.receipts.per_product(),
            reports: reports_of(Self::TOPIC, reports),
        }
    }
}

impl fmt::Display for PurchasingSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "erp.purchase.lifecycle")?;
        for (supplier, balance) in &self.balances {
            writeln!(
                f,
                "  finance: {supplier}: committed {:.2}, payable {:.2}",
                balance.committed as f64 / 100.0,
                balance.payable as f64 / 100.0
            )?;
        }
        for (product, expected) in &self.expected {
            writeln!(
                f,
                "  inventory: {product}: {} units on order, {} in transit",
                expected.ordered, expected.in_transit
            )?;
        }
        write!(f, "{}", ReportTable(&self.reports))
    }
}
