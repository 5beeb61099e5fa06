//! Random command and fault sequences never break mass balance, hard limits or log bounds.

mod common;

use common::*;
use itb_dose::{Concentration, Duration, Mass, Volume};
use itb_pump::world::{CatheterState, InjectInto};
use itb_pump::{AlarmKind, Command, Instant, Reply, Request, WorldAction};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Step {
    Wait(u64),
    Command(Command),
    Act(WorldAction),
}

fn command() -> impl Strategy<Value = Command> {
    prop_oneof![
        Just(Command::Interrogate),
        (1u64..=5000).prop_map(|d| Command::Program { prescription: continuous(d) }),
        // The same PTM limits on a new dose: the lockout runs on across the change.
        (100u64..=1000).prop_map(|d| Command::Program { prescription: with_ptm(d) }),
        (0u64..=25_000_000).prop_map(|nl| Command::RecordWithdrawal { volume: Volume::nl(nl) }),
        (0u64..=25, prop::sample::select(vec![50u64, 500, 1000, 2000, 3000]), any::<bool>()).prop_map(
            |(ml, c, bridge)| {
                Command::Refill { volume: Volume::ml(ml), concentration: Concentration::micrograms_per_ml(c), bridge }
            }
        ),
        (1u64..=700, 0u64..=180, any::<bool>()).prop_map(|(m, min, then_stop)| Command::SingleBolus {
            dose: Mass::micrograms(m),
            duration: Duration::minutes(min),
            then_stop,
        }),
        any::<bool>().prop_map(|catheter_only| Command::PrimingBolus { catheter_only }),
        Just(Command::PtmBolus),
        (0u64..=25).prop_map(|ml| Command::SetAlarmThreshold { threshold: Volume::ml(ml) }),
        prop::sample::select(AlarmKind::ALL.to_vec()).prop_map(|kind| Command::ClearAlarm { kind }),
        Just(Command::Stop),
        Just(Command::Resume),
        (-600i64..=600).prop_map(|minutes| Command::SetClock {
            reading: itb_pump::PumpTime::from_ms(start().as_ms() + minutes * 60_000),
        }),
    ]
}

fn action() -> impl Strategy<Value = WorldAction> {
    prop_oneof![
        Just(WorldAction::Withdraw),
        (0u64..=30, prop::sample::select(vec![50u64, 500, 2000]), any::<bool>()).prop_map(|(ml, c, pocket)| {
            WorldAction::Inject {
                volume: Volume::ml(ml),
                concentration: Concentration::micrograms_per_ml(c),
                into: if pocket { InjectInto::Pocket } else { InjectInto::Reservoir },
            }
        }),
        (0u64..=48).prop_map(|h| WorldAction::MriScan { stall_for: Duration::hours(h) }),
        prop_oneof![
            Just(CatheterState::Patent),
            Just(CatheterState::Occluded),
            Just(CatheterState::Disconnected),
            (0u32..=1_000_000).prop_map(|fraction_ppm| CatheterState::Leaking { fraction_ppm }),
        ]
        .prop_map(WorldAction::Catheter),
        Just(WorldAction::ReplaceCatheter),
        (-500_000i64..=500_000).prop_map(|ppm| WorldAction::RateError { ppm }),
        (0u32..=1_000_000).prop_map(|capacity_loss_ppm| WorldAction::BatteryDefect { capacity_loss_ppm }),
        Just(WorldAction::LowBatteryReset),
        any::<bool>().prop_map(|critical| WorldAction::MemoryError { critical }),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        1 => (0u64..=10 * 86_400_000).prop_map(Step::Wait),
        // Minutes to hours: PTM presses close together, so the lockout and the daily maximum are
        // really tried.
        3 => (0u64..=3 * 3_600_000).prop_map(Step::Wait),
        4 => command().prop_map(Step::Command),
        2 => Just(Step::Command(Command::PtmBolus)),
        2 => action().prop_map(Step::Act),
    ]
}

/// The PTM limits of [`ptm_prescription`].
const PTM_LOCKOUT: Duration = Duration::hours(1);
const PTM_MAX_PER_DAY: u32 = 3;

