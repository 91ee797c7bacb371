//! Starting against a wrong address is an error after a bounded wait, not a service that
//! silently handles nothing.

use std::time::{Duration, Instant};

use erp_events::{App, AppError, Brokers, Config, InProcessTopics};

fn config(brokers: Brokers, redis_url: Option<&str>) -> Config {
    Config {
        brokers,
        redis_url: redis_url.map(str::to_owned),
        in_process: InProcessTopics::None,
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
    assert!(error.to_string().contains("REDIS_URL"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_default_is_ready() {
    let app = App::from_config(&Config::embedded(), erp_events::catalog!()).unwrap();
    app.ready().await.unwrap();
}
