//! ERP value types in payloads (the `chrono` and `decimal` features): the JSON serde writes is
//! what Jackson writes for `Instant`, `LocalDate` and `BigDecimal` (Spring Boot's defaults),
//! the schema says so, and what Jackson writes reads back.

use chrono::{DateTime, NaiveDate, Utc};
use erp_events::erp_type;
use erp_events::schema::PayloadType;
use rust_decimal::Decimal;
use serde_json::json;

/// One line of a supplier invoice.
#[erp_type]
#[derive(Debug, Clone, PartialEq)]
pub struct InvoiceLine {
    /// When it was booked.
    pub booked_at: DateTime<Utc>,
    /// The day it is due.
    pub due_on: NaiveDate,
    /// What it costs (money: exact).
    pub amount: Decimal,
}

fn line() -> InvoiceLine {
    InvoiceLine {
        booked_at: "2026-12-01T13:00:00.123Z".parse().unwrap(),
        due_on: NaiveDate::from_ymd_opt(2026, 12, 31).unwrap(),
        amount: "1234567890123456789.0100".parse().unwrap(),
    }
}

#[test]
fn instants_dates_and_money_are_written_as_jackson_writes_them() {
    let written = serde_json::to_value(line()).unwrap();
    assert_eq!(
        written,
        json!({
            "bookedAt": "2026-12-01T13:00:00.123Z",
            "dueOn": "2026-12-31",
            "amount": "1234567890123456789.0100",
        })
    );
}

#[test]
fn the_schema_names_their_formats() {
    let schema = serde_json::to_value(
        InvoiceLine::type_schema()
            .detail
            .get("properties")
            .cloned()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(schema["bookedAt"]["format"], "date-time");
    assert_eq!(schema["dueOn"]["format"], "date");
    assert_eq!(schema["amount"]["format"], "decimal");
    assert_eq!(schema["amount"]["type"], "string");
}

#[test]
fn what_jackson_writes_reads_back_exactly() {
    // Jackson writes `Instant` with an offset or `Z`, and `BigDecimal` as a string or a number.
    let from_kotlin = json!({
        "bookedAt": "2026-12-01T14:00:00.123+01:00",
        "dueOn": "2026-12-31",
        "amount": "1234567890123456789.0100",
    });
    assert_eq!(
        serde_json::from_value::<InvoiceLine>(from_kotlin).unwrap(),
        line()
    );
    let as_number: InvoiceLine = serde_json::from_str(
        r#"{"bookedAt": "2026-12-01T13:00:00.123Z", "dueOn": "2026-12-31", "amount": 12.5}"#,
    )
    .unwrap();
    assert_eq!(as_number.amount, "12.5".parse::<Decimal>().unwrap());
}