fn with_ptm(micrograms_per_day: u64) -> itb_dose::Prescription {
    prescription(&format!(
        "mode = \"simple_continuous\"\ndose = \"{micrograms_per_day} micrograms/day\"\n[ptm]\nbolus_dose = \"20 micrograms\"\n\
         bolus_duration = \"10 min\"\nlockout = \"1 h\"\nmax_boluses_per_day = 3\n"
    ))
}

fn ptm_prescription() -> itb_dose::Prescription {
    with_ptm(300)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn random_sequences_keep_every_invariant(steps in prop::collection::vec(step(), 1..60)) {
        let mut pump = implant(ptm_prescription(), 20, 2000);
        let max_rate = pump.profile().rates.max.value;
        let capacity = pump.profile().reservoir.capacity.value;
        let mut t = start();
        // The true instants of every PTM bolus the pump accepted, from its replies: the lockout and
        // the 24-hour maximum hold on the true timeline, whatever the pump's clock was set to.
        let mut ptm_starts: Vec<Instant> = Vec::new();
        for (index, step) in steps.into_iter().enumerate() {
            match step {
                Step::Wait(ms) => { t = t.plus(Duration::ms(ms)); pump.advance_to(t); }
                Step::Command(command) => {
                    let is_ptm = command == Command::PtmBolus;
                    let reply = pump.handle(t, Request::clinician(Some(index as u64), command));
                    if is_ptm && let Ok(Reply::BolusStarted { .. }) = reply {
                        ptm_starts.push(pump.now());
                    }
                }
                Step::Act(action) => { pump.act(t, action); }
            }
            let status = pump.status();
            prop_assert!(pump.world().mass_balance_holds(), "mass balance after step {index}");
            prop_assert!(status.rate <= max_rate, "rate {} above max", status.rate);
            prop_assert!(status.reservoir <= capacity);
            prop_assert!(!status.awaiting_refill || status.reservoir.is_zero(), "awaiting a refill, not empty");
            prop_assert!(pump.log().len() <= pump.log().capacity());
            prop_assert!(pump.history().count() <= itb_pump::THERAPY_HISTORY_MAX);
            prop_assert!(status.ptm_boluses_last_24h <= PTM_MAX_PER_DAY);
            for (i, first) in ptm_starts.iter().enumerate() {
                for later in &ptm_starts[i + 1..] {
                    prop_assert!(
                        later.since(*first) >= PTM_LOCKOUT,
                        "PTM boluses at {first} and {later}: within the lockout"
                    );
                }
                let within_a_day = ptm_starts[i..].iter().take_while(|at| at.since(*first) < Duration::DAY).count();
                prop_assert!(
                    within_a_day <= PTM_MAX_PER_DAY as usize,
                    "{within_a_day} PTM boluses in the 24 hours from {first}"
                );
            }
        }
    }
}

#[cfg(feature = "serde")]
proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// A pump killed and restored from its snapshot after every step lives the same life as one
    /// never interrupted; no state a pump reaches is refused on restore.
    #[test]
    fn a_restart_after_every_step_changes_nothing(steps in prop::collection::vec(step(), 1..40)) {
        use itb_pump::{from_snapshot, to_snapshot};
        let mut steady = implant(ptm_prescription(), 20, 2000);
        let mut restarted = from_snapshot(&to_snapshot(&steady)).expect("restores at implant");
        let mut t = start();
        for (index, step) in steps.into_iter().enumerate() {
            let id = Some(index as u64);
            match step {
                Step::Wait(ms) => {
                    t = t.plus(Duration::ms(ms));
                    steady.advance_to(t);
                    restarted.advance_to(t);
                }
                Step::Command(command) => {
                    let a = steady.handle(t, Request::clinician(id, command.clone()));
                    let b = restarted.handle(t, Request::clinician(id, command));
                    prop_assert_eq!(a, b, "answer at step {}", index);
                }
                Step::Act(action) => {
                    prop_assert_eq!(steady.act(t, action), restarted.act(t, action));
                }
            }
            let bytes = to_snapshot(&restarted);
            prop_assert!(bytes == to_snapshot(&steady), "state after step {}", index);
            restarted = match from_snapshot(&bytes) {
                Ok(pump) => pump,
                Err(error) => return Err(TestCaseError::fail(format!("step {index}: {error}"))),
            };
        }
    }
}
