use super::*;
use crate::sink::OutputFormat;
use crate::source::LineFormat;
use crate::source::SchemaName;

const FULL: &str = r#"name = "quickstart"
plugin_dir = "plugins"

[source]
type = "generate"
schema = "card-transactions"
rate = 2000
count = 100000
seed = 42
partitions = 4

[batch]
max_events = 512

[[stages]]
name = "redact"
plugin = "pii-redact"
[stages.params]
fields = ["card_number"]
when = 1979-05-27T07:32:00Z

[[stages]]
name = "score"
plugin = "models/fraud.wasm"
[stages.limits]
max_memory_mib = 64

[outputs.default]
type = "stdout"

[outputs.alerts]
type = "file"
path = "out/alerts.jsonl"
append = true
format = "value"

[dead_letter]
type = "file"
path = "out/dlq.jsonl"
"#;

/// Loads `src` and returns the error's (field, line, message).
fn error_of(src: &str) -> (String, Option<usize>, String) {
    let err = PipelineConfig::from_str(src, "/p").expect_err("should be rejected");
    (err.field().to_owned(), err.line(), err.to_string())
}

/// `src` must fail on `field` at `line`, the message containing `needle`.
#[track_caller]
fn assert_error(src: &str, field: &str, line: usize, needle: &str) {
    let (f, l, msg) = error_of(src);
    assert_eq!(f, field, "field; message: {msg}");
    assert_eq!(l, Some(line), "line; message: {msg}");
    assert!(msg.starts_with(&format!("line {line}: {field}: ")), "{msg}");
    assert!(msg.contains(needle), "{msg:?} should contain {needle:?}");
}

const MINIMAL: &str = "[source]\ntype = \"stdin\"\n[outputs.default]\ntype = \"stdout\"\n";

#[test]
fn full_example_loads() {
    let c = PipelineConfig::from_str(FULL, "/p").expect("valid");
    assert_eq!(c.name, "quickstart");
    assert_eq!(c.cache_dir, PathBuf::from(".weir-cache"));
    let SourceConfig::Generate(g) = &c.source else {
        panic!("generate expected")
    };
    assert_eq!(g.schema, SchemaName::CardTransactions);
    assert_eq!(
        (g.rate, g.count, g.seed, g.partitions),
        (Some(2000.0), Some(100_000), 42, 4)
    );
    assert_eq!(c.batch.max_events, 512);
    assert_eq!(c.batch.max_wait_ms, 50);
    assert_eq!(c.stages.len(), 2);
    assert_eq!(
        c.stages[0].params_json().expect("json"),
        serde_json::json!({"fields": ["card_number"], "when": "1979-05-27T07:32:00Z"})
    );
    assert_eq!(
        c.stages[1].params_json().expect("json"),
        serde_json::json!({})
    );
    assert_eq!(c.stages[1].limits.max_memory_mib, 64);
    assert_eq!(
        c.stages[0].plugin_file(),
        PathBuf::from("/p/plugins/pii-redact.wasm")
    );
    assert_eq!(
        c.stages[1].plugin_file(),
        PathBuf::from("/p/models/fraud.wasm")
    );
    assert_eq!(c.cache_dir_path(), PathBuf::from("/p/.weir-cache"));
    let Some(SinkConfig::File(alerts)) = c.outputs.get("alerts") else {
        panic!("file output expected")
    };
    assert!(alerts.append && !alerts.fsync);
    assert_eq!(alerts.format, OutputFormat::Value);
    assert!(matches!(c.dead_letter, Some(SinkConfig::File(_))));
}

#[test]
fn minimal_pipeline_gets_defaults() {
    let c = PipelineConfig::from_str(MINIMAL, "/p").expect("valid");
    assert_eq!(c.name, "pipeline");
    assert_eq!(c.plugin_dir, PathBuf::from("plugins"));
    assert_eq!(c.batch, BatchConfig::default());
    assert!(c.stages.is_empty() && c.dead_letter.is_none());
    assert_eq!(
        c.source,
        SourceConfig::Stdin(crate::source::StdinSourceConfig {
            format: LineFormat::Json,
            event_time: None,
        })
    );
    assert_eq!(c.state_dir_path(), Path::new("/p/.weir-state/pipeline"));
    assert_eq!(c.state, crate::state::StateConfig::default());
    assert!(!c.is_keyed());
}

