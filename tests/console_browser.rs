//! The web console in a real browser: headless Chromium (Debian's package)
//! driven over the DevTools protocol opens every page against a running
//! broker that real clients filled, checks what a person would see, uses
//! every action, and checks each action's effect with a Kafka client.
//! Screenshots go to `target/console-screenshots/` (some are in `docs/`).

use crate::common;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::http;
use common::kafka::{self, commit, committed, consumer_config, produce, Record};
use common::{create_topic, Broker};
use headless_chrome::protocol::cdp::types::Event;
use headless_chrome::protocol::cdp::Page::{self, CaptureScreenshotFormatOption};
use headless_chrome::{Browser, LaunchOptions, Tab};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use serde_json::Value;

const TIMEOUT: Duration = Duration::from_secs(30);

/// One browser tab on the console, with the page's uncaught errors collected.
struct Console {
    _browser: Browser,
    tab: Arc<Tab>,
    shots: PathBuf,
}

impl Console {
    fn open(admin_url: &str) -> Console {
        let options = LaunchOptions::default_builder()
            .path(Some(common::clients::chromium()))
            .sandbox(false)
            .window_size(Some((1400, 900)))
            .idle_browser_timeout(Duration::from_secs(300))
            .build()
            .expect("launch options");
        let browser = Browser::new(options).expect("start headless Chromium");
        let tab = browser.new_tab().expect("a tab");
        tab.set_default_timeout(TIMEOUT);
        // Collects the page's uncaught errors, on every load of it.
        tab.call_method(Page::AddScriptToEvaluateOnNewDocument {
            source: "window.__errors = []; \
                     window.addEventListener('error', e => __errors.push(String(e.message))); \
                     window.addEventListener('unhandledrejection', e => __errors.push(String(e.reason)));"
                .to_string(),
            world_name: None,
            include_command_line_api: None,
            run_immediately: None,
        })
        .unwrap();
        // A person confirms the delete dialogs.
        tab.add_event_listener(Arc::new({
            let tab = tab.clone();
            move |event: &Event| {
                if let Event::PageJavascriptDialogOpening(_) = event {
                    let _ = tab.get_dialog().accept(None);
                }
            }
        }))
        .unwrap();
        tab.navigate_to(&format!("{admin_url}/#/")).unwrap().wait_until_navigated().unwrap();
        let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).parent().unwrap().join("console-screenshots");
        std::fs::create_dir_all(&shots).unwrap();
        Console { _browser: browser, tab, shots }
    }

    fn eval(&self, js: &str) -> Value {
        // As JSON text: the protocol hands arrays and objects back by reference otherwise.
        let body = if js.contains("return") { js.to_string() } else { format!("return ({js});") };
        let wrapped = format!("JSON.stringify((() => {{ {body} }})() ?? null)");
        let result = self.tab.evaluate(&wrapped, false).unwrap_or_else(|e| panic!("evaluate {js}: {e}"));
        let text = result.value.and_then(|v| v.as_str().map(str::to_string)).unwrap_or_else(|| "null".into());
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// Waits until `condition` (a JS expression) is true.
    fn wait(&self, what: &str, condition: &str) {
        let deadline = Instant::now() + TIMEOUT;
        while Instant::now() < deadline {
            if self.eval(&format!("return !!({condition});")) == Value::Bool(true) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("console: {what} not seen within {TIMEOUT:?}; page text:\n{}", self.text("main"));
    }

    /// Opens `hash` and waits until its first data is on the page.
    fn go(&self, hash: &str) {
        self.eval(&format!("location.hash = {}; return true;", serde_json::to_string(hash).unwrap()));
        self.wait(
            &format!("page {hash}"),
            &format!(
                "location.hash === {} && document.querySelector('main').dataset.loaded === 'true'",
                serde_json::to_string(hash).unwrap()
            ),
        );
        self.no_errors();
    }

    fn text(&self, selector: &str) -> String {
        let js =
            format!("return document.querySelector({})?.innerText ?? '';", serde_json::to_string(selector).unwrap());
        self.eval(&js).as_str().unwrap_or_default().to_string()
    }

    fn count(&self, selector: &str) -> usize {
        self.eval(&format!("return document.querySelectorAll({}).length;", serde_json::to_string(selector).unwrap()))
            .as_u64()
            .unwrap() as usize
    }

    /// Types `value` into a field as a person would (input and change events).
    fn set(&self, selector: &str, value: &str) {
        let js = format!(
            "const e = document.querySelector({}); e.value = {}; \
             e.dispatchEvent(new Event('input', {{bubbles: true}})); e.dispatchEvent(new Event('change', {{bubbles: true}})); return true;",
            serde_json::to_string(selector).unwrap(),
            serde_json::to_string(value).unwrap()
        );
        self.eval(&js);
    }

    fn click(&self, selector: &str) {
        self.wait(
            &format!("{selector} enabled"),
            &format!(
                "document.querySelector({0}) && !document.querySelector({0}).disabled",
                serde_json::to_string(selector).unwrap()
            ),
        );
        // Clicked from a timer, so that a dialog it opens does not hold up this call.
        let js = format!(
            "const e = document.querySelector({}); setTimeout(() => e.click(), 0); return true;",
            serde_json::to_string(selector).unwrap()
        );
        self.eval(&js);
    }

    /// Waits for the page's notice of a successful action.
    fn notice(&self) -> String {
        self.wait(
            "a notice or an error",
            "document.querySelector('[data-test=notice]') || document.querySelector('[data-test=error]')",
        );
        let error = self.text("[data-test=error]");
        assert!(error.is_empty(), "the action failed: {error}");
        self.text("[data-test=notice]")
    }

    fn no_errors(&self) {
        let errors = self.eval("return window.__errors;");
        assert_eq!(errors, Value::Array(vec![]), "uncaught errors in the console page");
    }

    fn screenshot(&self, name: &str) {
        let png = self.tab.capture_screenshot(CaptureScreenshotFormatOption::Png, None, None, true).unwrap();
        std::fs::write(self.shots.join(format!("{name}.png")), png).unwrap();
    }

    fn dismiss_messages(&self) {
        self.eval("document.querySelectorAll('[data-test=notice],[data-test=error]').forEach(e => e.closest('.msg, div')?.remove()); return true;");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_console_page_and_action_in_chromium() {
    let broker = Broker::start("console-browser", 2, &["--group-initial-rebalance-delay-ms", "0"]);
    let b = broker.bootstrap();

    // What real clients put in: JSON records with keys and a header, a
    // committed and an aborted transaction, a group part way through.
    create_topic(&b, "orders", 3, &[]).await;
    let producer = kafka::producer(&b, &[("acks", "all")]);
    // An hour ago, a second apart: partition 0 holds orders 0, 3, 6, ...
    let base_ms = sluice::clock::now_ms() - 3_600_000;
    let records = (0..60).map(|i| {
        Record::new(format!("{{\"order\":{i},\"item\":\"widget\"}}"))
            .key(format!("customer-{}", i % 7))
            .partition(i % 3)
            .timestamp(base_ms + i as i64 * 1000)
    });
    produce(&producer, "orders", records).await;
    let traced = OwnedHeaders::new().insert(Header { key: "trace-id", value: Some("abc-123") });
    produce(&producer, "orders", [Record::new("plain text value").key("customer-x").partition(0).headers(traced)])
        .await;
    let txn: ThreadedProducer<DefaultProducerContext> =
        kafka::client_config(&b, &[("transactional.id", "checkout")]).create().unwrap();
    txn.init_transactions(TIMEOUT).unwrap();
    txn.begin_transaction().unwrap();
    txn.send(BaseRecord::to("orders").payload("paid").key("t").partition(0)).unwrap();
    txn.commit_transaction(TIMEOUT).unwrap();
    txn.begin_transaction().unwrap();
    txn.send(BaseRecord::to("orders").payload("refunded").key("t").partition(0)).unwrap();
    txn.flush(TIMEOUT).unwrap();
    txn.abort_transaction(TIMEOUT).unwrap();
    commit(&b, "billing", "orders", &[(0, 5), (1, 10), (2, 20)]);
    // Partition 0: 20 records, the traced one, and two transactional records
    // with a marker each (25 offsets); partitions 1 and 2: 20 each, and
    // partition 2 has none left to read.
    let lag = (25 - 5) + (20 - 10);

    let console = Console::open(&broker.admin_url());

    // Overview: version, counts, live throughput while records flow.
    console.wait("the overview", "document.querySelector('main').dataset.loaded === 'true'");
    assert_eq!(console.text("[data-test=version]"), env!("CARGO_PKG_VERSION"));
    assert!(!console.text("[data-test=cluster-id]").is_empty());
    assert_eq!(console.text("[data-test=stat-topics]").trim(), "1");
    assert_eq!(console.count("[data-test=shards] tbody tr"), 2);
    let flowing = tokio::spawn({
        let b = b.clone();
        async move {
            let producer = kafka::producer(&b, &[("acks", "all")]);
            for round in 0..10 {
                let records = (0..50).map(move |i| Record::new(format!("live-{round}-{i}")));
                produce(&producer, "live", records).await;
                tokio::time::sleep(Duration::from_millis(400)).await;
            }
        }
    });
    console.wait(
        "messages per second above zero",
        "parseFloat(document.querySelector('[data-test=stat-messages-rate]').innerText.replace(/,/g, '')) > 0",
    );
    flowing.await.unwrap();
    console.screenshot("console-overview");
    console.no_errors();

    // Topics: listed; one created through the form, checked with a Kafka client; a duplicate refused.
    console.go("#/topics");
    assert_eq!(console.count("[data-test=topic-row][data-topic=orders]"), 1);
    console.set("[data-test=create-name]", "made-in-browser");
    console.set("[data-test=create-partitions]", "2");
    console.set("[data-test=create-configs]", "retention.ms=86400000");
    console.click("[data-test=create-submit]");
    console.notice();
    console.wait("the new topic listed", "document.querySelector('[data-test=topic-row][data-topic=made-in-browser]')");
    let client: BaseConsumer = kafka::client_config(&b, &[]).create().unwrap();
    let metadata = client.fetch_metadata(Some("made-in-browser"), Duration::from_secs(10)).unwrap();
    assert_eq!(metadata.topics()[0].partitions().len(), 2);
    console.dismiss_messages();
    console.set("[data-test=create-name]", "made-in-browser");
    console.set("[data-test=create-partitions]", "2");
    console.click("[data-test=create-submit]");
    console.wait("the refusal", "document.querySelector('[data-test=error]')");
    assert!(
        console.text("[data-test=error]").contains("TOPIC_ALREADY_EXISTS"),
        "{}",
        console.text("[data-test=error]")
    );

    // Topic detail: partitions with offsets, configs; alter one; delete records.
    console.go("#/topics/orders");
    assert_eq!(console.count("[data-test=partition-row]"), 3);
    assert!(console.text("[data-test=partition-row][data-partition='0']").contains("25"));
    console.set("[data-test=alter-name]", "retention.ms");
    console.set("[data-test=alter-value]", "7200000");
    console.click("[data-test=alter-submit]");
    console.notice();
    console.wait(
        "the altered config",
        "document.querySelector('[data-test=config-row][data-config=\"retention.ms\"] [data-test=config-value]')?.innerText.includes('7200000')",
    );
    let detail = http::get(&broker.admin_url(), "/api/topics/orders").json();
    let retention = detail["configs"].as_array().unwrap().iter().find(|c| c["name"] == "retention.ms").unwrap().clone();
    assert_eq!(retention["source"], "DYNAMIC_TOPIC_CONFIG");
    console.screenshot("console-topic");
    console.dismiss_messages();
    console.set("[data-test=delete-records-partition]", "2");
    console.set("[data-test=delete-records-offset]", "4");
    console.click("[data-test=delete-records-submit]");
    console.notice();
    assert_eq!(kafka::watermarks(&b, "orders", 2).0, 4, "a Kafka client sees the new log start");

    // Messages: keys, pretty JSON, headers, transaction markers, hex.
    console.go("#/messages?topic=orders&partition=0&offset=0");
    console.wait("records", "document.querySelectorAll('[data-test=record-row]').length > 0");
    let first = console.text("[data-test=record-row][data-offset='0']");
    assert!(first.contains("customer-0"), "{first}");
    assert!(
        console.text("[data-test=record-row][data-offset='0'] [data-test=record-value]").contains("\"order\": 0"),
        "JSON is pretty-printed"
    );
    assert!(console.text("[data-test=record-row][data-offset='20'] [data-test=record-headers]").contains("abc-123"));
    let markers: Vec<String> = serde_json::from_value(
        console.eval("return [...document.querySelectorAll('[data-test=marker-row]')].map(e => e.innerText);"),
    )
    .unwrap();
    assert_eq!(markers.len(), 2, "{markers:?}");
    assert!(markers[0].contains("COMMIT") && markers[1].contains("ABORT"), "{markers:?}");
    console.screenshot("console-messages");
    console.click("[data-test=msg-hex]");
    console.wait("hex values", "document.querySelector(\"[data-test=record-row][data-offset='21'] [data-test=record-value]\")?.innerText.includes('70616964')");
    console.click("[data-test=msg-hex]");
    // From a time: the first record at or after it (order 6, offset 2).
    console.go(&format!("#/messages?topic=orders&partition=0&timestamp={}", base_ms + 5_000));
    console.wait("records from a time", "document.querySelector('[data-test=record-row]')");
    assert_eq!(console.eval("return document.querySelector('[data-test=record-row]').dataset.offset;"), "2");

    // A live member with its assignment.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let member = std::thread::spawn({
        let (b, stop) = (b.clone(), stop.clone());
        move || {
            let consumer: BaseConsumer = consumer_config(&b, "live-readers").create().unwrap();
            consumer.subscribe(&["orders"]).unwrap();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                consumer.poll(Duration::from_millis(100));
            }
        }
    });
    common::wait_until("the member joins", TIMEOUT, || {
        http::get(&broker.admin_url(), "/api/groups/live-readers").json()["state"] == "Stable"
    });
    console.go("#/groups/live-readers");
    assert_eq!(console.text("[data-test=group-state]").trim(), "Stable");
    let row = console.text("[data-test=member-row]");
    assert!(row.contains("orders") && row.contains("rdkafka"), "member row: {row}");
    assert_eq!(console.eval("return document.querySelector('[data-test=delete-group]').disabled;"), true);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    member.join().unwrap();

    // Groups: lag as kafka-consumer-groups.sh shows it; reset; delete.
    console.go("#/groups");
    console.wait("the group", "document.querySelector('[data-test=group-row][data-group=billing]')");
    assert_eq!(
        console.text("[data-test=group-row][data-group=billing] [data-test=group-lag]").replace(',', "").trim(),
        lag.to_string()
    );
    console.go("#/groups/billing");
    assert_eq!(console.text("[data-test=total-lag]").replace(',', "").trim(), lag.to_string());
    assert_eq!(console.text("[data-test=offset-row][data-partition='1'] [data-test=offset-lag]").trim(), "10");
    assert_eq!(console.text("[data-test=offset-row][data-partition='0'] [data-test=offset-committed]").trim(), "5");
    console.screenshot("console-group");
    console.set("[data-test=reset-topic]", "orders");
    console.set("[data-test=reset-mode]", "earliest");
    console.click("[data-test=reset-submit]");
    console.notice();
    assert_eq!(committed(&b, "billing", "orders", 3), [0, 0, 4], "reset to each partition's log start");
    console.go("#/groups/billing");
    console.click("[data-test=delete-group]");
    console.wait("the group deleted", "location.hash === '#/groups' || document.querySelector('[data-test=notice]')");
    assert_eq!(http::get(&broker.admin_url(), "/api/groups/billing").status, 404);

    // Transactions and producers.
    console.go("#/transactions");
    console.wait("the transaction", "document.querySelector('[data-test=txn-row][data-txn=checkout]')");
    assert!(console.text("[data-test=txn-row][data-txn=checkout]").contains("CompleteAbort"));
    assert!(console.count("[data-test=producer-row]") >= 1);
    console.screenshot("console-transactions");

    // Deleting a topic from its page.
    console.go("#/topics/made-in-browser");
    console.click("[data-test=delete-topic]");
    console.wait(
        "back on the topic list",
        "location.hash === '#/topics' && document.querySelector('main').dataset.loaded === 'true'",
    );
    let metadata = client.fetch_metadata(None, Duration::from_secs(10)).unwrap();
    assert!(metadata.topics().iter().all(|t| t.name() != "made-in-browser"), "the topic is gone for Kafka clients");
    console.no_errors();
    broker.stop();
}
