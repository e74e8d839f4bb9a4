//! The client x operation matrix of the compatibility suite: rendered from the clients'
//! JSON lines, written to target/compat-matrix.md and compared with (or, with
//! `WEIR_UPDATE_COMPAT_MATRIX=1`, written into) the block between the markers in
//! docs/protocol.md.

use std::path::PathBuf;

/// One client's result for one operation, as the client scripts print it.
#[derive(Debug, Clone)]
pub struct Line {
    pub client: String,
    pub op: String,
    pub result: String,
    pub detail: String,
}

impl Line {
    pub fn new(client: &str, op: &str, result: &str, detail: &str) -> Self {
        Self {
            client: client.into(),
            op: op.into(),
            result: result.into(),
            detail: detail.into(),
        }
    }

    /// `{"client", "op", "result", "detail"}`.
    pub fn parse(json: &str) -> Result<Self, String> {
        let v: serde_json::Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
        let field = |k: &str| match &v[k] {
            serde_json::Value::String(s) => Ok(s.clone()),
            serde_json::Value::Null if k == "detail" => Ok(String::new()),
            other => Err(format!("{k}: {other}")),
        };
        Ok(Self::new(
            &field("client")?,
            &field("op")?,
            &field("result")?,
            &field("detail")?,
        ))
    }
}

/// The matrix's columns, in order.
pub const CLIENTS: &[&str] = &[
    "confluent-kafka",
    "kafka-python",
    "kafkajs",
    "librdkafka 2.0.2 (frames)",
    "sarama 1.22 (default)",
    "sarama 1.22 (V2_1_0_0)",
    "kafka-go 0.2",
];

/// Columns run only when their tools are installed.
const OPTIONAL_CLIENTS: &[&str] = super::go::CLIENTS;

/// The matrix's rows, in order: every operation each client must report.
pub const OPS: &[&str] = &[
    "CreateTopics",
    "Produce",
    "Fetch",
    "OffsetCommit (group member)",
    "ListGroups",
    "DescribeGroups",
    "CreatePartitions",
    "DeleteRecords + ListOffsets earliest",
    "DeleteGroups",
    "AlterConfigs",
    "IncrementalAlterConfigs",
    "DescribeConfigs topic",
    "DescribeConfigs broker",
    "DescribeCluster",
    "DescribeLogDirs",
    "ElectLeaders",
    "ListOffsets by timestamp",
    "OffsetForLeaderEpoch",
    "DescribeTopicPartitions",
    "Configs survive a restart",
];

pub const BEGIN: &str = "<!-- compat-matrix:begin -->";
pub const END: &str = "<!-- compat-matrix:end -->";

/// An "n/a" line for each op `client` does not run, saying `why`.
pub fn fill_not_run(lines: &mut Vec<Line>, client: &str, why: &str) {
    for op in OPS {
        if !lines.iter().any(|l| l.client == client && l.op == *op) {
            lines.push(Line::new(client, op, "n/a", why));
        }
    }
}

/// A line for every (client, op) no client reported: a failure. The optional
/// columns only when they ran.
pub fn fill_missing(lines: &mut Vec<Line>, optional_ran: bool) {
    for client in CLIENTS
        .iter()
        .filter(|c| optional_ran || !OPTIONAL_CLIENTS.contains(c))
    {
        for op in OPS {
            if !lines.iter().any(|l| l.client == *client && l.op == *op) {
                lines.push(Line::new(client, op, "fail", "no result reported"));
            }
        }
    }
}

fn cell(lines: &[Line], client: &str, op: &str) -> String {
    let found: Vec<&Line> = lines
        .iter()
        .filter(|l| l.client == client && l.op == op)
        .collect();
    match found.as_slice() {
        [l] if l.result == "ok" => "ok".into(),
        [l] if l.result == "n/a" => l.detail.clone(),
        // A request version Weir does not decode, refused as documented.
        [l] if l.result == "unsupported" => format!("UNSUPPORTED_VERSION: {}", l.detail),
        [_] => "**FAIL**".into(),
        _ => format!("**FAIL** ({} results)", found.len()),
    }
}

/// The markdown table: one row per operation, one column per client.
pub fn render(lines: &[Line]) -> String {
    let ran: Vec<&str> = CLIENTS
        .iter()
        .copied()
        .filter(|c| lines.iter().any(|l| l.client == *c))
        .collect();
    let mut out = format!("| operation | {} |\n", ran.join(" | "));
    out.push_str(&format!("| --- |{}\n", " --- |".repeat(ran.len())));
    for op in OPS {
        let cells: Vec<String> = ran.iter().map(|c| cell(lines, c, op)).collect();
        out.push_str(&format!("| {op} | {} |\n", cells.join(" | ")));
    }
    for l in lines.iter().filter(|l| !OPS.contains(&l.op.as_str())) {
        out.push_str(&format!(
            "| {} (unexpected, from {}) | **FAIL** |\n",
            l.op, l.client
        ));
    }
    out
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn write_target(table: &str) {
    let dir = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| repo_root().join("target"), PathBuf::from);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("compat-matrix.md"), table).unwrap();
}

/// Compares `table` with docs/protocol.md's block, or rewrites the block when
/// `WEIR_UPDATE_COMPAT_MATRIX=1`.
pub fn compare_with_docs(table: &str) {
    let path = repo_root().join("docs/protocol.md");
    let doc = std::fs::read_to_string(&path).unwrap();
    let (start, end) = match (doc.find(BEGIN), doc.find(END)) {
        (Some(s), Some(e)) if s < e => (s + BEGIN.len(), e),
        _ => panic!("docs/protocol.md lacks the {BEGIN} ... {END} markers"),
    };
    let documented = doc[start..end].trim();
    if documented == table.trim() {
        return;
    }
    if std::env::var("WEIR_UPDATE_COMPAT_MATRIX").is_ok_and(|v| v == "1") {
        let updated = format!("{}\n{}\n{}", &doc[..start], table.trim(), &doc[end..]);
        std::fs::write(&path, updated).unwrap();
        return;
    }
    panic!(
        "docs/protocol.md's compatibility matrix differs from this run's (target/compat-matrix.md).\n\
         Regenerate it with `make compat-matrix` \
         (WEIR_UPDATE_COMPAT_MATRIX=1 cargo test -p weir-broker --test compat).\n\
         documented:\n{documented}\n\nthis run:\n{table}"
    );
}
