//! `erp-events`, the operator's tool: the catalog's topics on the cluster, consumer lag, dead
//! letters listed, shown and redriven, schema checks and an AsyncAPI document. It reads the
//! applications' own configuration (`KAFKA_BROKERS`, `ERP_KAFKA_*`) and catalog (`schemas/`).

mod args;
mod asyncapi;
mod cluster;
mod dead_letters;
mod failure;
mod lag;
mod output;
mod redrive;
mod schemas;
mod topics;

use std::process::ExitCode;

use clap::Parser;
use time::OffsetDateTime;

use crate::args::{Cli, Command, DltCommand, GroupsCommand, SchemasCommand, TopicsCommand};
use crate::cluster::{connect, load_catalog};
use crate::dead_letters::{Filter, dead_letter_topic};
use crate::failure::{Failure, Verdict};
use crate::redrive::Redrive;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| Failure::usage(format!("cannot start a runtime: {error}")))
        .and_then(|runtime| runtime.block_on(run(cli)));
    match outcome {
        Ok(verdict) => verdict.exit_code(),
        Err(failure) => {
            eprintln!("erp-events: {failure}");
            failure.exit_code()
        }
    }
}

async fn run(cli: Cli) -> Result<Verdict, Failure> {
    let catalog = load_catalog(&cli.schemas)?;
    let json = cli.json;
    match cli.command {
        Command::Schemas(SchemasCommand::Check) => schemas::check(&catalog, json),
        Command::Asyncapi => asyncapi::print(&catalog),
        Command::Topics(command) => {
            let kafka = connect(&catalog).await?;
            match command {
                TopicsCommand::Provision { replication_factor } => {
                    topics::provision(&kafka, &catalog, replication_factor, json).await
                }
                TopicsCommand::Check => topics::check(&kafka, &catalog, json).await,
            }
        }
        Command::Groups(GroupsCommand::Lag { group }) => {
            lag::lag(&connect(&catalog).await?, &catalog, group.as_deref(), json)
        }
        Command::Dlt(command) => {
            let now = OffsetDateTime::now_utc();
            match *command {
                DltCommand::List(selection) => {
                    let dlt = dead_letter_topic(&catalog, &selection.topic)?;
                    let filter = Filter::new(&selection, now)?;
                    dead_letters::list(&connect(&catalog).await?, &dlt, &filter, json)
                }
                DltCommand::Show {
                    topic,
                    offset,
                    partition,
                } => {
                    let dlt = dead_letter_topic(&catalog, &topic)?;
                    let kafka = connect(&catalog).await?;
                    dead_letters::show(&kafka, &dlt, partition, offset, json)
                }
                DltCommand::Redrive {
                    selection,
                    dry_run,
                    to,
                    rate,
                    limit,
                    position,
                } => {
                    let dlt = dead_letter_topic(&catalog, &selection.topic)?;
                    let filter = Filter::new(&selection, now)?;
                    Redrive {
                        dlt: &dlt,
                        filter: &filter,
                        dry_run,
                        to: to.as_deref(),
                        rate,
                        limit,
                        position: &position,
                    }
                    .run(&connect(&catalog).await?, &catalog, json)
                }
            }
        }
    }
}
