//! The README's kcat walkthrough, run as written against the real broker:
//! list metadata, produce keyed records, consume them back.
//! kcat is installed on first use (`common::clients`).

use crate::common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::Broker;

fn kcat(args: &[&str], stdin: Option<&str>) -> String {
    let mut child = Command::new(common::clients::kcat())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run kcat");
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    }
    drop(child.stdin.take());
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "kcat {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn readme_walkthrough_with_kcat() {
    let broker = Broker::start("kcat", 2, &["--num-partitions", "3", "--group-initial-rebalance-delay-ms", "0"]);
    let b = broker.bootstrap();
    let listing = kcat(&["-b", &b, "-L"], None);
    assert!(listing.contains("1 brokers:") && listing.contains("(controller)"), "{listing}");

    let lines: String = (0..30).map(|i| format!("k{}:hello {i}\n", i % 5)).collect();
    kcat(&["-b", &b, "-P", "-t", "greetings", "-K:", "-X", "acks=all"], Some(&lines));
    let listing = kcat(&["-b", &b, "-L", "-t", "greetings"], None);
    assert!(listing.contains("with 3 partitions"), "{listing}");

    let consumed = kcat(&["-b", &b, "-C", "-t", "greetings", "-o", "beginning", "-e", "-f", "%k=%s|%p|%o\n"], None);
    let mut got: Vec<(String, String, i32, i64)> = consumed
        .lines()
        .map(|l| {
            let (kv, rest) = l.split_once('|').unwrap();
            let (k, v) = kv.split_once('=').unwrap();
            let (p, o) = rest.split_once('|').unwrap();
            (k.to_string(), v.to_string(), p.parse().unwrap(), o.parse().unwrap())
        })
        .collect();
    assert_eq!(got.len(), 30);
    // Same key, same partition, in the order produced.
    got.sort_by_key(|(_, _, p, o)| (*p, *o));
    for key in 0..5 {
        let key = format!("k{key}");
        let mine: Vec<_> = got.iter().filter(|g| g.0 == key).collect();
        assert!(mine.windows(2).all(|w| w[0].2 == w[1].2), "{key} spans partitions");
        let indexes: Vec<usize> = mine.iter().map(|g| g.1.trim_start_matches("hello ").parse().unwrap()).collect();
        assert!(indexes.windows(2).all(|w| w[0] < w[1]), "{key} out of order: {indexes:?}");
    }

    // The balanced consumer: reads everything once, commits, and a second run resumes after it.
    let group = ["-b", &b, "-G", "greeters", "-X", "auto.offset.reset=earliest", "-e", "-f", "%s\n", "greetings"];
    let first = kcat(&group, None);
    assert_eq!(first.lines().count(), 30, "{first}");
    kcat(&["-b", &b, "-P", "-t", "greetings", "-K:"], Some("k9:late arrival\n"));
    let second = kcat(&group, None);
    assert_eq!(second.lines().collect::<Vec<_>>(), vec!["late arrival"]);
    broker.stop();
}
