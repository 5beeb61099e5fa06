//! The truth: what is really in the reservoir, the tubing and catheter, and where the drug went.
//!
//! The firmware never reads this module's state; it knows only what a pump can sense. The
//! simulation (and a safety reviewer) reads both and sees the gap: over-infusion, a stalled
//! motor, a leaking catheter or a pocket fill show up here first, and in clinic only at refill or
//! as symptoms.
//!
//! # Invariants
//! Mass balance holds to the nanogram and the nanolitre at every step:
//! `into_reservoir + into_pocket = reservoir + fluid path + to_csf + to_tissue + withdrawn`,
//! and `to_tissue` is exactly the sum of the tissue ledger's causes.

use std::collections::VecDeque;

use itb_dose::{Concentration, Mass, Rounding, Volume};

use crate::time::Instant;

/// A quantity of solution: its volume and the drug in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Fluid {
    /// Volume, nanolitres.
    pub volume: Volume,
    /// Drug, nanograms.
    pub mass: Mass,
}

impl Fluid {
    /// `volume` of a solution at `concentration`.
    pub fn of(volume: Volume, concentration: Concentration) -> Self {
        let mass = concentration.mass_in(volume, Rounding::Down).unwrap_or(Mass::ZERO);
        Self { volume, mass }
    }
    /// Takes `volume` (at most all of it) with its share of the drug, rounded down; what is
    /// left keeps the rest, so nothing is lost.
    pub fn take(&mut self, volume: Volume) -> Fluid {
        let volume = volume.min(self.volume);
        if volume == self.volume {
            return std::mem::take(self);
        }
        let whole = self.volume.as_nl().max(1);
        let share = match self.mass.as_ng().checked_mul(volume.as_nl()) {
            Some(product) => product / whole,
            None => u64::try_from(u128::from(self.mass.as_ng()) * u128::from(volume.as_nl()) / u128::from(whole))
                .unwrap_or(0),
        };
        let mass = Mass::ng(share);
        self.volume = self.volume.saturating_sub(volume);
        self.mass = self.mass.saturating_sub(mass);
        Fluid { volume, mass }
    }
    /// Adds another fluid.
    pub fn add(&mut self, other: Fluid) {
        self.volume = Volume::nl(self.volume.as_nl().saturating_add(other.volume.as_nl()));
        self.mass = Mass::ng(self.mass.as_ng().saturating_add(other.mass.as_ng()));
    }
    /// Concentration, rounded down; zero for no volume.
    pub fn concentration(&self) -> Concentration {
        if self.volume.is_zero() {
            return Concentration::ZERO;
        }
        let ng_per_ml = u128::from(self.mass.as_ng()) * 1_000_000 / u128::from(self.volume.as_nl());
        Concentration::ng_per_ml(u64::try_from(ng_per_ml).unwrap_or(u64::MAX))
    }
    fn close_in_concentration(&self, other: &Fluid) -> bool {
        // |c1 - c2| <= c1 / 1000, by cross-multiplication.
        let a = u128::from(self.mass.as_ng()) * u128::from(other.volume.as_nl());
        let b = u128::from(other.mass.as_ng()) * u128::from(self.volume.as_nl());
        a.abs_diff(b) * 1_000 <= a.max(b)
    }
}

/// The state of the catheter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum CatheterState {
    /// Drug flows to the intrathecal space.
    #[default]
    Patent,
    /// Nothing flows; the pump cannot tell.
    Occluded,
    /// A fraction (parts per million) of what flows leaks into tissue.
    Leaking {
        /// Fraction lost, parts per million.
        fraction_ppm: u32,
    },
    /// The catheter is off the pump: everything goes into tissue.
    Disconnected,
}

/// Where an injection at refill goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InjectInto {
    /// Into the reservoir, as intended.
    Reservoir,
    /// Into the pocket under the skin: a pocket fill.
    Pocket,
}

/// The largest delivery error the model accepts: ten times the programmed volume.
pub const RATE_ERROR_MAX_PPM: i64 = 10_000_000;

/// Most slugs of distinct solution the fluid path tracks.
const PATH_SLUGS_MAX: usize = 16;

/// The pump tubing and catheter as a first-in, first-out pipe of slugs.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
struct FluidPath {
    capacity: Volume,
    slugs: VecDeque<Fluid>,
    content: Fluid,
}

