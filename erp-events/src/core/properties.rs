//! librdkafka properties for the clients the framework creates (security, timeouts, anything
//! else), from the environment or from code, with the framework's guarantees kept and secrets
//! never shown.

use std::fmt;

/// Prefix of the environment variables that set a librdkafka property on every client.
pub const KAFKA_PROPERTY_PREFIX: &str = "ERP_KAFKA_";

/// librdkafka properties: `common` for every client (listeners, publishers, the dead-letter
/// producer and reader, provisioning), `consumer` and `producer` for one role, applied after the
/// framework's own. From the environment ([`KafkaProperties::from_vars`]):
/// `ERP_KAFKA_<NAME>`, `ERP_KAFKA_CONSUMER_<NAME>`, `ERP_KAFKA_PRODUCER_<NAME>`, where `<NAME>`
/// is the property's name upper-cased with dots as underscores
/// (`ERP_KAFKA_SASL_MECHANISMS=SCRAM-SHA-512` sets `sasl.mechanisms`).
///
/// Its `Debug` output masks the values of secret properties (passwords, secrets, keys).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct KafkaProperties {
    /// For every client.
    pub common: Vec<(String, String)>,
    /// For consumers only (listeners', and the one reading a dead letter's headers back).
    pub consumer: Vec<(String, String)>,
    /// For producers only (publishers and the dead-letter producer).
    pub producer: Vec<(String, String)>,
}

/// What the framework sets and relies on: a different value would break at-least-once delivery,
/// ordering or Java-compatible partitioning.
const KEPT_BY_CONSUMERS: &[(&str, &[&str])] = &[
    ("enable.auto.offset.store", &["false"]),
    ("enable.auto.commit", &["true"]),
    ("group.id", &[]),
];
const KEPT_BY_PRODUCERS: &[(&str, &[&str])] = &[
    ("enable.idempotence", &["true"]),
    ("acks", &["all", "-1"]),
    ("partitioner", &["murmur2_random"]),
];

/// A property that would break what the framework guarantees.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{name}={value}` cannot be set: erp-events relies on {needed} for its delivery guarantees; remove it"
)]
pub struct ConflictingProperty {
    /// The property.
    pub name: String,
    /// The value asked for.
    pub value: String,
    /// What the framework needs.
    pub needed: String,
}

impl KafkaProperties {
    /// The properties among `vars` (e.g. `std::env::vars()`), by the naming scheme above.
    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut properties = KafkaProperties::default();
        for (variable, value) in vars {
            let Some(name) = variable.strip_prefix(KAFKA_PROPERTY_PREFIX) else {
                continue;
            };
            let (list, name) = match (
                name.strip_prefix("CONSUMER_"),
                name.strip_prefix("PRODUCER_"),
            ) {
                (Some(name), _) => (&mut properties.consumer, name),
                (_, Some(name)) => (&mut properties.producer, name),
                _ => (&mut properties.common, name),
            };
            list.push((name.to_ascii_lowercase().replace('_', "."), value));
        }
        for list in [
            &mut properties.common,
            &mut properties.consumer,
            &mut properties.producer,
        ] {
            list.sort();
        }
        properties
    }

    /// Every property that would override one the framework relies on.
    pub fn conflicts(&self) -> Vec<ConflictingProperty> {
        let check = |list: &[(String, String)], kept: &[(&str, &[&str])]| {
            list.iter()
                .filter_map(|(name, value)| {
                    let (_, allowed) = kept.iter().find(|(kept, _)| kept == name)?;
                    let fine = allowed.iter().any(|a| a.eq_ignore_ascii_case(value.trim()));
                    (!fine).then(|| ConflictingProperty {
                        name: name.clone(),
                        value: value.clone(),
                        needed: match allowed.first() {
                            Some(needed) => format!("`{name}={needed}`"),
                            None => format!("its own `{name}` (the listener's group)"),
                        },
                    })
                })
                .collect::<Vec<_>>()
        };
        let mut conflicts = check(&self.common, KEPT_BY_CONSUMERS);
        conflicts.extend(check(&self.common, KEPT_BY_PRODUCERS));
        conflicts.extend(check(&self.consumer, KEPT_BY_CONSUMERS));
        conflicts.extend(check(&self.producer, KEPT_BY_PRODUCERS));
        conflicts
    }
}

