//! Starting against a wrong address is an error after a bounded wait, not a service that
//! silently handles nothing.

use std::time::{Duration, Instant};

mod common;

use erp_events::{App, AppError, Brokers, Config, InProcessTopics, KafkaProperties};

fn config(brokers: Brokers, redis_url: Option<&str>) -> Config {
    Config {
        brokers,
        redis_url: redis_url.map(str::to_owned),
        in_process: InProcessTopics::None,
        ..Config::embedded()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_broker_is_an_error_at_start() {
    let config = config(Brokers::External("127.0.0.1:9".into()), None);
    let app = App::from_config(&config, erp_events::catalog!())
        .unwrap()
        .ready_timeout(Duration::from_secs(2));
    let started = Instant::now();
    let error = app.run_until_signal().await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(30), "bounded wait");
    assert!(
        matches!(error, AppError::BrokerUnreachable { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("127.0.0.1:9"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_idempotency_store_is_an_error_at_start() {
    let config = config(Brokers::Embedded, Some("redis://127.0.0.1:9"));
    store_unreachable_at_start(config, "REDIS_URL").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_redis_cluster_is_an_error_at_start() {
    let config = Config {
        redis_cluster_nodes: vec!["redis://127.0.0.1:9".into()],
        ..config(Brokers::Embedded, None)
    };
    store_unreachable_at_start(config, "ERP_REDIS_CLUSTER_NODES").await;
}

/// An application on `config` fails to get ready within a bounded wait, saying the store is
/// unreachable and naming `variable`.
async fn store_unreachable_at_start(config: Config, variable: &str) {
    let app = App::from_config(&config, erp_events::catalog!())
        .unwrap()
        .ready_timeout(Duration::from_secs(2));
    let started = Instant::now();
    let error = app.ready().await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(30), "bounded wait");
    assert!(
        matches!(error, AppError::StoreUnreachable { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains(variable), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_configuration_that_cannot_work_is_an_error_that_says_what_to_change() {
    let cluster = vec!["redis://127.0.0.1:7001".to_owned()];
    let both = Config {
        redis_cluster_nodes: cluster.clone(),
        ..config(Brokers::Embedded, Some("redis://127.0.0.1:6379"))
    };
    let cluster_with_ca = Config {
        redis_cluster_nodes: cluster,
        redis_ca: Some("ca.pem".into()),
        ..config(Brokers::Embedded, None)
    };
    for (config, named) in [
        (both, ["REDIS_URL", "ERP_REDIS_CLUSTER_NODES"]),
        (cluster_with_ca, ["ERP_REDIS_CA_LOCATION", "SSL_CERT_FILE"]),
    ] {
        let Err(error) = App::from_config(&config, erp_events::catalog!()) else {
            panic!("an application on {config:?}");
        };
        assert!(matches!(error, AppError::Store(_)), "{error:?}");
        let shown = error.to_string();
        assert!(named.iter().all(|name| shown.contains(name)), "{shown}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_default_is_ready() {
    let app = App::from_config(&Config::embedded(), erp_events::catalog!()).unwrap();
    app.ready().await.unwrap();
}

fn with_properties(kafka: KafkaProperties) -> Config {
    Config {
        kafka,
        ..Config::embedded()
    }
}

fn properties(list: &[(&str, &str)]) -> KafkaProperties {
    KafkaProperties::from_vars(list.iter().map(|(k, v)| (k.to_string(), v.to_string())))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_property_that_breaks_a_guarantee_is_an_error_at_start() {
    let config = with_properties(properties(&[("ERP_KAFKA_PRODUCER_ACKS", "1")]));
    let error = App::from_config(&config, erp_events::catalog!())
        .err()
        .unwrap();
    assert!(
        matches!(error, AppError::ConflictingProperty(_)),
        "{error:?}"
    );
    assert!(error.to_string().contains("`acks=all`"), "{error}");
    let app = App::from_config(&Config::embedded(), erp_events::catalog!())
        .unwrap()
        .consumer_config("enable.auto.offset.store", "true");
    assert!(matches!(app.start(), Err(AppError::ConflictingProperty(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn environment_properties_reach_every_client_of_their_role() {
    // An unknown property shows where it is applied: each client refuses it by name.
    let config = with_properties(properties(&[("ERP_KAFKA_PRODUCER_NOT_A_PROPERTY", "1")]));
    let app = App::from_config(&config, erp_events::catalog!()).unwrap();
    let error = app.publisher("inventory-service").unwrap_err();
    assert!(error.to_string().contains("not.a.property"), "{error}");

    let config = with_properties(properties(&[("ERP_KAFKA_CONSUMER_NOT_A_PROPERTY", "1")]));
    let app = App::from_config(&config, erp_events::catalog!()).unwrap();
    app.publisher("inventory-service")
        .expect("producers do not get consumer properties");
    let error = app.listener(common::count).start().err().unwrap();
    assert!(error.to_string().contains("not.a.property"), "{error}");

    let config = with_properties(properties(&[("ERP_KAFKA_NOT_A_PROPERTY", "1")]));
    let app = App::from_config(&config, erp_events::catalog!()).unwrap();
    assert!(app.publisher("inventory-service").is_err());
}

#[test]
fn the_configuration_never_shows_a_password() {
    let config = Config {
        redis_url: Some("redis://erp:hunter2@redis.internal:6379".into()),
        ..with_properties(properties(&[
            ("ERP_KAFKA_SASL_USERNAME", "erp"),
            ("ERP_KAFKA_SASL_PASSWORD", "hunter2"),
        ]))
    };
    let shown = format!("{config:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("redis.internal"), "{shown}");
}