impl FluidPath {
    fn new(capacity: Volume) -> Self {
        Self { capacity, slugs: VecDeque::with_capacity(PATH_SLUGS_MAX + 1), content: Fluid::default() }
    }

    /// Pushes fluid in at the pump; returns what leaves at the catheter tip.
    fn push(&mut self, fluid: Fluid) -> Fluid {
        if fluid.volume.is_zero() {
            return Fluid::default();
        }
        self.content.add(fluid);
        match self.slugs.back_mut() {
            Some(back) if back.close_in_concentration(&fluid) => back.add(fluid),
            _ => self.slugs.push_back(fluid),
        }
        if self.slugs.len() > PATH_SLUGS_MAX {
            self.merge_closest();
        }
        let over = self.content.volume.saturating_sub(self.capacity);
        self.pop(over)
    }

    fn pop(&mut self, volume: Volume) -> Fluid {
        let mut out = Fluid::default();
        let mut wanted = volume;
        while !wanted.is_zero() {
            let Some(front) = self.slugs.front_mut() else { break };
            let part = front.take(wanted);
            wanted = wanted.saturating_sub(part.volume);
            out.add(part);
            if front.volume.is_zero() {
                self.slugs.pop_front();
            }
        }
        self.content.volume = self.content.volume.saturating_sub(out.volume);
        self.content.mass = self.content.mass.saturating_sub(out.mass);
        out
    }

    fn merge_closest(&mut self) {
        let distance = |a: &Fluid, b: &Fluid| {
            let x = u128::from(a.mass.as_ng()) * u128::from(b.volume.as_nl());
            let y = u128::from(b.mass.as_ng()) * u128::from(a.volume.as_nl());
            x.abs_diff(y)
        };
        let index =
            (0..self.slugs.len() - 1).min_by_key(|&i| distance(&self.slugs[i], &self.slugs[i + 1])).unwrap_or(0);
        if let Some(next) = self.slugs.remove(index + 1) {
            self.slugs[index].add(next);
        }
    }

    /// Empties the path (a catheter replaced, or the catheter's part of it).
    fn drain(&mut self) -> Fluid {
        self.slugs.clear();
        std::mem::take(&mut self.content)
    }
}

/// Why drug went into tissue instead of the cerebrospinal fluid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TissueCause {
    /// Injected into the pocket under the skin instead of the reservoir.
    PocketFill,
    /// Injected into the reservoir beyond its capacity: the rest ran into the pocket.
    Overfill,
    /// Leaked from a leaking catheter.
    CatheterLeak,
    /// Left the pump tubing while the catheter was off the pump.
    DisconnectedCatheter,
    /// Was in the tubing and catheter when the catheter was replaced.
    ReplacedCatheter,
}

impl TissueCause {
    /// Every cause, in order.
    pub const ALL: [TissueCause; 5] = [
        TissueCause::PocketFill,
        TissueCause::Overfill,
        TissueCause::CatheterLeak,
        TissueCause::DisconnectedCatheter,
        TissueCause::ReplacedCatheter,
    ];
    /// The name used in files and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            TissueCause::PocketFill => "pocket_fill",
            TissueCause::Overfill => "overfill",
            TissueCause::CatheterLeak => "catheter_leak",
            TissueCause::DisconnectedCatheter => "disconnected_catheter",
            TissueCause::ReplacedCatheter => "replaced_catheter",
        }
    }
    /// The cause in words, for people.
    pub fn describe(self) -> &'static str {
        match self {
            TissueCause::PocketFill => "pocket fill",
            TissueCause::Overfill => "reservoir overfilled",
            TissueCause::CatheterLeak => "catheter leak",
            TissueCause::DisconnectedCatheter => "disconnected catheter",
            TissueCause::ReplacedCatheter => "contents of a replaced catheter",
        }
    }
}

/// Drug that went into tissue, by cause. The causes add up to [`Ledger::to_tissue`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct TissueByCause {
    /// Pocket fills.
    pub pocket_fill: Fluid,
    /// Reservoir overfills.
    pub overfill: Fluid,
    /// Catheter leaks.
    pub catheter_leak: Fluid,
    /// A disconnected catheter.
    pub disconnected_catheter: Fluid,
    /// Contents of replaced catheters.
    pub replaced_catheter: Fluid,
}

