//! A stage's `[stages.params]` table, converted to the JSON object a plugin's
//! `init` receives.

use serde_json::Value as Json;
use toml::Value as Toml;

use crate::validate::FieldError;

/// Converts a TOML table to a JSON object. Datetimes become their RFC 3339
/// text; a float JSON cannot represent (`nan`, `inf`) is an error naming the key.
pub(crate) fn table_to_json(table: &toml::Table) -> Result<Json, FieldError> {
    let mut map = serde_json::Map::with_capacity(table.len());
    for (key, value) in table {
        let json = value_to_json(value).map_err(|e| e.within(key))?;
        map.insert(key.clone(), json);
    }
    Ok(Json::Object(map))
}

fn value_to_json(value: &Toml) -> Result<Json, FieldError> {
    Ok(match value {
        Toml::String(s) => Json::String(s.clone()),
        Toml::Integer(i) => Json::from(*i),
        Toml::Float(f) => serde_json::Number::from_f64(*f)
            .map(Json::Number)
            .ok_or_else(|| FieldError::new("", format!("{f} cannot be represented in JSON")))?,
        Toml::Boolean(b) => Json::Bool(*b),
        Toml::Datetime(d) => Json::String(d.to_string()),
        Toml::Array(items) => Json::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| value_to_json(v).map_err(|e| e.within_index(i)))
                .collect::<Result<_, _>>()?,
        ),
        Toml::Table(t) => table_to_json(t)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_every_toml_type() {
        let table: toml::Table = toml::from_str(
            "s = 'x'\ni = 3\nf = 1.5\nb = true\nd = 1979-05-27T07:32:00Z\na = [1, 'two']\n[t]\nk = 'v'\n",
        )
        .expect("valid toml");
        let json = table_to_json(&table).expect("converts");
        assert_eq!(
            json,
            serde_json::json!({
                "s": "x", "i": 3, "f": 1.5, "b": true, "d": "1979-05-27T07:32:00Z",
                "a": [1, "two"], "t": {"k": "v"}
            })
        );
    }

    #[test]
    fn nan_is_an_error_with_its_path() {
        let table: toml::Table = toml::from_str("[t]\nx = [1.0, nan]\n").expect("valid toml");
        let err = table_to_json(&table).expect_err("nan");
        assert_eq!(err.field(), "t.x[1]");
    }
}
