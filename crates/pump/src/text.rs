//! Short text a log entry can carry: a clinician's written reason.
//!
//! [`LogText`] is `Copy` and fixed in size (160 bytes and a length), so that the log stays a
//! ring of `Copy` entries. It is built only through [`LogText::new`], which refuses what would
//! not read well in one line of a log: empty text, text over 160 bytes of UTF-8 (it is refused,
//! never cut), and control characters such as line breaks.

use std::fmt;

/// UTF-8 text of 1 to [`LogText::MAX_BYTES`] bytes, on one line.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct LogText {
    bytes: [u8; LogText::MAX_BYTES],
    len: u8,
}

/// Why text cannot go into the log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogTextError {
    /// Nothing, or only spaces.
    #[error("the text is empty: write what the log should keep")]
    Empty,
    /// More than the log holds.
    #[error("the text is {bytes} bytes long; the pump's log keeps at most 160 bytes (UTF-8): shorten it")]
    TooLong {
        /// Its length in bytes.
        bytes: usize,
    },
    /// A line break, tab or other control character.
    #[error("the text holds a control character (such as a line break): write it on one line")]
    ControlCharacter,
}

impl LogText {
    /// The most bytes (UTF-8) a log text holds.
    pub const MAX_BYTES: usize = 160;

    /// Checks `text` and keeps it: refused if empty or blank, over [`Self::MAX_BYTES`] bytes, or
    /// holding a control character.
    pub fn new(text: &str) -> Result<Self, LogTextError> {
        if text.trim().is_empty() {
            return Err(LogTextError::Empty);
        }
        if text.len() > Self::MAX_BYTES {
            return Err(LogTextError::TooLong { bytes: text.len() });
        }
        if text.chars().any(char::is_control) {
            return Err(LogTextError::ControlCharacter);
        }
        let mut bytes = [0; Self::MAX_BYTES];
        bytes[..text.len()].copy_from_slice(text.as_bytes());
        let len = u8::try_from(text.len()).map_err(|_| LogTextError::TooLong { bytes: text.len() })?;
        Ok(Self { bytes, len })
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        // Only `new` fills the bytes, with whole characters of a `str`: they are always UTF-8.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }
}

impl fmt::Debug for LogText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("LogText").field(&self.as_str()).finish()
    }
}

impl fmt::Display for LogText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for LogText {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for LogText {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        LogText::new(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_entry_with_text_stays_small() {
        // The log is a ring of Copy entries: the text is its largest event.
        assert_eq!(std::mem::size_of::<LogText>(), 161);
        assert!(std::mem::size_of::<crate::Event>() <= 176, "{}", std::mem::size_of::<crate::Event>());
        assert!(std::mem::size_of::<crate::LogEntry>() <= 192, "{}", std::mem::size_of::<crate::LogEntry>());
    }

    #[test]
    fn text_is_checked_never_cut() {
        let reason = LogText::new("titration step agreed with Dr Okafor").expect("valid");
        assert_eq!(reason.as_str(), "titration step agreed with Dr Okafor");
        assert_eq!(reason.to_string(), reason.as_str());
        assert_eq!(format!("{reason:?}"), "LogText(\"titration step agreed with Dr Okafor\")");
        assert_eq!(LogText::new(""), Err(LogTextError::Empty));
        assert_eq!(LogText::new("   "), Err(LogTextError::Empty));
        let full = "a".repeat(160);
        assert_eq!(LogText::new(&full).expect("160 bytes fit").as_str(), full);
        assert_eq!(LogText::new(&"a".repeat(161)), Err(LogTextError::TooLong { bytes: 161 }));
        // 159 bytes and a two-byte character: refused whole, not cut to 159.
        let accented = format!("{}é", "a".repeat(159));
        assert_eq!(LogText::new(&accented), Err(LogTextError::TooLong { bytes: 161 }));
        let fits = format!("{}é", "a".repeat(158));
        assert_eq!(LogText::new(&fits).expect("160 bytes").as_str(), fits);
        assert_eq!(LogText::new("two\nlines"), Err(LogTextError::ControlCharacter));
        assert!(LogText::new(&"a".repeat(161)).map(|_| ()).expect_err("long").to_string().contains("160 bytes"));
    }
}