/// A refused file, written with two abbreviations: `<min>` for [`MINIMAL`],
/// `<stage>` for a stage `a` of plugin `p`.
type Refused = (&'static str, &'static str, usize, &'static str);

/// Pipeline files that must be refused: (file, field, line, a piece of the
/// message). The message must read `line N: field: ...`.
#[rustfmt::skip]
const REFUSED: &[Refused] = &[
    // Unknown fields, in plain, `type`-tagged and inline tables.
    ("name = 'x'\nbogus = 1\n<min>", "bogus", 2, "unknown field `bogus`"),
    ("name = 'x'\n[source]\ntype = 'file'\npath = 'in.jsonl'\nbogus = true\n[outputs.default]\ntype = 'stdout'\n", "source.bogus", 5, "unknown field `bogus`"),
    ("<min>[outputs.alerts]\ntype = 'file'\npath = 'a'\nappend = false\ncolor = 'red'\n", "outputs.alerts.color", 9, "unknown field `color`"),
    ("<min>[dead_letter]\ntype = 'stderr'\nformat = 'json'\nextra = 1\n", "dead_letter.extra", 8, "unknown field `extra`"),
    ("[source]\ntype = 'stdin'\n[outputs]\ndefault = { type = 'stdout', nope = 1 }\n", "outputs.default.nope", 4, "unknown field `nope`"),
    ("<min><stage>[[stages]]\nname = 'b'\nplugin = 'p'\npluginn = 'q'\n", "stages[1].pluginn", 11, "unknown field `pluginn`"),
    ("<min><stage>[stages.limits]\nmax_mem = 1\n", "stages[0].limits.max_mem", 9, "unknown field `max_mem`"),
    // Wrong types.
    ("[source]\ntype = 'generate'\nseed = 1\nrate = 'fast'\n[outputs.default]\ntype = 'stdout'\n", "source.rate", 4, "invalid type: string \"fast\""),
    ("<min>[batch]\nmax_events = 'many'\n", "batch.max_events", 6, "invalid type"),
    ("<min>[[stages]]\nname = 5\nplugin = 'p'\n", "stages[0].name", 6, "invalid type: integer `5`"),
    ("<min>[outputs.x]\ntype = 'file'\npath = 'a'\nappend = 'yes'\n", "outputs.x.append", 8, "invalid type"),
    // Unknown or missing `type`, missing fields.
    ("[source]\ntype = 'pigeon'\n[outputs.default]\ntype = 'stdout'\n", "source.type", 2, "unknown variant `pigeon`"),
    ("[source]\npath = 'a'\n[outputs.default]\ntype = 'stdout'\n", "source", 1, "missing field `type`"),
    ("[source]\ntype = 'file'\n[outputs.default]\ntype = 'stdout'\n", "source", 1, "missing field `path`"),
    ("[source]\ntype = 'stdin'\n\n[outputs.alerts]\ntype = 'stdout'\n", "outputs.default", 4, "needs a default output"),
    // Semantic checks.
    ("<min>[[stages]]\nname = 'redact'\nplugin = 'a'\n[[stages]]\nname = 'score'\nplugin = 'b'\n[[stages]]\nname = 'redact'\nplugin = 'c'\n", "stages[2].name", 12, "duplicate stage name \"redact\" (also stages[0].name)"),
    ("<min>[[stages]]\nname = ''\nplugin = 'p'\n", "stages[0].name", 6, "must not be empty"),
    ("<min>[[stages]]\nname = 'a b'\nplugin = 'p'\n", "stages[0].name", 6, "letters, digits"),
    ("<min>[[stages]]\nname = 'a'\nplugin = ''\n", "stages[0].plugin", 7, "must not be empty"),
    ("<min>[[stages]]\nname = 'a'\nplugin = 'dir/p'\n", "stages[0].plugin", 7, "path ending in .wasm"),
    ("<min>[outputs.Bad]\ntype = 'stdout'\n", "outputs.Bad", 5, "a-z, 0-9"),
    ("<min>[batch]\nmax_events = 0\n", "batch.max_events", 6, "between 1 and 65536"),
    ("<min>[batch]\nmax_events = 70000\n", "batch.max_events", 6, "between 1 and 65536"),
    ("[source]\ntype = 'generate'\nrate = 0\n[outputs.default]\ntype = 'stdout'\n", "source.rate", 3, "above 0"),
    ("name = ''\n<min>", "name", 1, "must not be empty"),
    ("<min><stage>[stages.limits]\nmax_batch_ms = 0\n", "stages[0].limits.max_batch_ms", 9, "at least 1"),
    ("<min><stage>[stages.params]\nx = nan\n", "stages[0].params.x", 9, "JSON"),
    // A sub-table's errors keep their whole path: a nested key is not
    // re-parsed from text, so not quoted.
    ("<min><stage>[stages.grants]\ndirs = [{ path = 'd', guest = 'data' }]\n", "stages[0].grants.dirs[0].guest", 9, "absolute guest path"),
    ("<min><stage>[stages.grants]\nenv = ['A=B']\n", "stages[0].grants.env[0]", 9, "not a variable name"),
    ("<min><stage>[stages.circuit_breaker]\nmax_faults = 0\n", "stages[0].circuit_breaker.max_faults", 9, "at least 1"),
    ("<min>[reload]\npoll_interval_ms = 0\n", "reload.poll_interval_ms", 6, "at least 1"),
    ("<min>[admin]\naddress = 'nowhere'\n", "admin.address", 6, "not host:port"),
    // State: the key, bounds and the state tables.
    ("<min><stage>[stages.state]\nkey = 'card_id'\n", "stages[0].state.key", 9, "JSON pointer"),
    ("<min><stage>[stages.state]\nkey = '/c'\nmax_value_bytes = 0\n", "stages[0].state.max_value_bytes", 10, "between 1 and"),
    ("<min><stage>[stages.state]\nkey = '/c'\nttl = 5\n", "stages[0].state.ttl", 10, "unknown field `ttl`"),
    ("<min>[state]\ndurability = 'never'\n", "state.durability", 6, "unknown variant `never`"),
    ("<min>[watermark]\nidle_timeout_ms = 0\n", "watermark.idle_timeout_ms", 6, "between 1 and"),
    ("[source]\ntype = 'file'\npath = 'in'\nevent_time = 'ts'\n[outputs.default]\ntype = 'stdout'\n", "source.event_time", 4, "JSON pointer"),
    ("[source]\ntype = 'kafka'\nbrokers = 'b:9092'\ntopics = ['^in.*']\ngroup_id = 'g'\n[outputs.default]\ntype = 'stdout'\n<stage>[stages.state]\nkey = '$key'\n", "source.topics", 4, "named topics"),
    // One file for two sinks.
    ("<min>[outputs.a]\ntype = 'file'\npath = 'out.jsonl'\n[dead_letter]\ntype = 'file'\npath = 'out.jsonl'\n", "dead_letter.path", 10, "also used by outputs.a.path"),
];

#[test]
fn refused_files_name_the_field_and_the_line() {
    for (file, field, line, needle) in REFUSED {
        let src = file
            .replace("<min>", MINIMAL)
            .replace("<stage>", "[[stages]]\nname = 'a'\nplugin = 'p'\n");
        assert_error(&src, field, *line, needle);
    }
}

#[test]
fn a_keyed_stage_and_the_state_tables() {
    let src = format!(
        "name = 'fraud'\nstate_dir = 'st'\n{MINIMAL}[[stages]]\nname = 'a'\nplugin = 'p'\n[stages.state]\nkey = '$key'\nttl_secs = 60\n[state]\ndurability = 'interval'\ninterval_ms = 200\n[watermark]\nout_of_order_ms = 0\n"
    );
    let c = PipelineConfig::from_str(&src, "/p").expect("valid");
    assert!(c.is_keyed());
    assert_eq!(c.state_dir_path(), Path::new("/p/st/fraud"));
    let state = c.stages[0].state.as_ref().expect("keyed");
    assert_eq!(state.ttl_ms(), Some(60_000));
    assert_eq!(state.max_value_bytes, 64 * 1024);
    assert_eq!(c.state.durability, crate::state::Durability::Interval);
    assert_eq!(c.watermark.out_of_order_ms, 0);
    assert_eq!(c.watermark.idle_timeout_ms, 10_000);
}

#[test]
fn no_outputs_at_all_has_no_line_to_point_at() {
    let (field, line, msg) = error_of("[source]\ntype = 'stdin'\n");
    assert_eq!((field.as_str(), line), ("outputs.default", None), "{msg}");
}

#[test]
fn paths_are_compared_as_resolved() {
    let src = format!(
        "{MINIMAL}[outputs.a]\ntype = 'file'\npath = 'out.jsonl'\n[dead_letter]\ntype = 'file'\npath = './x/../out.jsonl'\n"
    );
    // Paths are compared as resolved, not canonicalized: these two differ
    // (the same path twice is refused: see REFUSED).
    assert!(PipelineConfig::from_str(&src, "/p").is_ok());
}

#[test]
fn syntax_errors_have_line_and_column() {
    let err = PipelineConfig::from_str("name = 'x'\n[source\n", "/p").expect_err("syntax");
    let msg = err.to_string();
    assert_eq!(err.line(), Some(2), "{msg}");
    assert!(msg.starts_with("line 2:"), "{msg}");
}

#[test]
fn from_file_names_the_file_and_resolves_relative_to_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("pipeline.toml");
    std::fs::write(
        &path,
        format!("{MINIMAL}[[stages]]\nname = 'a'\nplugin = 'p'\nx = 1\n"),
    )
    .expect("write");
    let msg = PipelineConfig::from_file(&path)
        .expect_err("invalid")
        .to_string();
    assert!(
        msg.starts_with(&format!(
            "{}:8: stages[0].x: unknown field `x`",
            path.display()
        )),
        "{msg}"
    );
    std::fs::write(&path, MINIMAL).expect("write");
    let c = PipelineConfig::from_file(&path).expect("valid");
    assert_eq!(c.base_dir(), dir.path());
    assert_eq!(c.plugin_dir_path(), dir.path().join("plugins"));
    let missing = PipelineConfig::from_file(dir.path().join("nope.toml")).expect_err("missing");
    assert!(matches!(missing, ConfigError::Read { .. }), "{missing}");
}

