//! `groups lag`: per consumer group and partition, the committed offset, the end offset, the
//! lag, and the member that owns the partition.

use erp_events::{Catalog, Kafka};
use rdkafka::consumer::Consumer;
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{Value, json};

use crate::cluster::{TIMEOUT, partitions, reader};
use crate::failure::{Failure, Verdict};
use crate::output::{or_dash, print, table};

/// One partition of one group's topic.
struct Lag {
    group: String,
    topic: String,
    partition: i32,
    committed: Option<i64>,
    end: i64,
    /// Records not yet consumed: from the commit (else the partition's start) to the end.
    lag: i64,
    /// `client.id@host` of the member that owns it, if one does.
    member: Option<String>,
}

/// Reports the lag of `group`, or of every consumer group in the catalog.
pub fn lag(
    kafka: &Kafka,
    catalog: &Catalog,
    group: Option<&str>,
    json: bool,
) -> Result<Verdict, Failure> {
    let mut groups = catalog.consumer_groups();
    if let Some(group) = group {
        if !groups.contains(&group) {
            return Err(Failure::usage(format!(
                "`{group}` is not a consumer group of the catalog; its groups: {}",
                groups.join(", ")
            )));
        }
        groups = vec![group];
    }
    let mut rows = Vec::new();
    for group in groups {
        rows.extend(group_lag(kafka, catalog, group)?);
    }
    let value = Value::Array(
        rows.iter()
            .map(|row| {
                json!({
                    "group": row.group,
                    "topic": row.topic,
                    "partition": row.partition,
                    "committed": row.committed,
                    "end": row.end,
                    "lag": row.lag,
                    "member": row.member,
                })
            })
            .collect(),
    );
    print(json, &value, || {
        let cells: Vec<Vec<String>> = rows
            .iter()
            .map(|row| {
                vec![
                    row.group.clone(),
                    row.topic.clone(),
                    row.partition.to_string(),
                    or_dash(row.committed),
                    row.end.to_string(),
                    row.lag.to_string(),
                    or_dash(row.member.as_ref()),
                ]
            })
            .collect();
        table(
            &[
                "GROUP",
                "TOPIC",
                "PARTITION",
                "COMMITTED",
                "END",
                "LAG",
                "MEMBER",
            ],
            &cells,
        )
    });
    Ok(Verdict::Clean)
}

fn group_lag(kafka: &Kafka, catalog: &Catalog, group: &str) -> Result<Vec<Lag>, Failure> {
    let consumer = reader(kafka, Some(group))?;
    let owners = owners(&consumer, group)?;
    let mut rows = Vec::new();
    for topic in catalog
        .topics()
        .iter()
        .filter(|topic| topic.consumers.iter().any(|consumer| consumer == group))
    {
        let Some(ids) = partitions(&consumer, &topic.name)? else {
            continue;
        };
        let mut list = TopicPartitionList::new();
        for &partition in &ids {
            list.add_partition(&topic.name, partition);
        }
        let committed = consumer
            .committed_offsets(list, TIMEOUT)
            .map_err(|error| Failure::cluster("cannot read committed offsets", error))?;
        for &partition in &ids {
            let (low, end) = consumer
                .fetch_watermarks(&topic.name, partition, TIMEOUT)
                .map_err(|error| Failure::cluster("cannot read end offsets", error))?;
            let committed = committed
                .find_partition(&topic.name, partition)
                .and_then(|element| match element.offset() {
                    Offset::Offset(offset) => Some(offset),
                    _ => None,
                });
            rows.push(Lag {
                group: group.to_owned(),
                topic: topic.name.clone(),
                partition,
                committed,
                end,
                lag: (end - committed.unwrap_or(low).max(low)).max(0),
                member: owners
                    .iter()
                    .find(|(owned, _)| owned.0 == topic.name && owned.1 == partition)
                    .map(|(_, member)| member.clone()),
            });
        }
    }
    Ok(rows)
}

/// A member (`client.id@host`) of a group and a partition it owns.
type Owner = ((String, i32), String);

/// Which member owns which partition, from the group's description (classic protocol).
fn owners(consumer: &rdkafka::consumer::BaseConsumer, group: &str) -> Result<Vec<Owner>, Failure> {
    let groups = consumer
        .fetch_group_list(Some(group), TIMEOUT)
        .map_err(|error| Failure::cluster("cannot describe the consumer group", error))?;
    let mut owners = Vec::new();
    for described in groups.groups() {
        for member in described.members() {
            let name = format!("{}@{}", member.client_id(), member.client_host());
            for owned in member.assignment().map(assigned).unwrap_or_default() {
                owners.push((owned, name.clone()));
            }
        }
    }
    Ok(owners)
}

/// The partitions in a classic consumer protocol assignment: a version (int16), then topics
/// (int32 count; each a string with an int16 length and int32 partitions), then user data.
/// Anything it cannot read yields what was read before it.
fn assigned(bytes: &[u8]) -> Vec<(String, i32)> {
    let mut reader = Bytes(bytes);
    let mut owned = Vec::new();
    let Some(_version) = reader.take::<2>() else {
        return owned;
    };
    let Some(topics) = reader.int32() else {
        return owned;
    };
    for _ in 0..topics.max(0) {
        let Some(length) = reader.take::<2>().map(i16::from_be_bytes) else {
            break;
        };
        let Some(name) = reader.slice(length.max(0) as usize) else {
            break;
        };
        let topic = String::from_utf8_lossy(name).into_owned();
        let Some(count) = reader.int32() else {
            break;
        };
        for _ in 0..count.max(0) {
            let Some(partition) = reader.int32() else {
                return owned;
            };
            owned.push((topic.clone(), partition));
        }
    }
    owned
}

/// A cursor over bytes in Kafka's big-endian encoding.
struct Bytes<'a>(&'a [u8]);

impl<'a> Bytes<'a> {
    fn slice(&mut self, length: usize) -> Option<&'a [u8]> {
        if self.0.len() < length {
            return None;
        }
        let (head, rest) = self.0.split_at(length);
        self.0 = rest;
        Some(head)
    }

    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.slice(N)?.try_into().ok()
    }

    fn int32(&mut self) -> Option<i32> {
        self.take::<4>().map(i32::from_be_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_classic_assignment_names_its_topics_and_partitions() {
        let mut bytes = vec![0, 1, 0, 0, 0, 1, 0, 3];
        bytes.extend(b"erp");
        bytes.extend([0, 0, 0, 2, 0, 0, 0, 4, 0, 0, 0, 5, 0, 0, 0, 0]);
        assert_eq!(
            assigned(&bytes),
            vec![("erp".to_owned(), 4), ("erp".to_owned(), 5)]
        );
    }

    #[test]
    fn a_cut_assignment_yields_what_was_read() {
        let bytes = [
            0, 1, 0, 0, 0, 1, 0, 3, b'e', b'r', b'p', 0, 0, 0, 2, 0, 0, 0, 4, 0,
        ];
        assert_eq!(assigned(&bytes), vec![("erp".to_owned(), 4)]);
        assert_eq!(assigned(&[0]), Vec::<(String, i32)>::new());
    }
}
