//! `topics provision` and `topics check`: the catalog's topics and dead-letter twins on the
//! cluster.

use erp_events::{Catalog, Kafka, ProvisionError};
use serde_json::{Value, json};

use crate::failure::{Failure, Verdict};
use crate::output::{or_dash, print, table};

/// One topic the catalog declares, as the cluster has it.
struct Found {
    topic: String,
    /// `topic` or `dead-letter`.
    kind: &'static str,
    declared: i32,
    found: Option<i32>,
}

impl Found {
    fn status(&self) -> &'static str {
        match self.found {
            None => "missing",
            Some(found) if found < self.declared => "too few partitions",
            Some(found) if found > self.declared => "more partitions than declared",
            Some(_) => "ok",
        }
    }
}

/// Creates what is missing, then reports as `check` does, with what it created.
pub async fn provision(
    kafka: &Kafka,
    catalog: &Catalog,
    replication_factor: i32,
    json: bool,
) -> Result<Verdict, Failure> {
    let before = survey(kafka, catalog).await?;
    match kafka.provision(catalog, replication_factor).await {
        // The others were created; the survey reports it.
        Ok(_) | Err(ProvisionError::TooFewPartitions { .. }) => {}
        Err(error) => return Err(Failure::cluster("cannot provision", error)),
    }
    let after = survey(kafka, catalog).await?;
    let created: Vec<&str> = before
        .iter()
        .zip(&after)
        .filter(|(before, after)| before.found.is_none() && after.found.is_some())
        .map(|(_, after)| after.topic.as_str())
        .collect();
    report(&after, &created, json)
}

/// Reports missing topics and partition counts that differ from the catalog's (exit 1).
pub async fn check(kafka: &Kafka, catalog: &Catalog, json: bool) -> Result<Verdict, Failure> {
    report(&survey(kafka, catalog).await?, &[], json)
}

/// Prints each topic's status (`created` for those in `created`); a status other than ok is a
/// problem.
fn report(found: &[Found], created: &[&str], json: bool) -> Result<Verdict, Failure> {
    let status = |found: &Found| match found.status() {
        "ok" if created.contains(&found.topic.as_str()) => "created",
        status => status,
    };
    let value = Value::Array(
        found
            .iter()
            .map(|found| {
                json!({
                    "topic": found.topic,
                    "kind": found.kind,
                    "declaredPartitions": found.declared,
                    "partitions": found.found,
                    "status": status(found),
                })
            })
            .collect(),
    );
    print(json, &value, || {
        let rows: Vec<Vec<String>> = found
            .iter()
            .map(|found| {
                vec![
                    found.topic.clone(),
                    found.kind.to_owned(),
                    found.declared.to_string(),
                    or_dash(found.found),
                    status(found).to_owned(),
                ]
            })
            .collect();
        table(&["TOPIC", "KIND", "DECLARED", "FOUND", "STATUS"], &rows)
    });
    Ok(Verdict::problems_if(
        found.iter().any(|found| found.status() != "ok"),
    ))
}

/// Every catalog topic and dead-letter twin with its partitions on the cluster.
async fn survey(kafka: &Kafka, catalog: &Catalog) -> Result<Vec<Found>, Failure> {
    let counts = kafka
        .partition_counts()
        .await
        .map_err(|error| Failure::cluster("cannot read the cluster's topics", error))?;
    Ok(catalog
        .topics()
        .iter()
        .flat_map(|topic| {
            [
                (topic.name.clone(), "topic", topic.partitions),
                (topic.dead_letter_topic(), "dead-letter", topic.partitions),
            ]
        })
        .map(|(name, kind, declared)| Found {
            found: counts.get(&name).copied(),
            topic: name,
            kind,
            declared,
        })
        .collect())
}
