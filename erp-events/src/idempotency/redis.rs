//! The Redis store: claims shared by every process of a group, pipelined per batch.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::{Claim, IdempotencyStore, StoreError, StoreFuture};
use crate::core::context::EventContext;

/// Claims in Redis (7.0 or newer, for `SET … NX GET`), through a reconnecting, multiplexed
/// connection. A batch of keys costs one round trip.
#[derive(Clone)]
pub struct RedisStore {
    connection: ConnectionManager,
}

impl RedisStore {
    /// A store at `url` (`redis://[user:password@]host:port[/db]`, or `rediss://` for TLS
    /// verified against the system's CAs). The connection is made on first use, so a listener
    /// can start while Redis is down (it then waits, failing closed).
    pub fn new(url: &str) -> Result<Self, StoreError> {
        Self::connect(redis::Client::open(url))
    }

    /// A store at a `rediss://` `url` whose server certificate is verified against the CAs in
    /// the PEM file `ca_file` (instead of the system's).
    pub fn with_ca(url: &str, ca_file: &str) -> Result<Self, StoreError> {
        let ca = std::fs::read(ca_file).map_err(|error| StoreError::Address {
            source: format!("cannot read the CA file `{ca_file}`: {error}").into(),
        })?;
        let certificates = redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(ca),
        };
        Self::connect(redis::Client::build_with_tls(url, certificates))
    }

    fn connect(client: redis::RedisResult<redis::Client>) -> Result<Self, StoreError> {
        let client = client.map_err(|error| StoreError::Address {
            source: error.into(),
        })?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(5)))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let connection = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(StoreError::unavailable)?;
        Ok(RedisStore { connection })
    }

    /// The underlying connection, for handlers that keep their effects in the same Redis.
    pub fn connection(&self) -> ConnectionManager {
        self.connection.clone()
    }

    /// Runs `effect` (commands on this Redis) and marks the event being handled `done`, in one
    /// `MULTI`/`EXEC` transaction: called from an idempotent listener's handler, as its last
    /// step, it makes the effect happen exactly once even if the process dies right after (a
    /// redelivery then finds the event done). Without it, a crash between a handler's effect
    /// and the framework's confirmation repeats the effect.
    pub async fn apply_and_confirm(&self, mut effect: redis::Pipeline) -> Result<(), StoreError> {
        let context = EventContext::current();
        let claim = context.claim().ok_or(StoreError::OutsideHandler {
            operation: "RedisStore::apply_and_confirm",
        })?;
        effect
            .cmd("SET")
            .arg(&claim.key)
            .arg("done")
            .arg("PX")
            .arg(millis(claim.done_ttl))
            .ignore();
        effect
            .atomic()
            .query_async::<redis::Value>(&mut self.connection.clone())
            .await
            .map(drop)
            .map_err(StoreError::unavailable)
    }
}

fn millis(duration: Duration) -> u64 {
    duration.as_millis().clamp(1, u128::from(u64::MAX)) as u64
}

impl IdempotencyStore for RedisStore {
    fn ping(&self) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            redis::cmd("PING")
                .query_async::<()>(&mut self.connection.clone())
                .await
                .map_err(StoreError::unavailable)
        })
    }

    fn claim<'a>(&'a self, keys: &'a [String], lease: Duration) -> StoreFuture<'a, Vec<Claim>> {
        Box::pin(async move {
            let mut pipe = redis::Pipeline::with_capacity(keys.len());
            for key in keys {
                pipe.cmd("SET")
                    .arg(key)
                    .arg("processing")
                    .arg("NX")
                    .arg("PX")
                    .arg(millis(lease))
                    .arg("GET");
            }
            let found: Vec<Option<String>> = pipe
                .query_async(&mut self.connection.clone())
                .await
                .map_err(StoreError::unavailable)?;
            Ok(found
                .into_iter()
                .map(|previous| match previous.as_deref() {
                    None => Claim::Acquired,
                    Some("done") => Claim::Done,
                    Some(_) => Claim::InProgress,
                })
                .collect())
        })
    }

    fn confirm<'a>(&'a self, keys: &'a [String], ttl: Duration) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut pipe = redis::Pipeline::with_capacity(keys.len());
            for key in keys {
                pipe.cmd("SET")
                    .arg(key)
                    .arg("done")
                    .arg("PX")
                    .arg(millis(ttl))
                    .ignore();
            }
            pipe.query_async::<()>(&mut self.connection.clone())
                .await
                .map_err(StoreError::unavailable)
        })
    }

    fn release<'a>(&'a self, keys: &'a [String]) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            if keys.is_empty() {
                return Ok(());
            }
            redis::cmd("DEL")
                .arg(keys)
                .query_async::<()>(&mut self.connection.clone())
                .await
                .map_err(StoreError::unavailable)
        })
    }
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore").finish_non_exhaustive()
    }
}
