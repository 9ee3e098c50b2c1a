//! Sluice's integration tests, one test binary: each module starts the real
//! `sluice` binary (or, for the README checks, reads the repository) and talks
//! to it over TCP with real Kafka clients. One binary links once, and its
//! tests share the test threads, so a slow one (the fresh-clone build of
//! `first_contact`) runs while the others go on. Run one file's tests with
//! `cargo test --release --test integration <module>::`.

mod common;

mod admin;
mod admin_http;
mod bad_input;
mod client_telemetry;
mod cluster;
mod compaction;
mod confluent_kafka;
mod console_browser;
mod consumer_protocol;
mod durability;
mod first_contact;
mod franz_go;
mod groups;
mod hostile;
mod idempotence;
mod java_client;
mod kafka_python;
mod kcat;
mod offsets_and_polling;
mod operator_tools;
mod produce_consume;
mod produce_semantics;
mod python_security;
mod readme_compatibility;
mod restart;
mod schema_registry;
mod security;
mod topic_lifecycle;
mod transactions;
mod tune_check;
mod vendored_crates;
