//! The Redis store: claims shared by every process of a group. Per batch, claims are one
//! pipeline of `SET … NX GET` and confirmations one of `SET … GET` (whatever each finds says
//! whose the key was); renewals and releases are one server-side script call each, fenced by
//! the owner token. A confirmation that finds another owner's claim (its own lease ran out and
//! the event was taken over) puts that claim back at once, with a fenced script; Redis's plain
//! commands cost it a third of a script's per key.

use std::sync::LazyLock;
use std::time::Duration;

use redis::Script;

use super::redis_connection::RedisConnection;
use super::{Claim, Confirmation, IdempotencyStore, StoreError, StoreFuture};
use crate::core::context::EventContext;

/// Claims in Redis (7.0 or newer, for `SET … NX GET`; one server or a Redis Cluster), through a
/// reconnecting, multiplexed connection. A batch of keys costs one round trip per step.
#[derive(Clone)]
pub struct RedisStore {
    connection: RedisConnection,
}

/// Puts back the claims (ARGV[2 + i]) that a confirmation overwrote with its marker (ARGV[1]),
/// for a lease (ARGV[2], ms), on each key (KEYS[i]) that still holds that marker.
static PUT_BACK: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then
    redis.call('PSETEX', key, ARGV[2], ARGV[2 + i])
  end
end
return 0
",
    )
});

/// How long a claim that a late confirmation overwrote is put back for (its holder's next
/// renewal sets its own lease again).
const PUT_BACK_LEASE: Duration = Duration::from_secs(30);

/// A `done` marker: it names the owner that wrote it, so that a confirmation can tell its own
/// marker from one the claim's holder wrote meanwhile.
fn done_marker(owner: &str) -> String {
    format!("done:{owner}")
}

/// Whether a key's value is a `done` marker (`done:<owner>`, or `done` as earlier versions
/// wrote it).
fn is_done(value: &str) -> bool {
    value
        .strip_prefix("done")
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(':'))
}

/// Deletes each key (KEYS) that is the owner's (ARGV[1]).
static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then
    redis.call('DEL', key)
  end
end
return 0
",
    )
});

/// Extends each key (KEYS) that is the owner's (ARGV[1]) to the lease (ARGV[2], ms).
static RENEW: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then
    redis.call('PEXPIRE', key, ARGV[2])
  end
end
return 0
",
    )
});

/// Runs the effect (ARGV[3..]: each command as its argument count, then its arguments) and
/// marks the key (KEYS[1]) `done` for the TTL (ARGV[2], ms), only while the key is the owner's
/// (ARGV[1]) or free; answers 1 when applied, 2 when the key is done already (applied before:
/// a retried call, or a holder that took over), 0 when another holds it (nothing applied).
static APPLY_AND_CONFIRM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local holder = redis.call('GET', KEYS[1])
if holder and (holder == 'done' or string.sub(holder, 1, 5) == 'done:') then
  return 2
end
if holder and holder ~= ARGV[1] then
  return 0
end
local at = 3
while at <= #ARGV do
  local count = tonumber(ARGV[at])
  redis.call(unpack(ARGV, at + 1, at + count))
  at = at + count + 1
end
redis.call('PSETEX', KEYS[1], ARGV[2], 'done:' .. ARGV[1])
return 1
",
    )
});

impl RedisStore {
    /// A store at `url` (`redis://[user:password@]host:port[/db]`, or `rediss://` for TLS
    /// verified against the system's CAs). The connection is made on first use, so a listener
    /// can start while Redis is down (it then waits, failing closed).
    pub fn new(url: &str) -> Result<Self, StoreError> {
        Self::on(RedisConnection::server(url, None))
    }

    /// A store at a `rediss://` `url` whose server certificate is verified against the CAs in
    /// the PEM file `ca_file` (instead of the system's).
    pub fn with_ca(url: &str, ca_file: &str) -> Result<Self, StoreError> {
        Self::on(RedisConnection::server(url, Some(read_ca(ca_file)?)))
    }

    /// A store on the Redis Cluster that the seed `nodes` (`redis://…`, or `rediss://…` verified
    /// against the system's CAs) belong to. A group's keys share one hash slot
    /// (`erp:idem:{<group>}:…`), so each batch's claims and scripts go to one node, and groups
    /// spread over the nodes.
    pub fn cluster(nodes: &[&str]) -> Result<Self, StoreError> {
        Self::on(RedisConnection::cluster(nodes))
    }

    fn on(connection: Result<RedisConnection, StoreError>) -> Result<Self, StoreError> {
        Ok(RedisStore {
            connection: connection?,
        })
    }

    /// The underlying connection, for handlers that keep their effects in the same Redis.
    pub fn connection(&self) -> RedisConnection {
        self.connection.clone()
    }

