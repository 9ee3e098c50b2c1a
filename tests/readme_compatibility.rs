//! The README's compatibility table stays honest: every ✓ names a test that
//! exists. A cell is `—` (untested), `n/a: <why>` (the client cannot do it),
//! or one or more `[✓](tests/<file> "<test>")` links, optionally followed by
//! a few words. A link's `<test>` is a test function of that Rust file
//! (`fn <test>` under a `#[test]`-like attribute) or one of the names in the
//! file's `CHECKS` list, each of which the test requires its client program
//! to pass. No broker is needed.

use std::path::Path;

/// The table's columns, in order.
const COLUMNS: &[&str] =
    &["Feature", "librdkafka", "confluent-kafka", "Java client", "franz-go", "kafka-python", "Kafka tools"];

/// A row of the table: the feature and its cells, one per client.
#[derive(Debug)]
struct Row {
    feature: String,
    cells: Vec<String>,
}

/// The table under `## Compatibility` in `readme`, checked for shape: the
/// expected header, a separator, and rows with a cell for every column.
fn parse_table(readme: &str) -> Result<Vec<Row>, String> {
    let section = readme.split("\n## Compatibility\n").nth(1).ok_or("no `## Compatibility` section")?;
    let section = section.split("\n## ").next().unwrap_or_default();
    let lines: Vec<&str> =
        section.lines().skip_while(|l| !l.starts_with('|')).take_while(|l| l.starts_with('|')).collect();
    if lines.len() < 3 {
        return Err("no table with a header, a separator and rows under `## Compatibility`".into());
    }
    let header = split_row(lines[0])?;
    if header != COLUMNS {
        return Err(format!("the header is {header:?}, expected {COLUMNS:?}"));
    }
    let separator = split_row(lines[1])?;
    if separator.len() != COLUMNS.len()
        || !separator.iter().all(|c| c.trim_matches(':').chars().all(|ch| ch == '-') && c.len() >= 3)
    {
        return Err(format!("the second line is not a separator of {} columns: {}", COLUMNS.len(), lines[1]));
    }
    let mut rows = Vec::new();
    for line in &lines[2..] {
        let cells = split_row(line)?;
        if cells.len() != COLUMNS.len() {
            return Err(format!("{} cells, expected {}: {line}", cells.len(), COLUMNS.len()));
        }
        let feature = cells[0].clone();
        if feature.is_empty() {
            return Err(format!("a row without a feature: {line}"));
        }
        if rows.iter().any(|r: &Row| r.feature == feature) {
            return Err(format!("the feature {feature:?} has two rows"));
        }
        rows.push(Row { feature, cells: cells[1..].to_vec() });
    }
    Ok(rows)
}

/// The cells of a `| a | b |` line, trimmed.
fn split_row(line: &str) -> Result<Vec<String>, String> {
    let inner = line
        .trim()
        .strip_prefix('|')
        .and_then(|l| l.strip_suffix('|'))
        .ok_or_else(|| format!("not a table row: {line}"))?;
    Ok(inner.split('|').map(|c| c.trim().to_string()).collect())
}

/// What a cell says.
#[derive(Debug, PartialEq)]
enum Cell {
    Untested,
    NotApplicable,
    /// (file under the repository, test or check name) of each ✓.
    Tested(Vec<(String, String)>),
}

fn parse_cell(cell: &str) -> Result<Cell, String> {
    if cell == "—" {
        return Ok(Cell::Untested);
    }
    if let Some(why) = cell.strip_prefix("n/a:") {
        return if why.trim().is_empty() { Err("`n/a:` without a reason".into()) } else { Ok(Cell::NotApplicable) };
    }
    let mut links = Vec::new();
    let mut rest = cell;
    while let Some(after) = rest.strip_prefix("[✓](") {
        let end = after.find(')').ok_or_else(|| format!("an unclosed link in {cell:?}"))?;
        let (path, name) = after[..end]
            .split_once(" \"")
            .and_then(|(path, title)| Some((path, title.strip_suffix('"')?)))
            .ok_or_else(|| format!("a ✓ link without a \"test\" title in {cell:?}"))?;
        if !path.starts_with("tests/") || path.contains("..") || name.is_empty() || name.contains('"') {
            return Err(format!("a ✓ link must be [✓](tests/<file> \"<test>\"): {cell:?}"));
        }
        links.push((path.to_string(), name.to_string()));
        rest = after[end + 1..].trim_start();
    }
    if links.is_empty() {
        return Err(format!("a cell must be `—`, `n/a: <why>` or start with [✓](tests/<file> \"<test>\"): {cell:?}"));
    }
    if rest.contains('[') || rest.contains('✓') {
        return Err(format!("text between ✓ links, or a malformed link, in {cell:?}"));
    }
    Ok(Cell::Tested(links))
}

