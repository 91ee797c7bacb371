//! Sales: completed sales loaded by the ETL service (`erp.sales.transactions`).
//!
//! Listeners: **analytics** sums revenue per product; **fifo** consumes the oldest cost layers
//! of each sale's product and books the cost of goods sold. A sale of more units than the
//! layers hold cannot be costed by any retry: it goes to the dead-letter topic at once.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;

use erp_events::{
    App, Envelope, Event, HandlerError, ListenerExt, ListenerReport, Publisher, State, erp_event,
    erp_listener,
};

use crate::demo::{DemoError, Module, ReportTable, Shared, reports_of};

/// A completed sale of one product, keyed by product so its sales are costed in order.
#[erp_event(topic = "erp.sales.transactions", key = product_id)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaleCompleted {
    /// The sale (receipt) number.
    pub sale_id: String,
    /// The product (SKU).
    pub product_id: String,
    /// Units sold.
    pub quantity: i64,
    /// Price per unit, in cents.
    pub unit_price_cents: i64,
    /// Where it was sold, e.g. `store-12` or `web`.
    pub channel: String,
}

impl SaleCompleted {
    /// A sale of `quantity` units of `product_id` at `unit_price_cents` each.
    pub fn new(sale_id: &str, product_id: &str, quantity: i64, unit_price_cents: i64) -> Self {
        SaleCompleted {
            sale_id: sale_id.to_owned(),
            product_id: product_id.to_owned(),
            quantity,
            unit_price_cents,
            channel: "store-12".to_owned(),
        }
    }
}

/// Revenue per product, in cents.
#[derive(Debug, Clone, Default)]
pub struct Revenue {
    per_product: Shared<BTreeMap<String, i64>>,
}

impl Revenue {
    /// Revenue of each product, in cents.
    pub fn per_product(&self) -> BTreeMap<String, i64> {
        self.per_product.get()
    }
}

/// Adds each sale to its product's revenue.
#[erp_listener(group = "analytics")]
pub async fn sum_revenue(
    event: Envelope<SaleCompleted>,
    State(revenue): State<Revenue>,
) -> Result<(), HandlerError> {
    let sale = &event.payload;
    let mut per_product = revenue.per_product.lock();
    *per_product.entry(sale.product_id.clone()).or_default() +=
        sale.quantity * sale.unit_price_cents;
    Ok(())
}

/// FIFO cost layers per product (units, unit cost in cents), oldest first, and the cost of
/// goods sold booked per sale.
#[derive(Debug, Clone, Default)]
pub struct FifoLedger {
    inner: Shared<FifoBooks>,
}

#[derive(Debug, Default)]
struct FifoBooks {
    layers: BTreeMap<String, VecDeque<(i64, i64)>>,
    cost_of_sales: BTreeMap<String, i64>,
}

/// A sale needs more units than the product's cost layers hold.
#[derive(Debug, thiserror::Error)]
#[error("sale {sale_id}: {wanted} units of {product_id} sold, only {available} in cost layers")]
pub struct NotEnoughStock {
    sale_id: String,
    product_id: String,
    wanted: i64,
    available: i64,
}

impl FifoLedger {
    /// A ledger with a layer of `units` at `unit_cost_cents` received for `product_id`.
    pub fn receive(&self, product_id: &str, units: i64, unit_cost_cents: i64) {
        let mut books = self.inner.lock();
        let layers = books.layers.entry(product_id.to_owned()).or_default();
        layers.push_back((units, unit_cost_cents));
    }

    fn consume(&self, sale: &SaleCompleted) -> Result<(), NotEnoughStock> {
        let mut books = self.inner.lock();
        let layers = books.layers.entry(sale.product_id.clone()).or_default();
        let available: i64 = layers.iter().map(|(units, _)| units).sum();
        if available < sale.quantity {
            return Err(NotEnoughStock {
                sale_id: sale.sale_id.clone(),
                product_id: sale.product_id.clone(),
                wanted: sale.quantity,
                available,
            });
        }
        let (mut wanted, mut cost) = (sale.quantity, 0);
        while wanted > 0 {
            let oldest = layers.front_mut().expect("enough units were checked");
            let taken = wanted.min(oldest.0);
            cost += taken * oldest.1;
            wanted -= taken;
            oldest.0 -= taken;
            if oldest.0 == 0 {
                layers.pop_front();
            }
        }
        *books.cost_of_sales.entry(sale.sale_id.clone()).or_default() += cost;
        Ok(())
    }