impl TissueByCause {
    /// What went into tissue for `cause`.
    pub fn get(&self, cause: TissueCause) -> Fluid {
        match cause {
            TissueCause::PocketFill => self.pocket_fill,
            TissueCause::Overfill => self.overfill,
            TissueCause::CatheterLeak => self.catheter_leak,
            TissueCause::DisconnectedCatheter => self.disconnected_catheter,
            TissueCause::ReplacedCatheter => self.replaced_catheter,
        }
    }
    fn slot(&mut self, cause: TissueCause) -> &mut Fluid {
        match cause {
            TissueCause::PocketFill => &mut self.pocket_fill,
            TissueCause::Overfill => &mut self.overfill,
            TissueCause::CatheterLeak => &mut self.catheter_leak,
            TissueCause::DisconnectedCatheter => &mut self.disconnected_catheter,
            TissueCause::ReplacedCatheter => &mut self.replaced_catheter,
        }
    }
    /// Every cause with what went into tissue for it, in [`TissueCause::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = (TissueCause, Fluid)> + '_ {
        TissueCause::ALL.into_iter().map(|cause| (cause, self.get(cause)))
    }
    /// The sum over every cause.
    pub fn total(&self) -> Fluid {
        self.iter().fold(Fluid::default(), |mut sum, (_, fluid)| {
            sum.add(fluid);
            sum
        })
    }
}

/// Where all the drug that ever entered the body or the pump has gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Ledger {
    /// Injected into the reservoir.
    pub into_reservoir: Fluid,
    /// Injected into the pocket (pocket fills, and what overflowed the reservoir).
    pub into_pocket: Fluid,
    /// Withdrawn from the reservoir at refills.
    pub withdrawn: Fluid,
    /// Reached the cerebrospinal fluid.
    pub to_csf: Fluid,
    /// Went into tissue: pocket fills, overfills, catheter leaks, a disconnected catheter, the
    /// contents of a replaced catheter.
    pub to_tissue: Fluid,
    /// `to_tissue` by cause; the causes add up to it exactly.
    pub tissue: TissueByCause,
}

impl Ledger {
    fn add_to_tissue(&mut self, cause: TissueCause, fluid: Fluid) {
        self.to_tissue.add(fluid);
        self.tissue.slot(cause).add(fluid);
    }
}

/// The hardware and the body around it: the truth.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct World {
    reservoir: Fluid,
    path: FluidPath,
    catheter: CatheterState,
    rate_error_ppm: i64,
    rate_remainder: u64,
    motor_stalled_until: Option<Instant>,
    /// The battery cell's capacity lost to a defect, parts per million.
    battery_capacity_loss_ppm: u32,
    ledger: Ledger,
}

impl World {
    /// A new pump with an empty reservoir and an empty fluid path of `dead_volume`.
    pub fn new(dead_volume: Volume, rate_error_ppm: i64) -> Self {
        Self {
            reservoir: Fluid::default(),
            path: FluidPath::new(dead_volume),
            catheter: CatheterState::Patent,
            rate_error_ppm: rate_error_ppm.clamp(-1_000_000, RATE_ERROR_MAX_PPM),
            rate_remainder: 0,
            motor_stalled_until: None,
            battery_capacity_loss_ppm: 0,
            ledger: Ledger::default(),
        }
    }

    /// The motor tries to move `commanded` at `now`; returns what left the reservoir.
    pub fn pump(&mut self, commanded: Volume, now: Instant) -> Fluid {
        if self.is_stalled(now) || self.catheter == CatheterState::Occluded || commanded.is_zero() {
            return Fluid::default();
        }
        let factor = u64::try_from(1_000_000 + self.rate_error_ppm).unwrap_or(0);
        let actual = match commanded.as_nl().checked_mul(factor).and_then(|v| v.checked_add(self.rate_remainder)) {
            Some(scaled) => {
                self.rate_remainder = scaled % 1_000_000;
                Volume::nl(scaled / 1_000_000)
            }
            None => {
                let scaled = u128::from(commanded.as_nl()) * u128::from(factor) + u128::from(self.rate_remainder);
                self.rate_remainder = (scaled % 1_000_000) as u64;
                Volume::nl(u64::try_from(scaled / 1_000_000).unwrap_or(u64::MAX))
            }
        };
        let moved = self.reservoir.take(actual);
        let out = self.path.push(moved);
        let to_tissue = match self.catheter {
            CatheterState::Patent | CatheterState::Occluded => Volume::ZERO,
            CatheterState::Disconnected => out.volume,
            CatheterState::Leaking { fraction_ppm } => Volume::nl(
                u64::try_from(u128::from(out.volume.as_nl()) * u128::from(fraction_ppm.min(1_000_000)) / 1_000_000)
                    .unwrap_or(0),
            ),
        };
        let mut out = out;
        let lost = out.take(to_tissue);
        let cause = match self.catheter {
            CatheterState::Disconnected => TissueCause::DisconnectedCatheter,
            _ => TissueCause::CatheterLeak,
        };
        self.ledger.add_to_tissue(cause, lost);
        self.ledger.to_csf.add(out);
        debug_assert!(self.mass_balance_holds());
        moved
    }

