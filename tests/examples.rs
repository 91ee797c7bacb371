//! Every example's logic, run as the examples run it, with what each listener did checked: on
//! the embedded broker and on the in-process transport (the same listener code on both).

use std::collections::BTreeMap;
use std::fmt::Debug;

use erp_demo::audit::Audit;
use erp_demo::clinical::{CaseStage, Clinical};
use erp_demo::demo::{self, Module};
use erp_demo::inventory::{Inventory, MovementAction};
use erp_demo::migration::{self, Phase};
use erp_demo::purchase::{Expected, Purchasing, SupplierBalance};
use erp_demo::sales::Sales;
use erp_events::{App, Config, ListenerReport};

/// Runs module `M` on the embedded broker and in process; both must give the same summary.
async fn on_both_transports<M: Module>() -> M::Summary
where
    M::Summary: PartialEq + Debug,
{
    let catalog = erp_events::catalog!();
    let on_kafka = demo::run::<M>(App::from_config(&Config::embedded(), catalog).unwrap())
        .await
        .unwrap();
    let in_process = demo::run::<M>(App::in_process(catalog)).await.unwrap();
    assert_eq!(on_kafka, in_process, "the same listeners, the same outcome");
    on_kafka
}

/// Each listener's (handled, retries, dead-lettered, duplicates), by group.
fn counts(reports: &[ListenerReport]) -> BTreeMap<&str, (u64, u64, u64, u64)> {
    reports
        .iter()
        .map(|r| {
            let c = r.counts;
            (
                r.group,
                (c.handled, c.retries, c.dead_lettered, c.duplicates),
            )
        })
        .collect()
}

fn map<K: Ord, V>(entries: impl IntoIterator<Item = (K, V)>) -> BTreeMap<K, V> {
    entries.into_iter().collect()
}

