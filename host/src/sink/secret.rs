//! Secrets in sink configs: `"env:NAME"` reads the value from the
//! environment variable `NAME` when the pipeline is built, so the pipeline
//! file holds no credential. A [`Secret`] never shows its value: `Debug` and
//! `Display` print `<redacted>` (or `env:NAME`), so it stays out of logs,
//! errors, the status page and `/metrics`.

use serde::{Deserialize, Deserializer};

use crate::validate::FieldError;

/// A credential (a header value, a password): `"env:NAME"` or a literal.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    /// As written in the pipeline file.
    written: String,
}

impl Secret {
    pub fn literal(value: &str) -> Self {
        Self {
            written: value.to_owned(),
        }
    }

    /// The environment variable it names, for `"env:NAME"`.
    pub fn env_name(&self) -> Option<&str> {
        self.written.strip_prefix("env:")
    }

    /// Checks that an `env:` secret's variable is set (`field` names it in
    /// the error).
    pub fn validate(&self, field: &str) -> Result<(), FieldError> {
        match self.env_name() {
            Some("") => Err(FieldError::new(
                field,
                "`env:` needs a variable name (`env:NAME`)",
            )),
            Some(name) => match std::env::var(name) {
                Ok(_) => Ok(()),
                Err(_) => Err(FieldError::new(
                    field,
                    format!("the environment variable {name} is not set (or not UTF-8)"),
                )),
            },
            None => Ok(()),
        }
    }

    /// The value: the variable's for `env:NAME`, else the literal.
    pub fn reveal(&self) -> Result<String, String> {
        match self.env_name() {
            Some(name) => std::env::var(name)
                .map_err(|_| format!("the environment variable {name} is not set")),
            None => Ok(self.written.clone()),
        }
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.env_name() {
            Some(name) => write!(f, "env:{name}"),
            None => f.write_str("<redacted>"),
        }
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        Ok(Self {
            written: String::deserialize(de)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_never_prints_its_value() {
        let s = Secret::literal("hunter2");
        assert_eq!(format!("{s} {s:?}"), "<redacted> <redacted>");
        assert_eq!(s.reveal().as_deref(), Ok("hunter2"));
        let e = Secret::literal("env:WEIR_TEST_SECRET_UNSET_VAR");
        assert_eq!(format!("{e:?}"), "env:WEIR_TEST_SECRET_UNSET_VAR");
        let err = e.validate("password").expect_err("unset variable");
        assert_eq!(err.field(), "password");
        assert!(err.message.contains("WEIR_TEST_SECRET_UNSET_VAR"));
    }
}