    /// The rate at which drug really leaves the reservoir when the firmware commands
    /// `commanded`: nothing while stalled, occluded or empty; otherwise with the rate error.
    pub fn true_rate(&self, commanded: itb_dose::VolumeRate, now: Instant) -> itb_dose::VolumeRate {
        if self.is_stalled(now) || self.catheter == CatheterState::Occluded || self.reservoir.volume.is_zero() {
            return itb_dose::VolumeRate::ZERO;
        }
        let factor = u128::try_from(1_000_000 + self.rate_error_ppm).unwrap_or(0);
        let rate = u128::from(commanded.as_nl_per_day()) * factor / 1_000_000;
        itb_dose::VolumeRate::nl_per_day(u64::try_from(rate).unwrap_or(u64::MAX))
    }

    /// Withdraws everything in the reservoir (the first step of a refill); returns it.
    pub fn withdraw(&mut self) -> Fluid {
        let out = std::mem::take(&mut self.reservoir);
        self.ledger.withdrawn.add(out);
        debug_assert!(self.mass_balance_holds());
        out
    }

    /// Injects `fluid` into the reservoir (up to `capacity`; the rest runs into the pocket) or
    /// into the pocket.
    pub fn inject(&mut self, mut fluid: Fluid, into: InjectInto, capacity: Volume) {
        let cause = match into {
            InjectInto::Reservoir => {
                let room = capacity.saturating_sub(self.reservoir.volume);
                let part = fluid.take(room);
                self.reservoir.add(part);
                self.ledger.into_reservoir.add(part);
                TissueCause::Overfill
            }
            InjectInto::Pocket => TissueCause::PocketFill,
        };
        self.ledger.into_pocket.add(fluid);
        self.ledger.add_to_tissue(cause, fluid);
        debug_assert!(self.mass_balance_holds());
    }

    /// Replaces the catheter: its old contents go into tissue and it starts empty.
    pub fn replace_catheter(&mut self, dead_volume: Volume) {
        let old = self.path.drain();
        self.ledger.add_to_tissue(TissueCause::ReplacedCatheter, old);
        self.path = FluidPath::new(dead_volume);
        self.catheter = CatheterState::Patent;
        debug_assert!(self.mass_balance_holds());
    }

    /// Sets the catheter's state.
    pub fn set_catheter(&mut self, state: CatheterState) {
        self.catheter = state;
    }
    /// Sets the rate error, parts per million of the commanded volume (+145_000 is 14.5 % over).
    pub fn set_rate_error_ppm(&mut self, ppm: i64) {
        self.rate_error_ppm = ppm.clamp(-1_000_000, RATE_ERROR_MAX_PPM);
    }
    /// Stalls the motor until `until` (an MRI scan).
    pub fn stall_motor(&mut self, until: Instant) {
        self.motor_stalled_until = Some(self.motor_stalled_until.map_or(until, |u| u.max(until)));
    }
    /// True when the motor is stalled at `now`.
    pub fn is_stalled(&self, now: Instant) -> bool {
        self.motor_stalled_until.is_some_and(|until| now < until)
    }
    /// When the motor restarts, if it is stalled at `now`.
    pub fn stall_ends_at(&self, now: Instant) -> Option<Instant> {
        self.motor_stalled_until.filter(|until| now < *until)
    }
    /// The next instant after `now` at which the world changes by itself (a stall ends): the
    /// simulation's schedule, never the firmware's knowledge.
    pub fn next_change_at(&self, now: Instant) -> Option<Instant> {
        self.stall_ends_at(now)
    }
    /// A battery defect: the cell loses `capacity_loss_ppm` of its capacity (in total at most all).
    pub fn battery_defect(&mut self, capacity_loss_ppm: u32) {
        self.battery_capacity_loss_ppm =
            self.battery_capacity_loss_ppm.saturating_add(capacity_loss_ppm).min(1_000_000);
    }
    /// The battery cell's capacity lost to defects, parts per million.
    pub fn battery_capacity_loss_ppm(&self) -> u32 {
        self.battery_capacity_loss_ppm
    }

