//! Text for people: one style for dates, times and quantities wherever a person reads them.
//!
//! Dates follow the NHS style: `25 Nov 2026` in tables and lists, `25 November 2026` in prose,
//! `Wed 25 Nov 2026 10:00` for an instant, with the zone's name when it is not the service's
//! (Europe/London). Machines get RFC 3339 in UTC instead (never these).
//!
//! Quantities are rounded for reading only, to a precision a clinician can act on: volumes to
//! 0.01 mL, doses to 0.01 micrograms, volume rates to 0.001 mL/day; the exact figure is always
//! in the JSON and in the files. "micrograms" is always written in full.

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;

use crate::decimal;
use crate::prescription::{FlexSchedule, Prescription, Therapy};
use crate::quantity::{Concentration, DoseRate, Duration, Mass, Volume, VolumeRate};

/// The zone a UK ITB service works in, and the default for every date shown to people.
pub const SERVICE_ZONE: &str = "Europe/London";

/// The service's zone (Europe/London; UTC if the bundled database lacks it, which it does not).
pub fn service_zone() -> TimeZone {
    TimeZone::get(SERVICE_ZONE).unwrap_or(TimeZone::UTC)
}

fn is_service_zone(zone: &TimeZone) -> bool {
    zone.iana_name() == Some(SERVICE_ZONE)
}

/// The text with its first letter in capitals: `Every day`, `Nurse specialist`.
pub fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |first| first.to_uppercase().collect::<String>() + chars.as_str())
}

/// `25 Nov 2026`: a date in a table or a list.
pub fn date(at: Timestamp, zone: &TimeZone) -> String {
    zone.to_datetime(at).strftime("%-d %b %Y").to_string()
}

/// `25 Nov 2026`: a calendar date (already in the service's zone).
pub fn civil_date(date: jiff::civil::Date) -> String {
    date.strftime("%-d %b %Y").to_string()
}

/// `25 November 2026`: a date in a sentence.
pub fn date_long(at: Timestamp, zone: &TimeZone) -> String {
    zone.to_datetime(at).strftime("%-d %B %Y").to_string()
}

/// `Wed 25 Nov 2026 10:00`, followed by the zone when it is not the service's
/// (`Wed 25 Nov 2026 10:00 UTC`, `Wed 25 Nov 2026 05:00 America/New_York`).
pub fn date_time(at: Timestamp, zone: &TimeZone) -> String {
    let text = civil_date_time(zone.to_datetime(at));
    if is_service_zone(zone) {
        return text;
    }
    match zone.iana_name() {
        Some("UTC") | Some("Etc/UTC") | None => format!("{text} UTC"),
        Some(name) => format!("{text} {name}"),
    }
}

/// A wall-clock reading without a zone (the pump's own clock): `Wed 25 Nov 2026 10:00`.
pub fn civil_date_time(at: DateTime) -> String {
    at.strftime("%a %-d %b %Y %H:%M").to_string()
}

/// Rounds `count` units of `10^-places` to `keep` decimal places (halves up) and prints it with
/// trailing zeros trimmed.
fn rounded(count: u64, places: u32, keep: u32) -> decimal::Decimal {
    let drop = places.saturating_sub(keep);
    let scale = 10u128.pow(drop);
    let kept = decimal::div_round(u128::from(count), scale);
    decimal::format_wide(kept, places - drop)
}

/// `19.88 mL`: a volume to 0.01 mL.
pub fn volume(volume: Volume) -> String {
    format!("{} mL", rounded(volume.as_nl(), 6, 2))
}

/// `0.001 mL`: a volume to the microlitre, for settings that small (an alarm threshold), where
/// rounding to 0.01 mL would show 0.
pub fn volume_fine(volume: Volume) -> String {
    format!("{} mL", rounded(volume.as_nl(), 6, 3))
}

/// `385 micrograms`, `16.04 micrograms`: a mass to 0.01 micrograms.
pub fn mass(mass: Mass) -> String {
    format!("{} micrograms", rounded(mass.as_ng(), 3, 2))
}

