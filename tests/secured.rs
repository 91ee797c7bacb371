//! A secured cluster (the CI broker's SASL_SSL listener: TLS with a test CA, then SCRAM-SHA-512;
//! `scripts/kafka env`), reached with environment configuration alone: provisioning, publishing,
//! listening and dead letters work; a wrong password and an untrusted CA are clear errors at
//! start, never a hang, and no secret shows in them. And Redis with a password, and over TLS.

mod support;

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use erp_demo::inventory::{InventoryMovement, MovementAction};
use erp_events::{
    App, AppError, Config, Envelope, HandlerError, ListenerExt, Refusal, State, erp_listener,
};
use erp_events::{IdempotencyStore, RedisStore};
use rdkafka::Message;
use support::services::{RedisServer, required_service};
use support::{Probe, dead_letter_info, read_records_where};

const DLT: &str = "erp.inventory.movements.DLT";

/// How to reach the secured listener, from `scripts/kafka env`.
struct Secured {
    brokers: String,
    ca: String,
    username: String,
    password: String,
    untrusted_ca: String,
}

impl Secured {
    fn from_env(test: &str) -> Option<Self> {
        let brokers = required_service("KAFKA_SASL_SSL_BROKERS", test)?;
        let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"));
        Some(Secured {
            brokers,
            ca: var("KAFKA_SASL_SSL_CA"),
            username: var("KAFKA_SASL_SSL_USERNAME"),
            password: var("KAFKA_SASL_SSL_PASSWORD"),
            untrusted_ca: var("KAFKA_UNTRUSTED_CA"),
        })
    }

    /// The environment of a service on the secured listener: what an operator would set.
    fn environment(&self, password: &str, ca: &str) -> Vec<(String, String)> {
        [
            ("KAFKA_BROKERS", self.brokers.as_str()),
            ("ERP_KAFKA_SECURITY_PROTOCOL", "SASL_SSL"),
            ("ERP_KAFKA_SASL_MECHANISMS", "SCRAM-SHA-512"),
            ("ERP_KAFKA_SASL_USERNAME", self.username.as_str()),
            ("ERP_KAFKA_SASL_PASSWORD", password),
            ("ERP_KAFKA_SSL_CA_LOCATION", ca),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect()
    }
}

/// `vars` with `name` set to `value` instead.
fn replaced(mut vars: Vec<(String, String)>, name: &str, value: &str) -> Vec<(String, String)> {
    vars.retain(|(variable, _)| variable != name);
    vars.push((name.to_owned(), value.to_owned()));
    vars
}

/// Every log line of this test binary (debug level and up), to check that no secret shows.
fn captured_logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Arc::new(Mutex::new(Vec::new()));
        let writer = logs.clone();
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || Captured(writer.clone()))
            .init();
        logs
    })
    .clone()
}

struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Asserts that none of `secrets` is in the logs so far (which are not empty).
fn assert_no_secret_logged(logs: &Mutex<Vec<u8>>, secrets: &[&str]) {
    let logs = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    assert!(!logs.is_empty(), "the test's logs were captured");
    for secret in secrets {
        assert!(!logs.contains(secret), "a secret was logged");
    }
}

/// Movements of this run are probed; a negative quantity is refused for good (to the DLT).
#[derive(Clone)]
struct RunProbe {
    run: String,
    probe: Probe,
}

