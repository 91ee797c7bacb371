//! One member of the chaos test's group. Environment: `KAFKA_BROKERS`, `REDIS_URL`,
//! `CHAOS_RUN` (the Redis key prefix), `CHAOS_MEMBER` (this process's name). Runs until
//! SIGTERM (graceful) or SIGKILL.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use erp_events::{
    App, Config, Envelope, HandlerError, IdempotencySettings, ListenerExt, RedisStore, State,
    erp_listener,
};
use erp_events_chaos::{ChaosStep, Handled, now_nanos};
use uuid::Uuid;

#[derive(Clone)]
struct Member {
    name: String,
    run: String,
    store: RedisStore,
    /// Steps whose first attempt panicked here.
    panicked: Arc<Mutex<HashSet<Uuid>>>,
}

#[erp_listener(group = "chaos-members", retries = 1, backoff(initial_ms = 50))]
async fn step(
    event: Envelope<ChaosStep>,
    State(member): State<Member>,
) -> Result<(), HandlerError> {
    let start = now_nanos();
    let mut redis = member.store.connection();
    redis::cmd("RPUSH")
        .arg(format!("{}:starts", member.run))
        .arg(format!(
            "{}|{}|{}",
            member.name,
            event.event_id,
            u8::from(event.payload.panics)
        ))
        .query_async::<()>(&mut redis)
        .await?;
    if event.payload.panics && member.panicked.lock().unwrap().insert(event.event_id) {
        panic!(
            "step {} of {} panics on its first attempt",
            event.payload.seq, event.payload.key
        );
    }
    tokio::time::sleep(Duration::from_micros(200)).await;
    let handled = Handled {
        member: member.name.clone(),
        key: event.payload.key.clone(),
        seq: event.payload.seq,
        start,
        end: now_nanos(),
    };
    let mut effect = redis::pipe();
    effect
        .cmd("RPUSH")
        .arg(format!("{}:handled", member.run))
        .arg(handled.line())
        .ignore();
    member.store.apply_and_confirm(effect).await?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = Config::from_env();
    let url = config.redis_url.clone().ok_or("REDIS_URL is required")?;
    let store = RedisStore::new(&url)?;
    let member = Member {
        name: std::env::var("CHAOS_MEMBER")?,
        run: std::env::var("CHAOS_RUN")?,
        store,
        panicked: Arc::default(),
    };
    App::from_config(&config, erp_events::catalog!())?
        // A killed member's claims are taken over after 2 s, its partitions after 3 s.
        .idempotency_settings(IdempotencySettings {
            lease: Duration::from_secs(2),
            ..IdempotencySettings::default()
        })
        .consumer_config("session.timeout.ms", "3000")
        .consumer_config("heartbeat.interval.ms", "500")
        .shutdown_timeout(Duration::from_secs(10))
        .listener(step.with_state(member))
        .run_until_signal()
        .await?;
    Ok(())
}