#[tokio::test]
async fn builds_sources_and_sinks() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("in.jsonl"), "{}\n").expect("write");
    let src = "[source]\ntype = 'file'\npath = 'in.jsonl'\n[outputs.default]\ntype = 'file'\npath = 'out/o.jsonl'\n";
    let c = PipelineConfig::from_str(src, dir.path()).expect("valid");
    let mut source = c.build_source().expect("source");
    assert_eq!(source.describe(), "file in.jsonl (json)");
    let read = source.read(10).await.expect("read").expect("one");
    assert_eq!(read.events.len(), 1);
    let outputs = c.build_outputs().expect("outputs");
    assert_eq!(outputs.keys().collect::<Vec<_>>(), ["default"]);
    assert!(dir.path().join("out/o.jsonl").exists());
    assert_eq!(
        c.build_dead_letter().expect("dlq").describe(),
        "stderr (json)"
    );
    let elsewhere = PipelineConfig::from_str(src, dir.path().join("elsewhere")).expect("valid");
    assert!(elsewhere.build_source().is_err(), "the input is not there");
}

#[test]
fn pipeline_files_parse_kafka_sources_and_sinks() {
    let src = r#"
[source]
type = "kafka"
brokers = "b:9092"
topics = ["in", "^logs-.*"]
group_id = "g"
start = "latest"
[source.properties]
"fetch.min.bytes" = 10
[outputs.default]
type = "kafka"
brokers = "b:9092"
topic = "out"
[dead_letter]
type = "kafka"
brokers = "b:9092"
topic = "dlq"
headers = true
"#;
    let c = PipelineConfig::from_str(src, "/p").expect("valid");
    let SourceConfig::Kafka(k) = &c.source else {
        panic!("kafka source expected")
    };
    assert_eq!(k.topics, ["in", "^logs-.*"]);
    assert_eq!(k.start, crate::source::StartPosition::Latest);
    assert_eq!(k.buffer_events, 10_000);
    assert_eq!(
        k.properties.get("fetch.min.bytes"),
        Some(&crate::kafka::PropertyValue::Integer(10))
    );
    let bad = src.replace("group_id = \"g\"", "group_id = \"g\"\ngroup = 1");
    let err = PipelineConfig::from_str(&bad, "/p").expect_err("unknown field");
    assert_eq!(err.line(), Some(7), "{err}");
    let bad = src.replace("topic = \"dlq\"", "topic = \"\"");
    let err = PipelineConfig::from_str(&bad, "/p").expect_err("empty topic");
    assert_eq!(err.field(), "dead_letter.topic", "{err}");
}

#[test]
fn the_fraud_action_pipeline_is_valid() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/fraud");
    let text = std::fs::read_to_string(dir.join("actions.toml")).expect("actions.toml");
    // The token comes from the environment when it runs; a literal here.
    let text = text.replace("env:WEBHOOK_AUTHORIZATION", "Bearer test");
    let config = PipelineConfig::from_str(&text, &dir).expect("a valid pipeline");
    assert!(matches!(
        config.outputs.get("default"),
        Some(crate::sink::SinkConfig::Redis(_))
    ));
    assert!(matches!(
        config.outputs.get("alerts"),
        Some(crate::sink::SinkConfig::Http(_))
    ));
}