    /// What is in the reservoir.
    pub fn reservoir(&self) -> Fluid {
        self.reservoir
    }
    /// What is in the tubing and catheter.
    pub fn fluid_path(&self) -> Fluid {
        self.path.content
    }
    /// The fluid path's volume.
    pub fn fluid_path_capacity(&self) -> Volume {
        self.path.capacity
    }
    /// The catheter.
    pub fn catheter(&self) -> CatheterState {
        self.catheter
    }
    /// The rate error in parts per million.
    pub fn rate_error_ppm(&self) -> i64 {
        self.rate_error_ppm
    }
    /// Where the drug went.
    pub fn ledger(&self) -> Ledger {
        self.ledger
    }

    /// The mass (nanograms) and volume (nanolitres) balances, each as (in, accounted for).
    pub fn balance(&self) -> ((u128, u128), (u128, u128)) {
        let l = &self.ledger;
        let mass = |f: Fluid| u128::from(f.mass.as_ng());
        let volume = |f: Fluid| u128::from(f.volume.as_nl());
        let sides = |q: &dyn Fn(Fluid) -> u128| {
            let inflow = q(l.into_reservoir) + q(l.into_pocket);
            let accounted = q(self.reservoir) + q(self.path.content) + q(l.to_csf) + q(l.to_tissue) + q(l.withdrawn);
            (inflow, accounted)
        };
        (sides(&mass), sides(&volume))
    }
    /// Checks the invariants of a world read back from a snapshot: mass balance, the fluid
    /// path within its bound and its volume `dead_volume`, the reservoir within `capacity`.
    #[cfg(feature = "serde")]
    pub(crate) fn check_restored(&self, dead_volume: Volume, capacity: Volume) -> Result<(), String> {
        if self.ledger.tissue.total() != self.ledger.to_tissue {
            return Err("the drug in tissue by cause does not add up to the drug in tissue".to_owned());
        }
        if !self.mass_balance_holds() {
            let ((mass_in, mass_out), (volume_in, volume_out)) = self.balance();
            return Err(format!(
                "the world's mass balance does not hold: {mass_in} ng in, {mass_out} ng accounted for; \
                 {volume_in} nL in, {volume_out} nL accounted for"
            ));
        }
        if self.path.slugs.len() > PATH_SLUGS_MAX {
            return Err(format!("the fluid path holds {} slugs, more than {PATH_SLUGS_MAX}", self.path.slugs.len()));
        }
        if self.path.capacity != dead_volume || self.path.content.volume > self.path.capacity {
            return Err("the fluid path's volume does not match the implanted tubing and catheter".to_owned());
        }
        if self.reservoir.volume > capacity {
            return Err(format!("the reservoir holds {}, more than its capacity {capacity}", self.reservoir.volume));
        }
        if self.battery_capacity_loss_ppm > 1_000_000 {
            return Err(format!(
                "the battery has lost {} ppm of its capacity, more than all",
                self.battery_capacity_loss_ppm
            ));
        }
        if !(-1_000_000..=RATE_ERROR_MAX_PPM).contains(&self.rate_error_ppm) {
            return Err(format!("a rate error of {} ppm is outside -100 % to +1000 %", self.rate_error_ppm));
        }
        Ok(())
    }