#[erp_listener(group = "search-sync", retries = 0)]
async fn probed(
    event: Envelope<InventoryMovement>,
    State(probe): State<RunProbe>,
) -> Result<(), HandlerError> {
    if !event.payload.product_id.starts_with(&probe.run) {
        return Ok(());
    }
    probe.probe.call(&event)?;
    if event.payload.quantity < 0 {
        return Err(HandlerError::permanent("a quantity is positive"));
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provisions_publishes_listens_and_dead_letters_through_sasl_ssl_from_the_environment() {
    let Some(secured) = Secured::from_env("provisions_publishes_listens_and_dead_letters") else {
        return;
    };
    let logs = captured_logs();
    let config = Config::from_vars(secured.environment(&secured.password, &secured.ca));
    let catalog = erp_events::catalog!();
    let app = App::from_config(&config, catalog).unwrap();
    app.ready().await.expect("the secured listener answers");
    let kafka = app.kafka().expect("a Kafka application").clone();
    let provisioned = kafka.provision(catalog, 1).await.unwrap();
    assert_eq!(
        provisioned.created.len() + provisioned.existing.len(),
        2 * catalog.topics().len()
    );
    let run = uuid::Uuid::now_v7().simple().to_string();
    let probe = Probe::succeeding();
    let publisher = app.publisher("inventory-service").unwrap();
    let running = app
        .listener(probed.with_state(RunProbe {
            run: run.clone(),
            probe: probe.clone(),
        }))
        .start()
        .unwrap();
    let product = format!("{run}-SKU-1");
    let movement =
        |quantity| InventoryMovement::new(&product, "WH-1", MovementAction::Received, quantity);
    publisher
        .publish_all(&[movement(5), movement(-1)])
        .await
        .unwrap();
    probe.wait_for_calls(2).await;
    let key = product.clone().into_bytes();
    let dead = read_records_where(&kafka, DLT, 1, move |record| {
        record.key() == Some(key.as_slice())
    })
    .await;
    let info = dead_letter_info(&dead[0]);
    assert_eq!(info.message, "a quantity is positive");
    assert_eq!(info.consumer_group, "search-sync");
    let reports = running.shutdown().await;
    assert!(reports[0].counts.handled >= 1, "{reports:?}");
    assert_no_secret_logged(&logs, &[&secured.password]);
}

/// `ready` refuses at once (well within its timeout), with `refusal`, and shows no secret.
async fn refused(config: Config, refusal: Refusal, secrets: &[&str]) {
    let app = App::from_config(&config, erp_events::catalog!())
        .unwrap()
        .ready_timeout(Duration::from_secs(30));
    let started = Instant::now();
    let error = app
        .ready()
        .await
        .expect_err("the broker refuses this client");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "refused at once, not at the timeout: {:?}",
        started.elapsed()
    );
    assert!(
        matches!(&error, AppError::BrokerRefused { refusal: found, .. } if *found == refusal),
        "{error:?}"
    );
    let shown = format!("{error} {error:?} {config:?}");
    for secret in secrets {
        assert!(!shown.contains(secret), "a secret shows: {shown}");
    }
}

/// `ready` fails because no client can be created with `config`: `AppError::Kafka`, naming
/// `named`, without `secret`.
async fn misconfigured(config: Config, named: &str, secret: &str) {
    let app = App::from_config(&config, erp_events::catalog!()).unwrap();
    let error = app
        .ready()
        .await
        .expect_err("no client with this configuration");
    assert!(matches!(error, AppError::Kafka(_)), "{error:?}");
    let shown = error.to_string();
    assert!(shown.contains(named), "{shown}");
    assert!(!shown.contains(secret), "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_a_clear_error_at_start() {
    let Some(secured) = Secured::from_env("a_wrong_password_is_a_clear_error_at_start") else {
        return;
    };
    let logs = captured_logs();
    let wrong = "not-the-password-4711";
    let config = Config::from_vars(secured.environment(wrong, &secured.ca));
    refused(config, Refusal::Authentication, &[wrong, &secured.password]).await;
    assert_no_secret_logged(&logs, &[wrong, &secured.password]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_sasl_mechanism_is_a_clear_error_at_start() {
    let Some(secured) = Secured::from_env("an_unknown_sasl_mechanism") else {
        return;
    };
    let environment = secured.environment(&secured.password, &secured.ca);
    let config = Config::from_vars(replaced(
        environment,
        "ERP_KAFKA_SASL_MECHANISMS",
        "SCRAM-SHA-999",
    ));
    misconfigured(config, "SCRAM-SHA-999", &secured.password).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_certificate_authority_is_a_clear_error_at_start() {
    let Some(secured) = Secured::from_env("an_untrusted_certificate_authority") else {
        return;
    };
    let config = Config::from_vars(secured.environment(&secured.password, &secured.untrusted_ca));
    refused(config, Refusal::Tls, &[&secured.password]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_ca_file_is_a_clear_error_at_start() {
    let Some(secured) = Secured::from_env("an_unreadable_ca_file_is_a_clear_error_at_start") else {
        return;
    };
    let config = Config::from_vars(secured.environment(&secured.password, "/nonexistent/ca.pem"));
    misconfigured(config, "ssl.ca.location", &secured.password).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_with_a_password_and_an_acl_user_is_used_and_a_wrong_password_refused() {
    let (password, user_password) = ("redis-default-secret", "redis-user-secret");
    let Some(redis) = RedisServer::start_with("a_redis_with_a_password", |_| {
        let mut args = vec!["--requirepass".to_owned(), password.to_owned()];
        // An ACL user that may use the framework's keys only.
        args.extend(["--user", "erp-events", "on"].map(str::to_owned));
        args.extend([format!(">{user_password}"), "~erp:*".into(), "+@all".into()]);
        args
    }) else {
        return;
    };
    for credentials in [
        format!(":{password}@"),
        format!("erp-events:{user_password}@"),
    ] {
        let store = RedisStore::new(&redis.url_as(&credentials)).unwrap();
        store.ping().await.expect("the password is accepted");
        let key = format!("erp:idem:secured:{}", uuid::Uuid::now_v7());
        store
            .claim(&[key], "a test", Duration::from_secs(5))
            .await
            .expect("claims work with the password");
    }
    let wrong = "not-the-redis-password";
    let config = Config {
        redis_url: Some(redis.url_as(&format!(":{wrong}@"))),
        ..Config::embedded()
    };
    let app = App::from_config(&config, erp_events::catalog!())
        .unwrap()
        .ready_timeout(Duration::from_secs(5));
    let error = app.ready().await.expect_err("a wrong password is refused");
    assert!(
        matches!(error, AppError::StoreUnreachable { .. }),
        "{error:?}"
    );
    let shown = format!("{error} {error:?} {config:?}");
    assert!(!shown.contains(wrong), "the password shows: {shown}");
    let malformed = format!("redis://:{password}@127.0.0.1:notaport");
    let Err(error) = RedisStore::new(&malformed) else {
        panic!("a malformed URL is an error");
    };
    let shown = format!("{error} {error:?}");
    assert!(!shown.contains(password), "the password shows: {shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_over_tls_is_used_with_its_ca_and_refused_with_another() {
    let tls = std::process::Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/tls"))
        .output()
        .expect("run scripts/tls");
    assert!(tls.status.success(), "scripts/tls failed");
    let tls = String::from_utf8(tls.stdout).unwrap().trim().to_owned();
    let file = |name: &str| format!("{tls}/{name}");
    let Some(redis) = RedisServer::start_with("a_redis_over_tls", |port| {
        let mut args = vec!["--port".to_owned(), "0".to_owned()];
        args.extend(["--tls-port".to_owned(), port.to_string()]);
        args.extend(["--tls-cert-file".to_owned(), file("server.crt")]);
        args.extend(["--tls-key-file".to_owned(), file("server.key")]);
        args.extend(["--tls-ca-cert-file".to_owned(), file("ca.pem")]);
        args.extend(["--tls-auth-clients", "no"].map(str::to_owned));
        args
    }) else {
        return;
    };
    let url = format!("rediss://127.0.0.1:{}", redis.port());
    let config = Config::from_vars([
        ("REDIS_URL".to_owned(), url.clone()),
        ("ERP_REDIS_CA_LOCATION".to_owned(), file("ca.pem")),
    ]);
    let app = App::from_config(&config, erp_events::catalog!()).unwrap();
    app.ready().await.expect("Redis over TLS answers");
    let store = RedisStore::with_ca(&url, &file("ca.pem")).unwrap();
    let key = format!("erp:idem:secured:{}", uuid::Uuid::now_v7());
    let claimed = store
        .claim(&[key], "a test", Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(claimed, [erp_events::idempotency::Claim::Acquired]);
    let untrusted = RedisStore::with_ca(&url, &file("untrusted-ca.pem")).unwrap();
    untrusted
        .ping()
        .await
        .expect_err("a server whose CA is not trusted is refused");
    let unreadable = RedisStore::with_ca(&url, "/nonexistent/ca.pem").err();
    assert!(
        unreadable.is_some_and(|error| error.to_string().contains("/nonexistent/ca.pem")),
        "an unreadable CA file is an error that names it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_with_a_client_certificate_from_the_environment() {
    let Some(brokers) = required_service("KAFKA_MTLS_BROKERS", "mutual_tls") else {
        return;
    };
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"));
    let logs = captured_logs();
    let environment = |certificate: bool| {
        let mut vars = vec![
            ("KAFKA_BROKERS", brokers.clone()),
            ("ERP_KAFKA_SECURITY_PROTOCOL", "SSL".to_owned()),
            ("ERP_KAFKA_SSL_CA_LOCATION", var("KAFKA_SASL_SSL_CA")),
        ];
        if certificate {
            vars.push((
                "ERP_KAFKA_SSL_CERTIFICATE_LOCATION",
                var("KAFKA_MTLS_CERTIFICATE"),
            ));
            vars.push(("ERP_KAFKA_SSL_KEY_LOCATION", var("KAFKA_MTLS_KEY")));
        }
        let vars = vars
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value));
        Config::from_vars(vars)
    };
    let catalog = erp_events::catalog!();
    let app = App::from_config(&environment(true), catalog).unwrap();
    app.ready()
        .await
        .expect("the broker takes the client's certificate");
    let kafka = app.kafka().unwrap().clone();
    kafka.provision(catalog, 1).await.unwrap();
    let publisher = app.publisher("inventory-service").unwrap();
    let product = format!("{}-SKU-1", uuid::Uuid::now_v7().simple());
    let movement = InventoryMovement::new(&product, "WH-1", MovementAction::Received, 1);
    let delivery = publisher.publish(&movement).await.unwrap();
    let key = product.into_bytes();
    let read = read_records_where(&kafka, "erp.inventory.movements", 1, move |record| {
        record.key() == Some(key.as_slice())
    })
    .await;
    assert_eq!(read[0].offset(), delivery.offset);
    refused(environment(false), Refusal::Tls, &[]).await;
    assert_no_secret_logged(&logs, &[]);
}