fn owned<V: Clone>(entries: &[(&str, V)]) -> BTreeMap<String, V> {
    entries
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inventory_indexes_stock_and_counts_movements() {
    let summary = on_both_transports::<Inventory>().await;
    assert_eq!(
        summary.stock,
        map([
            (
                "SKU-100".to_owned(),
                owned(&[("WH-EAST", 25), ("WH-WEST", 10)])
            ),
            ("SKU-200".to_owned(), owned(&[("WH-EAST", 10)])),
        ])
    );
    use MovementAction::*;
    assert_eq!(
        summary.per_action,
        map([
            (Received, (2, 52)),
            (Shipped, (2, 7)),
            (Transferred, (1, 10))
        ])
    );
    assert_eq!(
        counts(&summary.reports),
        map([("analytics", (5, 0, 0, 0)), ("search-sync", (5, 0, 0, 0))])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purchasing_books_payables_and_expected_receipts() {
    let summary = on_both_transports::<Purchasing>().await;
    let balance = |committed, payable| SupplierBalance { committed, payable };
    assert_eq!(
        summary.balances,
        owned(&[
            ("ACME", balance(0, 142_500)),
            ("Globex", balance(99_000, 0)),
            ("Initech", balance(36_000, 0)),
        ])
    );
    let expected = |ordered, in_transit| Expected {
        ordered,
        in_transit,
    };
    assert_eq!(
        summary.expected,
        owned(&[
            ("SKU-100", expected(30, 0)),
            ("SKU-200", expected(0, 0)),
            ("SKU-300", expected(10, 10)),
        ])
    );
    assert_eq!(
        counts(&summary.reports),
        map([("finance", (6, 0, 0, 0)), ("inventory", (6, 0, 0, 0))])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sales_are_costed_first_in_first_out_and_an_oversale_is_dead_lettered() {
    let summary = on_both_transports::<Sales>().await;
    assert_eq!(
        summary.revenue,
        owned(&[
            ("SKU-100", 40 * 1_999 + 25 * 1_899),
            ("SKU-200", 104 * 6_500)
        ])
    );
    assert_eq!(
        summary.cost_of_sales,
        owned(&[
            ("S-5001", 40 * 1_250),
            ("S-5002", 5 * 4_000),
            ("S-5003", 10 * 1_250 + 15 * 1_200),
        ])
    );
    assert_eq!(
        summary.units_left,
        owned(&[("SKU-100", 15), ("SKU-200", 15)])
    );
    assert_eq!(
        counts(&summary.reports),
        map([("analytics", (4, 0, 0, 0)), ("fifo", (3, 0, 1, 0))])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clinical_cases_keep_their_lifecycle() {
    let summary = on_both_transports::<Clinical>().await;
    use CaseStage::*;
    assert_eq!(
        summary.cases,
        owned(&[
            (
                "CASE-7",
                vec![
                    CaseOpened,
                    ProcedureScheduled,
                    ProcedurePerformed,
                    CaseClosed
                ]
            ),
            ("CASE-8", vec![CaseOpened, ProcedureScheduled]),
        ])
    );
    assert_eq!(
        summary.stage_counts,
        map([
            (CaseOpened, 2),
            (ProcedureScheduled, 2),
            (ProcedurePerformed, 2),
            (CaseClosed, 1)
        ])
    );
    assert_eq!(
        counts(&summary.reports),
        map([("analytics", (7, 0, 0, 0)), ("audit", (6, 0, 1, 0))])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_module_writes_the_audit_trail_and_compliance_flags_non_approvers() {
    let summary = on_both_transports::<Audit>().await;
    assert_eq!(
        summary.entries_per_source,
        owned(&[
            ("inventory-service", 1),
            ("purchase-service", 2),
            ("sales-service", 1),
            ("vma-clinical-service", 1),
        ])
    );
    assert_eq!(
        summary.flags,
        [
            "DELETE by nurse-2 on CASE-7 (vma)",
            "PRICE_OVERRIDE by clerk-4 on S-5002 (sales)"
        ]
    );
    assert_eq!(
        counts(&summary.reports),
        map([("audit", (5, 0, 0, 0)), ("compliance", (5, 0, 0, 0))])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_erp_retries_dead_letters_a_poison_pill_and_skips_a_duplicate() {
    let app = App::from_config(&Config::embedded(), erp_events::catalog!()).unwrap();
    let summary = erp_demo::erp::run(app).await.unwrap();
    assert_eq!(
        counts(&summary.inventory.reports)["search-sync"],
        (5, 1, 0, 0),
        "one timeout, retried"
    );
    assert_eq!(
        counts(&summary.sales.reports),
        map([("analytics", (5, 0, 1, 1)), ("fifo", (4, 0, 2, 1))]),
        "the poison pill dead-lettered by both groups, the re-sent sale skipped by both"
    );
    let not_json = "the record value is not JSON: expected value at line 1 column 1";
    let dead = |topic: &str, group: &str, reason: &str| {
        (topic.to_owned(), group.to_owned(), reason.to_owned())
    };
    assert_eq!(
        summary.dead_letters,
        [
            dead("erp.sales.transactions", "analytics", not_json),
            dead(
                "erp.sales.transactions",
                "fifo",
                "sale S-5004: 99 units of SKU-200 sold, only 15 in cost layers"
            ),
            dead("erp.sales.transactions", "fifo", not_json),
            dead(
                "erp.vma.clinical",
                "audit",
                "case CASE-9: ProcedurePerformed cannot follow nothing (the case was never opened)"
            ),
        ]
    );
    // The other modules are as when they run alone.
    assert_eq!(
        summary.sales.units_left["SKU-200"], 14,
        "the re-sent sale was costed once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_process_dead_letters_are_kept_on_the_bus() {
    let summary = erp_demo::erp::run(App::in_process(erp_events::catalog!()))
        .await
        .unwrap();
    let groups: Vec<&str> = summary
        .dead_letters
        .iter()
        .map(|(_, g, _)| g.as_str())
        .collect();
    assert_eq!(
        groups,
        ["fifo", "audit"],
        "no poison pill without Kafka: {summary:?}"
    );
    assert_eq!(counts(&summary.sales.reports)["fifo"], (4, 0, 1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_module_moves_to_kafka_by_configuration_only() {
    let before = migration::run(Phase::BeforeKafka).await.unwrap();
    let after = migration::run(Phase::PurchasingOnKafka).await.unwrap();
    assert!(!before.kafka && after.kafka);
    assert_eq!(before.purchase_events_in_process, 6);
    assert_eq!(
        after.purchase_events_in_process, 0,
        "purchase events went through Kafka"
    );
    assert_eq!(
        before.purchasing, after.purchasing,
        "the same code, the same outcome"
    );
    for phase in [&before, &after] {
        assert_eq!(
            counts(&phase.sales_reports),
            map([("analytics", (0, 0, 0, 0)), ("fifo", (0, 0, 0, 0))]),
            "the module that publishes nothing lives beside the others"
        );
    }
}

#[test]
fn the_readme_quick_start_is_the_service_example() {
    let readme = include_str!("../README.md");
    let service = include_str!("../examples/service.rs");
    assert!(
        readme.contains(&format!("```rust\n{service}```")),
        "README.md's quick start differs from examples/service.rs: paste the file into it"
    );
}