/// `385 micrograms/day`: a dose rate to 0.01 micrograms/day.
pub fn dose_rate(rate: DoseRate) -> String {
    format!("{} micrograms/day", rounded(rate.as_ng_per_day(), 3, 2))
}

/// `16.04 micrograms/hour`: the same rate per hour, to 0.01 micrograms/hour (flex steps are
/// shown both ways, so that a rate entered per hour instead of per day stands out).
pub fn dose_rate_per_hour(rate: DoseRate) -> String {
    // 0.001 micrograms per day / 24 = nanograms per hour / 24; keep 5 places, show 2.
    let per_hour_10ng = decimal::div_round(u128::from(rate.as_ng_per_day()) * 100, 24);
    let per_hour = decimal::div_round(per_hour_10ng, 1_000);
    format!("{} micrograms/hour", decimal::format_wide(per_hour, 2))
}

/// `2000 micrograms/mL`: a concentration to 0.01 micrograms/mL.
pub fn concentration(concentration: Concentration) -> String {
    format!("{} micrograms/mL", rounded(concentration.as_ng_per_ml(), 3, 2))
}

/// `0.193 mL/day`: a volume rate to 0.001 mL/day.
pub fn volume_rate(rate: VolumeRate) -> String {
    format!("{} mL/day", rounded(rate.as_nl_per_day(), 6, 3))
}

/// `12.5%`, `91.67%`, `-20%`: a change in millionths of a percent, to 0.01 % (halves away from
/// zero), so that a change just above a limit does not read as the limit.
pub fn percent(micro_percent: i64) -> String {
    let magnitude = micro_percent.unsigned_abs();
    let hundredths = decimal::div_round(u128::from(magnitude), 10_000);
    // A value that rounds to a whole percent but is not one is shown in full: 30.0025% must
    // not read as 30% beside a 30% limit.
    if hundredths.is_multiple_of(100) && !magnitude.is_multiple_of(1_000_000) {
        let sign = if micro_percent < 0 { "-" } else { "" };
        return format!("{sign}{}%", decimal::format(magnitude, 6));
    }
    let sign = if micro_percent < 0 && hundredths > 0 { "-" } else { "" };
    format!("{sign}{}%", decimal::format_wide(hundredths, 2))
}

/// `3 days 4 h`, `2 h 30 min`, `45 min`, `20 s`: a span in its two largest units, cut (never
/// rounded up: 23 h 59 min 40 s is `23 h 59 min`, not a day).
pub fn duration(span: Duration) -> String {
    let ms = span.as_ms();
    if ms < 60_000 {
        return format!("{} s", ms / 1_000);
    }
    let minutes = ms / 60_000;
    let (days, hours, mins) = (minutes / 1_440, minutes / 60 % 24, minutes % 60);
    let day_word = |d: u64| if d == 1 { "day" } else { "days" };
    match (days, hours, mins) {
        (0, 0, m) => format!("{m} min"),
        (0, h, 0) => format!("{h} h"),
        (0, h, m) => format!("{h} h {m} min"),
        (d, 0, _) => format!("{d} {}", day_word(d)),
        (d, h, _) => format!("{d} {} {h} h", day_word(d)),
    }
}