    /// True when mass and volume balance exactly.
    pub fn mass_balance_holds(&self) -> bool {
        let ((mass_in, mass_out), (volume_in, volume_out)) = self.balance();
        let slugs_sum = self.path.slugs.iter().fold(Fluid::default(), |mut sum, s| {
            sum.add(*s);
            sum
        });
        mass_in == mass_out
            && volume_in == volume_out
            && slugs_sum == self.path.content
            && self.ledger.tissue.total() == self.ledger.to_tissue
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conc(micrograms: u64) -> Concentration {
        Concentration::micrograms_per_ml(micrograms)
    }

    #[test]
    fn old_drug_leaves_the_catheter_first() {
        let mut world = World::new(Volume::nl(300_000), 0);
        world.inject(Fluid::of(Volume::ml(20), conc(500)), InjectInto::Reservoir, Volume::ml(20));
        let now = Instant::from_ms(0);
        // Fill the path with 500 micrograms/mL.
        world.pump(Volume::nl(300_000), now);
        assert_eq!(world.ledger().to_csf, Fluid::default());
        // Change the reservoir to 2000: the first 0.3 mL out is still 500.
        world.withdraw();
        world.inject(Fluid::of(Volume::ml(20), conc(2000)), InjectInto::Reservoir, Volume::ml(20));
        world.pump(Volume::nl(300_000), now);
        assert_eq!(world.ledger().to_csf.mass, Mass::micrograms(150));
        world.pump(Volume::nl(100_000), now);
        assert_eq!(world.ledger().to_csf.mass, Mass::micrograms(350));
        assert!(world.mass_balance_holds());
    }

    #[test]
    fn tissue_is_kept_by_cause_and_adds_up() {
        let mut world = World::new(Volume::nl(300_000), 0);
        let now = Instant::from_ms(0);
        let fluid = |ml: u64, micrograms: u64| Fluid { volume: Volume::nl(ml), mass: Mass::micrograms(micrograms) };
        // A pocket fill of 5 mL of 2000 micrograms/mL puts exactly 10 000 micrograms into tissue.
        world.inject(Fluid::of(Volume::ml(5), conc(2000)), InjectInto::Pocket, Volume::ml(20));
        assert_eq!(world.ledger().tissue.get(TissueCause::PocketFill), fluid(5_000_000, 10_000));
        // 25 mL of 500 micrograms/mL into a 20 mL reservoir: 5 mL (2500 micrograms) overflows.
        world.inject(Fluid::of(Volume::ml(25), conc(500)), InjectInto::Reservoir, Volume::ml(20));
        assert_eq!(world.ledger().tissue.get(TissueCause::Overfill), fluid(5_000_000, 2_500));
        // Fill the tubing and catheter, then leak a quarter of 1 mL: 0.25 mL, 125 micrograms.
        world.pump(Volume::nl(300_000), now);
        world.set_catheter(CatheterState::Leaking { fraction_ppm: 250_000 });
        world.pump(Volume::ml(1), now);
        assert_eq!(world.ledger().tissue.get(TissueCause::CatheterLeak), fluid(250_000, 125));
        // Disconnected: all 0.2 mL that leaves the tubing, 100 micrograms.
        world.set_catheter(CatheterState::Disconnected);
        world.pump(Volume::nl(200_000), now);
        assert_eq!(world.ledger().tissue.get(TissueCause::DisconnectedCatheter), fluid(200_000, 100));
        // Replacing the catheter: its 0.3 mL (150 micrograms) goes into tissue.
        world.replace_catheter(Volume::nl(300_000));
        assert_eq!(world.ledger().tissue.get(TissueCause::ReplacedCatheter), fluid(300_000, 150));
        let ledger = world.ledger();
        assert_eq!(ledger.tissue.total(), ledger.to_tissue);
        assert_eq!(ledger.to_tissue, fluid(10_750_000, 12_875));
        assert_eq!(TissueCause::ALL.iter().map(|c| ledger.tissue.get(*c).mass.as_ng()).sum::<u64>(), 12_875_000);
        assert!(world.mass_balance_holds());
    }

    #[test]
    fn leaks_pocket_fills_and_over_infusion() {
        let mut world = World::new(Volume::ZERO, 145_000);
        world.inject(Fluid::of(Volume::ml(10), conc(2000)), InjectInto::Reservoir, Volume::ml(20));
        world.inject(Fluid::of(Volume::ml(5), conc(2000)), InjectInto::Pocket, Volume::ml(20));
        let now = Instant::from_ms(0);
        world.pump(Volume::ml(1), now);
        assert_eq!(world.reservoir().volume, Volume::nl(8_855_000));
        world.set_catheter(CatheterState::Leaking { fraction_ppm: 250_000 });
        world.pump(Volume::ml(1), now);
        assert_eq!(world.ledger().to_tissue.volume, Volume::nl(5_000_000 + 286_250));
        world.stall_motor(Instant::from_ms(1_000));
        assert_eq!(world.pump(Volume::ml(1), now), Fluid::default());
        assert!(world.mass_balance_holds());
    }
}
