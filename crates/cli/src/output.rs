//! Output for people (aligned label: value lines) and for machines (JSON), from one report.

use std::fmt::Display;

use itb_dose::Prescription;
use itb_dose::text;
use serde_json::{Map, Number, Value};

/// What `itb calc` and `itb pump` exit with, for `--help` and the README (`itb program` and
/// `itb ptm` have more: `program::EXIT_CODES`).
pub const EXIT_CODES: &str = "Exit codes:
  0  done
  1  failed or refused: input that cannot be used, or a file that cannot be read or written
     (one sentence on stderr, nothing on stdout)
  2  the command line is wrong (a command, flag or value; see the message)";

/// A report: ordered fields for JSON, and lines for people.
#[derive(Debug, Default)]
pub struct Report {
    title: String,
    json: Map<String, Value>,
    lines: Vec<(String, String)>,
    notes: Vec<String>,
}

/// A decimal as a JSON number: the exact decimal text, read back as the nearest double, which
/// prints as the same text for the 6 decimals used here.
pub fn number(decimal: impl Display) -> Value {
    let text = decimal.to_string();
    if let Ok(whole) = text.parse::<i64>() {
        return Value::Number(whole.into());
    }
    text.parse::<f64>().ok().and_then(Number::from_f64).map_or(Value::Null, Value::Number)
}

/// `Monday`, `Every day`: a day label of a prescription's cycle, for people.
pub fn capitalised(text: &str) -> String {
    text::capitalised(text)
}

/// A prescription in one line for people (`itb_dose::text::prescription_words`).
pub fn prescription_words(prescription: &Prescription) -> String {
    text::prescription_words(prescription)
}

impl Report {
    /// A report with a title line.
    pub fn new(title: impl Into<String>) -> Self {
        Self { title: title.into(), ..Self::default() }
    }
    /// A JSON field only.
    pub fn json(&mut self, key: &str, value: Value) -> &mut Self {
        self.json.insert(key.to_owned(), value);
        self
    }
    /// A line for people only.
    pub fn line(&mut self, label: &str, text: impl Display) -> &mut Self {
        self.lines.push((label.to_owned(), text.to_string()));
        self
    }
    /// A sentence for people, after the lines.
    pub fn note(&mut self, text: impl Into<String>) -> &mut Self {
        self.notes.push(text.into());
        self
    }
    /// The JSON document.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(&Value::Object(self.json.clone())).unwrap_or_default();
        text.push('\n');
        text
    }
    /// The text for people.
    pub fn to_text(&self) -> String {
        let width = self.lines.iter().map(|(label, _)| label.chars().count()).max().unwrap_or(0);
        let mut text = format!("{}\n", self.title);
        for (label, value) in &self.lines {
            text.push_str(&format!("  {label:<width$}  {value}\n"));
        }
        if !self.notes.is_empty() {
            text.push('\n');
            for note in &self.notes {
                text.push_str(&format!("  - {note}\n"));
            }
        }
        text
    }
    /// JSON or text.
    pub fn render(&self, json: bool) -> String {
        if json { self.to_json() } else { self.to_text() }
    }
}