    /// Runs `effect` (commands on this Redis) and marks the event being handled `done`,
    /// atomically and only while the event's claim is still the handler's own: called from an
    /// idempotent listener's handler, as its last step, it makes the effect happen exactly once
    /// even if the process dies right after (a redelivery then finds the event done), and never
    /// after another consumer took the event over ([`StoreError::ClaimLost`]). The effect runs
    /// inside a server-side script, so its commands must be ones scripts may call (no blocking
    /// or transaction commands).
    pub async fn apply_and_confirm(&self, effect: redis::Pipeline) -> Result<(), StoreError> {
        let context = EventContext::current();
        let claim = context.claim().ok_or(StoreError::OutsideHandler {
            operation: "RedisStore::apply_and_confirm",
        })?;
        let mut invocation = APPLY_AND_CONFIRM.key(&claim.key);
        invocation.arg(&claim.owner).arg(millis(claim.done_ttl));
        for command in effect.cmd_iter() {
            let args: Vec<&[u8]> = command
                .args_iter()
                .filter_map(|arg| match arg {
                    redis::Arg::Simple(bytes) => Some(bytes),
                    _ => None,
                })
                .collect();
            invocation.arg(args.len()).arg(args);
        }
        let applied: i64 = invocation
            .invoke_async(&mut self.connection.clone())
            .await
            .map_err(StoreError::unavailable)?;
        if applied != 0 {
            Ok(())
        } else {
            Err(StoreError::ClaimLost {
                key: claim.key.clone(),
            })
        }
    }
}

fn read_ca(ca_file: &str) -> Result<Vec<u8>, StoreError> {
    std::fs::read(ca_file).map_err(|error| StoreError::Address {
        source: format!("cannot read the CA file `{ca_file}`: {error}").into(),
    })
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

    fn claim<'a>(
        &'a self,
        keys: &'a [String],
        owner: &'a str,
        lease: Duration,
    ) -> StoreFuture<'a, Vec<Claim>> {
        // One `SET … NX GET` per key, pipelined: the cheapest claim Redis has (a script doing the
        // same costs it several times more per key). What it found says whose the key is.
        Box::pin(async move {
            let found = self.set_each(keys, owner, Some("NX"), lease).await?;
            Ok(found
                .into_iter()
                .map(|found| match found.as_deref() {
                    None => Claim::Acquired,
                    Some(found) if is_done(found) => Claim::Done,
                    Some(holder) if holder == owner => Claim::Acquired,
                    Some(_) => Claim::InProgress,
                })
                .collect())
        })
    }

    fn confirm<'a>(
        &'a self,
        keys: &'a [String],
        owner: &'a str,
        ttl: Duration,
    ) -> StoreFuture<'a, Vec<Confirmation>> {
        // One `SET … GET` per key, pipelined: a plain command costs Redis a third of a script
        // per key. What it found says whose the key was; a claim of another owner's that it
        // overwrote is put back.
        Box::pin(async move {
            if keys.is_empty() {
                return Ok(Vec::new());
            }
            let marker = done_marker(owner);
            let found = self.set_each(keys, &marker, None, ttl).await?;
            let mut overwritten = Vec::new();
            let confirmations = keys
                .iter()
                .zip(found)
                .map(|(key, found)| match found {
                    None => Confirmation::Confirmed,
                    Some(holder) if holder == owner => Confirmation::Confirmed,
                    Some(holder) if is_done(&holder) => Confirmation::AlreadyDone,
                    Some(holder) => {
                        overwritten.push((key, holder));
                        Confirmation::Lost
                    }
                })
                .collect();
            if !overwritten.is_empty() {
                let mut put_back = PUT_BACK.prepare_invoke();
                put_back.arg(&marker).arg(millis(PUT_BACK_LEASE));
                for (key, holder) in overwritten {
                    put_back.key(key).arg(holder);
                }
                put_back
                    .invoke_async::<()>(&mut self.connection.clone())
                    .await
                    .map_err(StoreError::unavailable)?;
            }
            Ok(confirmations)
        })
    }

    fn release<'a>(&'a self, keys: &'a [String], owner: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move { self.run(RELEASE.key(keys).arg(owner), keys).await.map(drop) })
    }

    fn renew<'a>(
        &'a self,
        keys: &'a [String],
        owner: &'a str,
        lease: Duration,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut invocation = RENEW.key(keys);
            invocation.arg(owner).arg(millis(lease));
            self.run(&invocation, keys).await.map(drop)
        })
    }
}

impl RedisStore {
    /// Sets each key to `value` for `expiry` (only where `condition` holds: `NX`, or always),
    /// in one pipeline of `SET … GET`; what each key held before.
    async fn set_each(
        &self,
        keys: &[String],
        value: &str,
        condition: Option<&str>,
        expiry: Duration,
    ) -> Result<Vec<Option<String>>, StoreError> {
        let mut pipe = redis::Pipeline::with_capacity(keys.len());
        for key in keys {
            pipe.cmd("SET")
                .arg(key)
                .arg(value)
                .arg(condition)
                .arg("PX")
                .arg(millis(expiry))
                .arg("GET");
        }
        pipe.query_async(&mut self.connection.clone())
            .await
            .map_err(StoreError::unavailable)
    }

    /// Runs a script `invocation` on `keys` (nothing when there are none); its answer per key.
    async fn run(
        &self,
        invocation: &redis::ScriptInvocation<'_>,
        keys: &[String],
    ) -> Result<Vec<i64>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let answer: redis::Value = invocation
            .invoke_async(&mut self.connection.clone())
            .await
            .map_err(StoreError::unavailable)?;
        match answer {
            redis::Value::Array(found) => found
                .into_iter()
                .map(redis::from_redis_value::<i64>)
                .collect::<Result<_, _>>()
                .map_err(StoreError::unavailable),
            _ => Ok(Vec::new()),
        }
    }
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn done_markers_are_told_from_claims_this_version_and_earlier() {
        assert!(is_done(&done_marker("p.1")));
        assert!(is_done("done"), "as earlier versions wrote it");
        assert!(!is_done("donegal.1"));
        assert!(!is_done("p.1"));
    }
}
