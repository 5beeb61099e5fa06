//! Words for people: alarms, events, faults and commands as a person reads them, in the
//! project's one style (`itb_dose::text`: NHS dates, rounded quantities, "micrograms" in full).
//! Code names (`low_reservoir`) and exact figures stay in the JSON.

use itb_dose::text;
use itb_pump::world::CatheterState;
use itb_pump::{AlarmKind, Event, PumpTime, WorldAction};

/// An alarm's name: `Low reservoir`, `Empty reservoir`, `Motor stall`.
pub fn alarm_name(kind: AlarmKind) -> String {
    capitalised(kind.label())
}

/// A sentence from the pump (a refusal's reason) with any alarm's code name in words
/// (`the motor_stall alarm is not active` reads `the motor stall alarm is not active`).
pub fn sentence(text: &str) -> String {
    let mut out = text.to_owned();
    for kind in AlarmKind::ALL {
        if out.contains(kind.as_str()) {
            out = out.replace(kind.as_str(), &alarm_name(kind).to_lowercase());
        }
    }
    out
}

/// The first letter in capitals.
pub fn capitalised(text: &str) -> String {
    itb_dose::text::capitalised(text)
}

/// A code name (`refill_warning`, `end_of_service`) in words (`refill warning`, `end of service`).
pub fn code_in_words(code: &str) -> String {
    match code {
        "ptm" => "PTM".to_owned(),
        "ptm_bolus" => "PTM bolus".to_owned(),
        other => other.replace('_', " "),
    }
}

/// `+14.5 %`, `-100 %`, `40 %` from parts per million.
pub fn percent(ppm: i64, signed: bool) -> String {
    let sign = match (signed, ppm.signum()) {
        (true, 1) => "+",
        (_, -1) => "-",
        _ => "",
    };
    format!("{sign}{} %", itb_dose::decimal::format(ppm.unsigned_abs(), 4))
}

/// A pump clock reading: `Wed 25 Nov 2026 10:00`.
pub fn pump_time(reading: PumpTime) -> String {
    reading.to_civil().map_or_else(|| reading.to_string(), text::civil_date_time)
}

/// A log event in a sentence: the pump's own (words, rounded quantities). Refusals are written
/// by the runner with their reasons.
pub fn event(event: &Event) -> String {
    event.describe()
}

/// A fault as a sentence.
pub fn fault(fault: &WorldAction) -> String {
    match fault {
        WorldAction::MriScan { stall_for } => {
            format!("MRI scan: the motor stalls for {}", text::duration(*stall_for))
        }
        WorldAction::Catheter(state) => match state {
            CatheterState::Patent => "catheter patent again".to_owned(),
            CatheterState::Occluded => "catheter occluded: nothing flows, and the pump cannot tell".to_owned(),
            CatheterState::Leaking { fraction_ppm } => format!(
                "catheter leaking: {} of what leaves the pump goes into tissue",
                percent(i64::from(*fraction_ppm), false)
            ),
            CatheterState::Disconnected => {
                "catheter disconnected from the pump: everything it pumps goes into tissue".to_owned()
            }
        },
        WorldAction::ReplaceCatheter => {
            "catheter replaced: the old one's contents stay in tissue, the new one is empty (prime it)".to_owned()
        }
        WorldAction::RateError { ppm } => {
            let what = match ppm.signum() {
                1 => "more than",
                -1 => "less than",
                _ => "exactly",
            };
            format!("delivery error now {}: the pump delivers {what} the volume it counts", percent(*ppm, true))
        }
        WorldAction::BatteryDefect { capacity_loss_ppm } => {
            format!("battery defect: {} of its charge lost", percent(i64::from(*capacity_loss_ppm), false))
        }
        WorldAction::LowBatteryReset => "battery voltage dip".to_owned(),
        WorldAction::MemoryError { critical: true } => "critical memory fault".to_owned(),
        WorldAction::MemoryError { critical: false } => "memory fault".to_owned(),
        WorldAction::Withdraw => "reservoir withdrawn".to_owned(),
        WorldAction::Inject { volume, concentration, into } => format!(
            "{} of {} injected into the {}",
            text::volume(*volume),
            text::concentration(*concentration),
            into.as_str()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alarms_in_words() {
        assert_eq!(alarm_name(AlarmKind::LowReservoir), "Low reservoir");
        assert_eq!(alarm_name(AlarmKind::EmptyReservoir), "Empty reservoir");
        assert_eq!(alarm_name(AlarmKind::MotorStall), "Motor stall");
        assert_eq!(alarm_name(AlarmKind::ElectiveReplacement), "Elective replacement indicator");
        for kind in AlarmKind::ALL {
            assert!(!alarm_name(kind).contains('_'), "{kind:?}");
        }
    }

    #[test]
    fn pump_sentences_lose_their_code_names() {
        assert_eq!(sentence("the motor_stall alarm is not active"), "the motor stall alarm is not active");
        assert_eq!(sentence("the low_reservoir alarm"), "the low reservoir alarm");
    }

    #[test]
    fn faults_without_debug_text() {
        let leak = fault(&WorldAction::Catheter(CatheterState::Leaking { fraction_ppm: 400_000 }));
        assert_eq!(leak, "catheter leaking: 40 % of what leaves the pump goes into tissue");
        assert_eq!(
            fault(&WorldAction::RateError { ppm: 145_000 }),
            "delivery error now +14.5 %: the pump delivers more than the volume it counts"
        );
        assert_eq!(percent(-1_000_000, true), "-100 %");
    }

    #[test]
    fn events_with_rounded_quantities() {
        let refill =
            Event::Refilled { expected_nl: 2_892_584, filled_nl: 20_000_000, concentration_ng_per_ml: 2_000_000 };
        assert_eq!(event(&refill), "refilled with 20 mL of 2000 micrograms/mL (the pump had expected 2.89 mL left)");
        assert_eq!(event(&Event::AlarmCleared(AlarmKind::MotorStall)), "alarm cleared: motor stall");
    }
}