/// A prescription in one line for people, its figures in `itb_dose::text`'s style.
pub fn prescription_words(prescription: &Prescription) -> String {
    let mut words = match prescription.therapy() {
        Therapy::Stopped => "stopped (no delivery)".to_owned(),
        Therapy::SimpleContinuous { rate } => format!("simple continuous {}", dose_rate(*rate)),
        Therapy::Flex(FlexSchedule::Daily(day)) => match day.steps().len() {
            1 => "flex, 1 step a day".to_owned(),
            steps => format!("flex, {steps} steps a day"),
        },
        Therapy::Flex(FlexSchedule::Weekly(_)) => "flex, a pattern for each day of the week".to_owned(),
        Therapy::PeriodicBolus(periodic) => {
            let basal = if periodic.basal.is_zero() {
                String::new()
            } else {
                format!(" over a basal {}", dose_rate(periodic.basal))
            };
            format!(
                "periodic bolus {} over {} every {} from {}{basal}",
                mass(periodic.bolus),
                duration(periodic.bolus_duration),
                duration(periodic.interval),
                periodic.first_at
            )
        }
    };
    if let Some(ptm) = prescription.ptm() {
        words.push_str(&format!(
            "; PTM {} over {}, at least {} apart, at most {} in 24 hours",
            mass(ptm.bolus),
            duration(ptm.bolus_duration),
            duration(ptm.lockout),
            ptm.max_per_day
        ));
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().expect("valid instant")
    }

    #[test]
    fn dates_in_the_nhs_style() {
        let london = service_zone();
        assert_eq!(date(at("2026-11-25T10:00:00Z"), &london), "25 Nov 2026");
        assert_eq!(date_long(at("2026-11-25T10:00:00Z"), &london), "25 November 2026");
        assert_eq!(date_time(at("2026-11-25T10:00:00Z"), &london), "Wed 25 Nov 2026 10:00");
        // Summer time: 09:00 UTC is 10:00 in London.
        assert_eq!(date_time(at("2026-07-01T09:00:00Z"), &london), "Wed 1 Jul 2026 10:00");
        assert_eq!(date_time(at("2026-11-25T10:00:00Z"), &TimeZone::UTC), "Wed 25 Nov 2026 10:00 UTC");
        let new_york = TimeZone::get("America/New_York").expect("bundled");
        assert_eq!(date_time(at("2026-11-25T15:00:00Z"), &new_york), "Wed 25 Nov 2026 10:00 America/New_York");
        assert_eq!(civil_date_time("2026-11-25T10:07:59".parse().expect("civil")), "Wed 25 Nov 2026 10:07");
    }

    #[test]
    fn quantities_to_a_precision_a_person_can_use() {
        assert_eq!(volume(Volume::nl(19_876_543)), "19.88 mL");
        assert_eq!(volume(Volume::nl(20_000_000)), "20 mL");
        assert_eq!(volume(Volume::nl(4_999)), "0 mL");
        assert_eq!(volume(Volume::nl(5_000)), "0.01 mL");
        assert_eq!(mass(Mass::ng(385_000)), "385 micrograms");
        assert_eq!(mass(Mass::ng(16_041_667)), "16041.67 micrograms");
        assert_eq!(dose_rate(DoseRate::micrograms_per_day(385)), "385 micrograms/day");
        assert_eq!(dose_rate_per_hour(DoseRate::micrograms_per_day(385)), "16.04 micrograms/hour");
        assert_eq!(dose_rate_per_hour(DoseRate::micrograms_per_day(1440)), "60 micrograms/hour");
        assert_eq!(concentration(Concentration::micrograms_per_ml(2000)), "2000 micrograms/mL");
        assert_eq!(volume_rate(VolumeRate::nl_per_day(192_500)), "0.193 mL/day");
        assert_eq!(percent(91_666_571), "91.67%");
        assert_eq!(percent(30_000_000), "30%");
        assert_eq!(percent(30_040_000), "30.04%");
        assert_eq!(percent(30_002_500), "30.0025%");
        assert_eq!(percent(29_997_500), "29.9975%");
        assert_eq!(percent(-20_000_000), "-20%");
        assert_eq!(percent(12_450_000), "12.45%");
        assert_eq!(percent(-4_000), "-0.004%");
        assert_eq!(duration(Duration::ms(20_900)), "20 s");
        assert_eq!(duration(Duration::ms(86_380_000)), "23 h 59 min");
        assert_eq!(duration(Duration::minutes(45)), "45 min");
        assert_eq!(duration(Duration::minutes(150)), "2 h 30 min");
        assert_eq!(duration(Duration::hours(3)), "3 h");
        assert_eq!(duration(Duration::hours(76)), "3 days 4 h");
        assert_eq!(duration(Duration::days(1)), "1 day");
    }
}
