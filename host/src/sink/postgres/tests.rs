use super::*;

const OK: &str = r#"
url = "postgres://weir@127.0.0.1:5432/app"
table = "scores"
key = "card_id"
columns = { card_id = "/card_id", score = "/score" }
"#;

fn config(extra: &str) -> PostgresSinkConfig {
    toml::from_str(&format!("{OK}{extra}")).expect("config")
}

fn field(extra: &str) -> String {
    config(extra).validate().expect_err("invalid").field()
}

#[test]
fn config_errors_name_the_field() {
    assert!(config("").validate().is_ok());
    assert_eq!(
        toml::from_str::<PostgresSinkConfig>(&OK.replace("weir@127", "weir:pw@127"))
            .expect("config")
            .validate()
            .map_err(|e| e.field()),
        Err("url".into())
    );
    assert_eq!(
        field("password = \"env:WEIR_TEST_UNSET_PG_PW\""),
        "password"
    );
    assert_eq!(field("version_column = \"score\""), "version_column");
    assert_eq!(field("version_column = \"Bad\""), "version_column");
    assert_eq!(
        field("types = { score = \"int; drop table x\" }"),
        "types.score"
    );
    assert_eq!(field("types = { nope = \"int\" }"), "types.nope");
    assert_eq!(field("pool_size = 0"), "pool_size");
    let bad_key = OK.replace("key = \"card_id\"", "key = [\"card_id\", \"other\"]");
    let c: PostgresSinkConfig = toml::from_str(&bad_key).expect("config");
    assert_eq!(c.validate().map_err(|e| e.field()), Err("key".into()));
    let bad_table = OK.replace("\"scores\"", "\"a.b.c\"");
    let c: PostgresSinkConfig = toml::from_str(&bad_table).expect("config");
    assert_eq!(c.validate().map_err(|e| e.field()), Err("table".into()));
    let bad_ptr = OK.replace("\"/score\"", "\"score\"");
    let c: PostgresSinkConfig = toml::from_str(&bad_ptr).expect("config");
    assert_eq!(
        c.validate().map_err(|e| e.field()),
        Err("columns.score".into())
    );
}

#[test]
fn statements_upsert_only_newer_versions() {
    let s = sql::Statements::new(&config("types = { score = \"double precision\" }"));
    assert_eq!(
        s.create,
        "CREATE TABLE IF NOT EXISTS \"scores\" (\"card_id\" text NOT NULL, \"score\" double precision, \"version\" bigint NOT NULL, PRIMARY KEY (\"card_id\"))"
    );
    assert!(s.upsert.contains("ON CONFLICT (\"card_id\") DO UPDATE SET \"score\" = EXCLUDED.\"score\", \"version\" = EXCLUDED.\"version\" WHERE t.\"version\" < EXCLUDED.\"version\""), "{}", s.upsert);
}

#[test]
fn a_server_that_cannot_serve_now_is_down_not_up() {
    // Starting up, shutting down, too many connections, connection
    // exceptions: down (`/readyz` 503), retried.
    for code in ["57P03", "57P01", "53300", "08006"] {
        assert!(unreachable_code(code), "{code}");
    }
    // Bad data (refused), a serialization failure (passing): the server
    // answers.
    for code in ["22P02", "23505", "40001"] {
        assert!(!unreachable_code(code), "{code}");
    }
}