/// Whether a property's value must never be shown.
pub(crate) fn is_secret(name: &str) -> bool {
    ["password", "secret", "key.pem", "keystore", "jaas"]
        .iter()
        .any(|part| name.contains(part))
}

/// `name=value` pairs, with secret values masked.
struct Masked<'a>(&'a [(String, String)]);

impl fmt::Debug for Masked<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.iter().map(|(name, value)| {
                let shown = if is_secret(name) {
                    "***"
                } else {
                    value.as_str()
                };
                (name, shown)
            }))
            .finish()
    }
}

impl fmt::Debug for KafkaProperties {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaProperties")
            .field("common", &Masked(&self.common))
            .field("consumer", &Masked(&self.consumer))
            .field("producer", &Masked(&self.producer))
            .finish()
    }
}

/// `url` with its password (if any) replaced by `***`.
pub(crate) fn mask_url_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((user_info, host)) => {
            let user = user_info
                .split_once(':')
                .map_or(user_info, |(user, _)| user);
            let masked = if user_info.contains(':') {
                format!("{user}:***")
            } else {
                "***".to_owned()
            };
            format!("{scheme}://{masked}@{host}{path}")
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn variables_name_properties_by_role() {
        let properties = KafkaProperties::from_vars(vars(&[
            ("ERP_KAFKA_SECURITY_PROTOCOL", "sasl_ssl"),
            ("ERP_KAFKA_SASL_PASSWORD", "hunter2"),
            ("ERP_KAFKA_CONSUMER_FETCH_MAX_BYTES", "1048576"),
            ("ERP_KAFKA_PRODUCER_MESSAGE_TIMEOUT_MS", "5000"),
            ("KAFKA_BROKERS", "ignored"),
        ]));
        assert_eq!(
            properties.common,
            vars(&[
                ("sasl.password", "hunter2"),
                ("security.protocol", "sasl_ssl")
            ])
        );
        assert_eq!(properties.consumer, vars(&[("fetch.max.bytes", "1048576")]));
        assert_eq!(properties.producer, vars(&[("message.timeout.ms", "5000")]));
    }

    #[test]
    fn secrets_are_masked_in_debug_output() {
        let properties = KafkaProperties::from_vars(vars(&[
            ("ERP_KAFKA_SASL_PASSWORD", "hunter2"),
            ("ERP_KAFKA_SSL_KEY_PASSWORD", "s3cret"),
            ("ERP_KAFKA_SASL_USERNAME", "erp"),
        ]));
        let shown = format!("{properties:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("s3cret"),
            "{shown}"
        );
        assert!(shown.contains("\"sasl.username\": \"erp\""), "{shown}");
        assert_eq!(
            mask_url_password("redis://erp:hunter2@redis.internal:6379/2"),
            "redis://erp:***@redis.internal:6379/2"
        );
        assert_eq!(
            mask_url_password("rediss://:hunter2@r:6380"),
            "rediss://:***@r:6380"
        );
        assert_eq!(
            mask_url_password("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
    }

    #[test]
    fn the_frameworks_guarantees_cannot_be_overridden() {
        let properties = KafkaProperties::from_vars(vars(&[
            ("ERP_KAFKA_PRODUCER_ACKS", "1"),
            ("ERP_KAFKA_CONSUMER_ENABLE_AUTO_OFFSET_STORE", "true"),
            ("ERP_KAFKA_ACKS", "-1"),
            ("ERP_KAFKA_CLIENT_RACK", "eu-1a"),
        ]));
        let conflicts: Vec<String> = properties
            .conflicts()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            conflicts,
            [
                "`enable.auto.offset.store=true` cannot be set: erp-events relies on `enable.auto.offset.store=false` for its delivery guarantees; remove it",
                "`acks=1` cannot be set: erp-events relies on `acks=all` for its delivery guarantees; remove it",
            ]
        );
    }
}
