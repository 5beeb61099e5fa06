//! The patient's therapy manager (PTM): a bolus within the clinician's limits, and when the
//! next one is allowed. One press is one request id: if the link drops, the press is sent again
//! with the same id, and the pump delivers it once.

use itb_dose::Mass;
use itb_link::message::RequestBody;
use itb_pump::AlarmKind;
use jiff::Timestamp;

use crate::error::ProgrammerError;
use crate::link::PumpLink;
use crate::status::timestamp;
use crate::{BolusStarted, exchange, refused};

/// Attempts for one press or one status read when the link drops.
pub const ATTEMPTS: usize = 3;

/// The patient's short status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PtmStatus {
    /// Boluses taken in the last 24 hours.
    pub boluses_last_24h: u32,
    /// Allowed in any 24 hours (0: no PTM boluses prescribed).
    pub allowed_per_24h: u32,
    /// When the next is allowed, if not now.
    pub next_allowed_at: Option<Timestamp>,
    /// Alarms sounding.
    pub alarms: Vec<AlarmKind>,
}

/// The PTM, over one link to its pump.
#[derive(Debug)]
pub struct Ptm<L> {
    link: L,
    next_id: u64,
}

impl<L: PumpLink> Ptm<L> {
    /// A PTM over `link`; request ids start at `first_id` (see [`crate::Programmer::new`]).
    pub fn new(link: L, first_id: u64) -> Self {
        Self { link, next_id: first_id }
    }

    /// The link, to close it.
    pub fn link_mut(&mut self) -> &mut L {
        &mut self.link
    }

    async fn ask(&mut self, body: RequestBody) -> Result<itb_link::message::ResponseBody, ProgrammerError> {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        let mut last = None;
        for _ in 0..ATTEMPTS {
            match exchange(&mut self.link, id, body.clone()).await {
                Ok(answer) => return Ok(answer),
                Err(error) => last = Some(error),
            }
        }
        Err(ProgrammerError::Link(last.map_or_else(|| "no answer".to_owned(), |e| e.to_string())))
    }

    /// Asks for a bolus.
    ///
    /// # Errors
    /// The pump's refusal (lockout or daily maximum with the time the next is allowed, no PTM
    /// prescribed, pump stopped); the link.
    pub async fn bolus(&mut self) -> Result<BolusStarted, ProgrammerError> {
        use itb_link::message::ResponseBody;
        match self.ask(RequestBody::PtmBolus {}).await? {
            ResponseBody::BolusStarted { dose_ng, ends_at_ms } => {
                Ok(BolusStarted { dose: Mass::ng(dose_ng), ends_at: timestamp(ends_at_ms)? })
            }
            ResponseBody::Refused { code, message, retry_at_ms } => Err(refused(code, message, retry_at_ms)),
            _ => Err(ProgrammerError::Protocol("the pump did not answer the bolus request".to_owned())),
        }
    }

    /// Reads the short status.
    ///
    /// # Errors
    /// The link; an answer that cannot be read.
    pub async fn status(&mut self) -> Result<PtmStatus, ProgrammerError> {
        use itb_link::message::ResponseBody;
        match self.ask(RequestBody::PtmStatus {}).await? {
            ResponseBody::PtmStatus { boluses_last_24h, allowed_per_24h, next_allowed_at_ms, alarms } => {
                Ok(PtmStatus {
                    boluses_last_24h,
                    allowed_per_24h,
                    next_allowed_at: next_allowed_at_ms.map(timestamp).transpose()?,
                    alarms: alarms
                        .iter()
                        .map(|a| {
                            AlarmKind::parse(a).ok_or_else(|| {
                                ProgrammerError::Protocol(format!("the pump reports an unknown alarm '{a}'"))
                            })
                        })
                        .collect::<Result<_, _>>()?,
                })
            }
            ResponseBody::Refused { code, message, retry_at_ms } => Err(refused(code, message, retry_at_ms)),
            _ => Err(ProgrammerError::Protocol("the pump did not answer the status request".to_owned())),
        }
    }
}
