//! A consumer process for the crash tests: its handler counts its effect per event in Redis
//! (`HINCRBY <EFFECTS_KEY> <eventId> 1`), so a lost event (no count) and a repeated one (a
//! count of 2) both show. With `EFFECT_MODE=atomic` the effect and the event's `done` marker
//! are written in one transaction ([`RedisStore::apply_and_confirm`]).
//!
//! Environment: `KAFKA_BROKERS`, `REDIS_URL`, `EFFECTS_KEY`, `EFFECT_MODE` (`plain` or
//! `atomic`), `EFFECT_PRODUCTS` (only movements of products starting with it have an effect:
//! on a shared broker, the test's own), `EFFECT_HOLD_MS` (the handler then waits this long after
//! its effect, to be caught in progress), `EFFECT_CONFIRM` (`each-record` for
//! [`ConfirmMode::EachRecord`], else in groups). Runs until SIGINT/SIGTERM, logging to stderr;
//! the tests also kill it with SIGKILL.

use std::time::Duration;

use erp_demo::inventory::InventoryMovement;
use erp_events::{
    App, Config, ConfirmMode, Envelope, HandlerError, IdempotencySettings, ListenerExt, RedisStore,
    State, erp_listener,
};

/// Where the handler writes its effect.
#[derive(Clone)]
struct Effects {
    store: RedisStore,
    key: String,
    atomic: bool,
    products: String,
    hold: Duration,
}

#[erp_listener(group = "search-sync", retries = 1, backoff(initial_ms = 100))]
async fn count_effect(
    event: Envelope<InventoryMovement>,
    State(effects): State<Effects>,
) -> Result<(), HandlerError> {
    if !event.payload.product_id.starts_with(&effects.products) {
        return Ok(());
    }
    let mut effect = redis::pipe();
    effect
        .cmd("HINCRBY")
        .arg(&effects.key)
        .arg(event.event_id.to_string())
        .arg(1)
        .ignore();
    if effects.atomic {
        effects.store.apply_and_confirm(effect).await?;
    } else {
        effect
            .query_async::<()>(&mut effects.store.connection())
            .await?;
    }
    tokio::time::sleep(effects.hold).await;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let config = Config::from_env();
    let url = config.redis_url.clone().ok_or("REDIS_URL is required")?;
    let effects = Effects {
        store: RedisStore::new(&url)?,
        key: std::env::var("EFFECTS_KEY")?,
        atomic: std::env::var("EFFECT_MODE").as_deref() == Ok("atomic"),
        products: std::env::var("EFFECT_PRODUCTS").unwrap_or_default(),
        hold: Duration::from_millis(match std::env::var("EFFECT_HOLD_MS") {
            Ok(ms) => ms.parse()?,
            Err(_) => 0,
        }),
    };
    let confirm = match std::env::var("EFFECT_CONFIRM").as_deref() {
        Ok("each-record") => ConfirmMode::EachRecord,
        _ => ConfirmMode::InGroups,
    };
    App::from_config(&config, erp_events::catalog!())?
        // A killed process's claims are taken over after 2 s, its partitions after 3 s.
        .idempotency_settings(IdempotencySettings {
            lease: Duration::from_secs(2),
            confirm,
            ..IdempotencySettings::default()
        })
        .consumer_config("session.timeout.ms", "3000")
        .consumer_config("heartbeat.interval.ms", "500")
        .listener(count_effect.with_state(effects))
        .run_until_signal()
        .await?;
    Ok(())
}
