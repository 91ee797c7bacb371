//! ERP value types in payloads (the `chrono` and `decimal` features): the JSON serde writes is
//! what Jackson writes for `Instant`, `LocalDate` and `BigDecimal` (Spring Boot's defaults),
//! the schema says so, and what Jackson writes reads back.

use chrono::{DateTime, NaiveDate, Utc};
use erp_events::schema::PayloadType;
use erp_events::{Envelope, erp_type};
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

#[test]
fn a_long_number_keeps_every_digit() {
    // Jackson writes a `BigDecimal` as a JSON number unless told otherwise: more digits than an
    // `f64` holds.
    let from_kotlin = r#"{"bookedAt": "2026-12-01T13:00:00.123Z", "dueOn": "2026-12-31", "amount": 1234567890123456789.0100}"#;
    let read: InvoiceLine = serde_json::from_str(from_kotlin).unwrap();
    assert_eq!(read.amount, line().amount);
    assert_eq!(
        serde_json::to_value(&read).unwrap()["amount"],
        "1234567890123456789.0100"
    );
    // A payload read as a `Value` (a relay, a generic consumer) writes the number it read.
    let envelope = format!(
        r#"{{"eventId":"0192f1c4-7a3e-7b6c-9d2e-5f8a1b3c4d5e","eventType":"INVOICE","source":"billing","timestamp":"2026-12-01T13:00:00Z","traceId":null,"userId":null,"version":1,"payload":{from_kotlin}}}"#
    );
    let relayed = Envelope::<serde_json::Value>::decode(envelope.as_bytes())
        .unwrap()
        .to_json()
        .unwrap();
    let relayed = String::from_utf8(relayed).unwrap();
    assert!(
        relayed.contains(r#""amount":1234567890123456789.0100"#),
        "{relayed}"
    );
}
