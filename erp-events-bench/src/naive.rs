//! The seed's idempotency, as a baseline: one `SET key 1 NX EX <ttl>` per message (the seed's 24 h; 10 minutes here, like the other sides), sent one
//! at a time before the handler, never confirmed (and so losing events on a crash).

use std::time::Duration;

use erp_events::idempotency::{Claim, Confirmation, IdempotencyStore, StoreError, StoreFuture};

/// One awaited `SET NX` per key.
pub struct NaiveRedisStore {
    connection: redis::aio::ConnectionManager,
}

impl NaiveRedisStore {
    /// Connects to `url`.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let client = redis::Client::open(url).map_err(StoreError::unavailable)?;
        let connection = client
            .get_connection_manager()
            .await
            .map_err(StoreError::unavailable)?;
        Ok(NaiveRedisStore { connection })
    }
}

impl IdempotencyStore for NaiveRedisStore {
    fn claim<'a>(
        &'a self,
        keys: &'a [String],
        _owner: &'a str,
        _lease: Duration,
    ) -> StoreFuture<'a, Vec<Claim>> {
        Box::pin(async move {
            let mut claims = Vec::with_capacity(keys.len());
            for key in keys {
                let set: Option<String> = redis::cmd("SET")
                    .arg(key)
                    .arg(1)
                    .arg("NX")
                    .arg("EX")
                    .arg(600)
                    .query_async(&mut self.connection.clone())
                    .await
                    .map_err(StoreError::unavailable)?;
                claims.push(if set.is_some() {
                    Claim::Acquired
                } else {
                    Claim::Done
                });
            }
            Ok(claims)
        })
    }

    fn confirm<'a>(
        &'a self,
        keys: &'a [String],
        _owner: &'a str,
        _ttl: Duration,
    ) -> StoreFuture<'a, Vec<Confirmation>> {
        let confirmed = vec![Confirmation::Confirmed; keys.len()];
        Box::pin(std::future::ready(Ok(confirmed)))
    }

    fn release<'a>(&'a self, _keys: &'a [String], _owner: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(std::future::ready(Ok(())))
    }

    fn renew<'a>(
        &'a self,
        _keys: &'a [String],
        _owner: &'a str,
        _lease: Duration,
    ) -> StoreFuture<'a, ()> {
        Box::pin(std::future::ready(Ok(())))
    }
}
