//! The error type of plugin functions.

use std::fmt;

/// `Result` with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why the processing of one event (or `init`) failed.
///
/// It is only a message: when a plugin function returns `Err` for an event, the
/// host sends that event to the dead-letter output with this message as the reason.
///
/// Any [`std::error::Error`] converts into it, so `?` works on `serde_json`,
/// `std::str::Utf8Error`, `std::num::ParseIntError`... Build one from text with
/// [`Error::msg`], [`bail!`](crate::bail) or [`ensure!`](crate::ensure).
///
/// (`Error` deliberately does not implement `std::error::Error` itself: that is
/// what allows the blanket `From` conversion, as in `anyhow`.)
#[derive(Clone, PartialEq, Eq)]
pub struct Error {
    message: String,
}

impl Error {
    /// An error with this message.
    pub fn msg(message: impl fmt::Display) -> Self {
        Self {
            message: message.to_string(),
        }
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Prefixes the message with `context: `.
    #[must_use]
    pub fn context(self, context: impl fmt::Display) -> Self {
        Self {
            message: format!("{context}: {}", self.message),
        }
    }

    /// The message, by value.
    pub fn into_message(self) -> String {
        self.message
    }
}

impl<E> From<E> for Error
where
    E: std::error::Error + Send + Sync + 'static,
{
    /// The error's message followed by those of its sources (`outer: inner`).
    fn from(error: E) -> Self {
        let mut message = error.to_string();
        let mut source = error.source();
        while let Some(inner) = source {
            message.push_str(": ");
            message.push_str(&inner.to_string());
            source = inner.source();
        }
        Self { message }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.message, f)
    }
}

/// Returns early with an [`Error`] built from a format string:
/// `bail!("amount {} is negative", amount)`.
#[macro_export]
macro_rules! bail {
    ($($arg:tt)+) => {
        return ::core::result::Result::Err($crate::Error::msg(::std::format!($($arg)+)))
    };
}

/// Returns early with an [`Error`] unless a condition holds:
/// `ensure!(amount >= 0, "amount {} is negative", amount)`.
/// Without a message, the error quotes the condition.
#[macro_export]
macro_rules! ensure {
    ($cond:expr $(,)?) => {
        if !$cond {
            $crate::bail!(::core::concat!("condition failed: ", ::core::stringify!($cond)));
        }
    };
    ($cond:expr, $($arg:tt)+) => {
        if !$cond {
            $crate::bail!($($arg)+);
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Outer(std::num::ParseIntError);

    impl fmt::Display for Outer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("bad amount")
        }
    }

    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    fn parse(s: &str) -> Result<i64> {
        Ok(s.parse::<i64>()?)
    }

    #[test]
    fn question_mark_converts_std_errors() {
        let err = parse("x").unwrap_err();
        assert_eq!(err.message(), "invalid digit found in string");
    }

    #[test]
    fn sources_are_chained() {
        let inner = "x".parse::<i64>().unwrap_err();
        let err = Error::from(Outer(inner));
        assert_eq!(err.to_string(), "bad amount: invalid digit found in string");
    }

    fn check(n: i64) -> Result<i64> {
        crate::ensure!(n >= 0, "{n} is negative");
        crate::ensure!(n != 7);
        if n > 100 {
            crate::bail!("{} is too large", n);
        }
        Ok(n)
    }

    #[test]
    fn bail_and_ensure() {
        assert_eq!(check(5), Ok(5));
        assert_eq!(check(-1).unwrap_err().message(), "-1 is negative");
        assert_eq!(check(7).unwrap_err().message(), "condition failed: n != 7");
        assert_eq!(check(101).unwrap_err().message(), "101 is too large");
        assert_eq!(
            Error::msg("inner").context("outer").to_string(),
            "outer: inner"
        );
    }
}