/// Whether `source` has a test function `name` (`fn name(` with an attribute
/// naming a test among the attributes and doc comments right above it).
fn has_test_fn(source: &str, name: &str) -> bool {
    let lines: Vec<&str> = source.lines().collect();
    lines.iter().enumerate().any(|(i, line)| {
        let line = line.trim_start();
        let is_fn = [format!("fn {name}("), format!("async fn {name}(")].iter().any(|f| line.starts_with(f.as_str()));
        is_fn
            && lines[..i]
                .iter()
                .rev()
                .map(|l| l.trim_start())
                .take_while(|l| l.starts_with("#[") || l.starts_with("///"))
                .any(|l| l.starts_with("#[") && l.contains("test"))
    })
}

/// The names in the `const CHECKS: &[&str] = &[...];` list of `source`.
fn checks_list(source: &str) -> Vec<String> {
    let Some(start) = source.find("const CHECKS: &[&str] = &[") else { return Vec::new() };
    let list = &source[start + "const CHECKS: &[&str] = &[".len()..];
    let list = &list[..list.find("];").unwrap_or(0)];
    list.split('"').skip(1).step_by(2).map(str::to_string).collect()
}

/// Every problem with the table in `readme`, with test files under `root`.
fn problems(readme: &str, root: &Path) -> Vec<String> {
    let rows = match parse_table(readme) {
        Ok(rows) => rows,
        Err(e) => return vec![e],
    };
    let mut found = Vec::new();
    for row in &rows {
        for (client, cell) in COLUMNS[1..].iter().zip(&row.cells) {
            let links = match parse_cell(cell) {
                Ok(Cell::Tested(links)) => links,
                Ok(_) => continue,
                Err(e) => {
                    found.push(format!("{} / {client}: {e}", row.feature));
                    continue;
                }
            };
            for (path, name) in links {
                let Ok(source) = std::fs::read_to_string(root.join(&path)) else {
                    found.push(format!("{} / {client}: {path} does not exist", row.feature));
                    continue;
                };
                if !has_test_fn(&source, &name) && !checks_list(&source).contains(&name) {
                    found.push(format!(
                        "{} / {client}: {path} has no test `fn {name}` and no check {name:?} in its CHECKS",
                        row.feature
                    ));
                }
            }
        }
    }
    found
}

#[test]
fn every_tick_in_the_readme_compatibility_table_names_a_test() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let rows = parse_table(&readme).unwrap();
    assert!(rows.len() >= 20, "only {} rows", rows.len());
    let problems = problems(&readme, root);
    assert!(problems.is_empty(), "the README's compatibility table:\n{}", problems.join("\n"));
}

#[test]
fn bad_tables_and_cells_are_refused() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let header = "| Feature | librdkafka | confluent-kafka | Java client | franz-go | kafka-python | Kafka tools |\n\
                  |---|---|---|---|---|---|---|\n";
    let table =
        |rows: &str| format!("# Sluice\n\n## Compatibility\n\nSome words.\n\n{header}{rows}\nLegend.\n\n## Next\n");
    let good = "| Groups | [✓](tests/groups.rs \"cooperative_sticky_rebalances_incrementally\") | \
                [✓](tests/confluent_kafka.rs \"consumer-protocol\") | — | [✓](tests/franz_go.rs \"roundtrip/lz4\") [✓](tests/franz_go.rs \"roundtrip/zstd\") two | \
                n/a: no such thing | [✓](tests/java_client.rs \"java_client_groups\") words |\n";
    assert_eq!(problems(&table(good), root), Vec::<String>::new());

    let expect = |markdown: &str, part: &str| {
        let found = problems(markdown, root);
        assert!(found.len() == 1 && found[0].contains(part), "expected one problem with {part:?}, got {found:?}");
    };
    expect("# Sluice\n", "no `## Compatibility` section");
    expect(&table(""), "no table");
    expect(&table(&good.replace("| — |", "|")), "6 cells, expected 7");
    expect(&format!("\n## Compatibility\n\n{}{good}", header.replace("Java client", "Java")), "the header is");
    expect(&table(&good.replace("| — |", "| ✓ |")), "a cell must be");
    expect(&table(&good.replace("| — |", "| |")), "a cell must be");
    expect(&table(&good.replace("n/a: no such thing", "n/a: ")), "without a reason");
    expect(
        &table(&good.replace("incrementally", "eventually")),
        "no test `fn cooperative_sticky_rebalances_eventually`",
    );
    expect(&table(&good.replace("consumer-protocol", "consumer-protocols")), "no check \"consumer-protocols\"");
    expect(&table(&good.replace("tests/groups.rs", "tests/group.rs")), "tests/group.rs does not exist");
    expect(&table(&good.replace("tests/groups.rs", "src/main.rs")), "a ✓ link must be");
    expect(&table(&good.replace(" \"java_client_groups\"", "")), "without a \"test\" title");
    expect(&table(&good.replace(") two |", ") two [✓] |")), "text between ✓ links");
    expect(&table(&format!("{good}{good}")), "has two rows");
    // A helper function is not a test.
    expect(&table(&good.replace("java_client_groups", "run_java")), "no test `fn run_java`");
}
