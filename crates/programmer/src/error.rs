//! Why a workflow did not do what was asked, and what the person should do about it.

use itb_dose::review::Warning;
use jiff::Timestamp;

/// The pump refused a request: its code, its sentence, and when to try again if that helps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The refusal's code (`stale_change`, `fill_above_capacity`, `ptm_lockout`, ...).
    pub code: String,
    /// The pump's sentence.
    pub message: String,
    /// When the same request could succeed.
    pub retry_at: Option<Timestamp>,
}

fn dangers(count: usize) -> String {
    if count == 1 { "a dangerous warning".to_owned() } else { format!("{count} dangerous warnings") }
}

/// Why a workflow stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProgrammerError {
    /// The pump could not be reached, or did not answer: nothing was changed unless a later
    /// interrogation shows otherwise.
    #[error("{0}; nothing was changed unless a later interrogation shows it: interrogate again")]
    Link(String),
    /// The link dropped while a change was being committed, and the retry could not settle it:
    /// the pump runs either the old or the new therapy.
    #[error(
        "the link dropped during the commit ({0}): the pump runs either the old or the new settings; interrogate it before leaving the patient"
    )]
    CommitUncertain(String),
    /// The pump refused.
    #[error("the pump refused ({}): {}", .0.code, .0.message)]
    Refused(Refused),
    /// The change has dangerous warnings and no written reason was given.
    #[error("the change needs a written reason to go ahead despite {}", dangers(.0.len()))]
    NeedsOverride(Vec<Warning>),
    /// A planned action is more dangerous now than when it was judged: its new judgement.
    #[error("the pump changed since this was judged: read the new warning and decide again")]
    Changed(Box<crate::Planned>),
    /// Bad input from the person (a file, a value).
    #[error("{0}")]
    Input(String),
    /// The pump answered something this programmer does not understand.
    #[error("the pump's answer cannot be read: {0}")]
    Protocol(String),
}