    /// Cost of goods sold per sale, in cents.
    pub fn cost_of_sales(&self) -> BTreeMap<String, i64> {
        self.inner.lock().cost_of_sales.clone()
    }

    /// Units left in the cost layers of each product.
    pub fn units_left(&self) -> BTreeMap<String, i64> {
        let books = self.inner.lock();
        books
            .layers
            .iter()
            .map(|(product, layers)| (product.clone(), layers.iter().map(|(units, _)| units).sum()))
            .collect()
    }
}

/// Costs each sale from the oldest layers first. Overselling is permanent: no retry fixes it.
#[erp_listener(group = "fifo", retries = 3)]
pub async fn consume_cost_layers(
    event: Envelope<SaleCompleted>,
    State(ledger): State<FifoLedger>,
) -> Result<(), HandlerError> {
    ledger
        .consume(&event.payload)
        .map_err(HandlerError::permanent)
}

/// The sales module: the revenue and cost books its consumers keep.
#[derive(Debug, Clone)]
pub struct Sales {
    /// analytics' revenue.
    pub revenue: Revenue,
    /// fifo's ledger.
    pub fifo: FifoLedger,
}

impl Default for Sales {
    /// Cost layers from earlier receipts: SKU-100 at 12.50 then 12.00, SKU-200 at 40.00.
    fn default() -> Self {
        let fifo = FifoLedger::default();
        fifo.receive("SKU-100", 50, 1_250);
        fifo.receive("SKU-100", 30, 1_200);
        fifo.receive("SKU-200", 20, 4_000);
        Sales {
            revenue: Revenue::default(),
            fifo,
        }
    }
}

/// What the sales listeners did.
#[derive(Debug, Clone, PartialEq)]
pub struct SalesSummary {
    /// Revenue per product, in cents, as analytics summed it.
    pub revenue: BTreeMap<String, i64>,
    /// Cost of goods sold per sale, in cents, as fifo booked it.
    pub cost_of_sales: BTreeMap<String, i64>,
    /// Units left in the cost layers.
    pub units_left: BTreeMap<String, i64>,
    /// The listeners' reports.
    pub reports: Vec<ListenerReport>,
}

impl Module for Sales {
    const TOPIC: &'static str = SaleCompleted::TOPIC;
    const PRODUCER: &'static str = "etl-service";
    type Summary = SalesSummary;

    fn listen(&self, app: App) -> App {
        app.listener(sum_revenue.with_state(self.revenue.clone()))
            .listener(consume_cost_layers.with_state(self.fifo.clone()))
    }

    async fn publish(&self, publisher: &Publisher) -> Result<u64, DemoError> {
        let sales = [
            SaleCompleted::new("S-5001", "SKU-100", 40, 1_999),
            SaleCompleted::new("S-5002", "SKU-200", 5, 6_500),
            // Takes the last 10 units of the first layer and 15 of the second.
            SaleCompleted::new("S-5003", "SKU-100", 25, 1_899),
            // More than is left: dead-lettered by fifo, still counted as revenue by analytics.
            SaleCompleted::new("S-5004", "SKU-200", 99, 6_500),
        ];
        Ok(publisher.publish_all(&sales).await?.len() as u64)
    }

    fn summary(&self, reports: &[ListenerReport]) -> SalesSummary {
        SalesSummary {
            revenue: self.revenue.per_product(),
            cost_of_sales: self.fifo.cost_of_sales(),
            units_left: self.fifo.units_left(),
            reports: reports_of(Self::TOPIC, reports),
        }
    }
}

impl fmt::Display for SalesSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "erp.sales.transactions")?;
        for (product, cents) in &self.revenue {
            writeln!(
                f,
                "  analytics: revenue of {product}: {:.2}",
                *cents as f64 / 100.0
            )?;
        }
        for (sale, cents) in &self.cost_of_sales {
            writeln!(f, "  fifo: cost of {sale}: {:.2}", *cents as f64 / 100.0)?;
        }
        writeln!(
            f,
            "  fifo: units left in cost layers: {:?}",
            self.units_left
        )?;
        write!(f, "{}", ReportTable(&self.reports))
    }
}
