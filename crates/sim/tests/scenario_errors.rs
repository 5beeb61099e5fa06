//! Every scenario error names the line of the offending entry and says what to write instead;
//! actions out of time order, overfills and implausible values are refused at load.

use itb_sim::Scenario;

/// A valid scenario of 12 lines; the actions follow from line 13.
const HEAD: &str = "name = \"errors\"
profile = \"synchromed-ii-20\"
start = \"2026-11-25T10:00:00Z\"
until = \"30 day\"

[implant]
catheter_cm = 50
fill = \"20 mL\"
concentration = \"2000 micrograms/mL\"
prescription = { mode = \"simple_continuous\", dose = \"400 micrograms/day\" }
prime = true

";

fn with_actions(actions: &str) -> String {
    format!("{HEAD}{actions}")
}

fn error(text: &str) -> String {
    Scenario::from_toml(text).map(|_| ()).expect_err("refused").to_string()
}

fn refill(at: &str, volume: &str) -> String {
    format!(
        "[[actions]]\nat = \"{at}\"\naction = \"refill\"\nvolume = \"{volume}\"\nconcentration = \"2000 micrograms/mL\"\n\n"
    )
}

#[test]
fn the_head_alone_is_valid() {
    let scenario = Scenario::from_toml(HEAD).expect("valid");
    assert!(scenario.actions.is_empty());
}

#[test]
fn a_bad_quantity_in_the_third_action_names_its_line() {
    // Actions start at lines 13, 19 and 25; the third's volume is on line 28.
    let text = with_actions(&(refill("5 day", "2 mL") + &refill("10 day", "2 mL") + &refill("15 day", "2 mcL")));
    let message = error(&text);
    assert!(message.starts_with("line 28: actions[3].volume: "), "{message}");
    assert!(message.contains("'mcL'") && message.contains("expected mL"), "{message}");
}

#[test]
fn a_missing_field_names_the_entry_and_says_what_to_write() {
    let text = with_actions("[[actions]]\nat = \"5 day\"\naction = \"refill\"\nvolume = \"20 mL\"\n");
    let message = error(&text);
    assert!(message.starts_with("line 13: actions[1].concentration: "), "{message}");
    assert!(message.contains("concentration = \"2000 micrograms/mL\""), "{message}");
}

#[test]
fn actions_out_of_time_order_are_refused_not_sorted() {
    let text = with_actions(&(refill("20 day", "20 mL") + &refill("10 day", "20 mL")));
    let message = error(&text);
    // The second entry (line 19; its `at` on line 20) comes before the first (line 13).
    assert!(message.starts_with("line 20: actions[2].at: "), "{message}");
    assert!(message.contains("before actions[1] (line 13)"), "{message}");
    assert!(message.contains("time order"), "{message}");
}

#[test]
fn actions_at_the_same_instant_keep_their_file_order() {
    let text = with_actions(
        "[[actions]]\nat = \"5 day\"\naction = \"interrogate\"\n\n[[actions]]\nat = \"5 day\"\naction = \"stop\"\n",
    );
    let scenario = Scenario::from_toml(&text).expect("valid");
    assert_eq!(scenario.actions.len(), 2);
    assert_eq!(scenario.actions[0].action, itb_sim::scenario::Action::Interrogate);
    assert_eq!(scenario.actions[1].action, itb_sim::scenario::Action::Stop);
}

#[test]
fn repeated_presses_interleave_with_later_entries_in_time_order() {
    let text = with_actions(
        "[[actions]]\nat = \"1 day\"\naction = \"interrogate\"\ncount = 3\nrepeat_every = \"2 day\"\n\n\
         [[actions]]\nat = \"2 day\"\naction = \"stop\"\n",
    );
    let scenario = Scenario::from_toml(&text).expect("valid");
    let days: Vec<i64> =
        scenario.actions.iter().map(|a| (a.at.as_ms() - scenario.start.as_ms()) / 86_400_000).collect();
    assert_eq!(days, vec![1, 2, 3, 5]);
}

#[test]
fn an_action_after_the_end_is_refused() {
    let text = with_actions(&refill("31 day", "20 mL"));
    let message = error(&text);
    assert!(message.starts_with("line 14: actions[1].at: "), "{message}");
    assert!(message.contains("after the scenario ends"), "{message}");
    let repeated =
        with_actions("[[actions]]\nat = \"1 day\"\naction = \"interrogate\"\ncount = 5\nrepeat_every = \"10 day\"\n");
    let message = error(&repeated);
    assert!(message.starts_with("line 16: actions[1].count: "), "{message}");
    assert!(message.contains("count = 3 at most"), "{message}");
}

#[test]
fn a_refill_above_the_reservoir_is_refused_with_the_capacity() {
    let text = with_actions(&(refill("5 day", "20 mL") + &refill("10 day", "25 mL")));
    let message = error(&text);
    assert!(message.starts_with("line 22: actions[2].volume: "), "{message}");
    assert!(message.contains("20 mL"), "{message}");
    assert!(message.contains("25 mL"), "{message}");
    let implant = HEAD.replace("fill = \"20 mL\"", "fill = \"21 mL\"");
    let message = error(&implant);
    assert!(message.starts_with("line 8: implant.fill: "), "{message}");
    assert!(message.contains("20 mL"), "{message}");
}

#[test]
fn an_implausible_catheter_length_is_refused_with_the_range() {
    for length in ["5", "400", "0"] {
        let text = HEAD.replace("catheter_cm = 50", &format!("catheter_cm = {length}"));
        let message = error(&text);
        assert!(message.starts_with("line 7: implant.catheter_cm: "), "{message}");
        assert!(message.contains("10 to 150 cm"), "{message}");
    }
    for length in ["10", "150"] {
        let text = HEAD.replace("catheter_cm = 50", &format!("catheter_cm = {length}"));
        assert!(Scenario::from_toml(&text).is_ok(), "{length} cm");
    }
}

#[test]
fn an_implausible_rate_error_is_refused_with_the_range() {
    let text = HEAD.replace("until = \"30 day\"", "until = \"30 day\"\nrate_error_percent = \"+150\"");
    let message = error(&text);
    assert!(message.starts_with("line 5: rate_error_percent: "), "{message}");
    assert!(message.contains("-100 % to +100 %"), "{message}");
    let action = with_actions("[[actions]]\nat = \"5 day\"\naction = \"rate_error\"\npercent = \"-101\"\n");
    let message = error(&action);
    assert!(message.starts_with("line 16: actions[1].percent: "), "{message}");
    assert!(message.contains("-100 % to +100 %"), "{message}");
    let fine = with_actions("[[actions]]\nat = \"5 day\"\naction = \"rate_error\"\npercent = \"+14.5\"\n");
    assert!(Scenario::from_toml(&fine).is_ok());
}

#[test]
fn an_implant_the_pump_would_refuse_names_its_line() {
    // 5000 micrograms/day of 50 micrograms/mL is 100 mL/day: above the pump's 24 mL/day.
    let text =
        HEAD.replace("2000 micrograms/mL", "50 micrograms/mL").replace("400 micrograms/day", "5000 micrograms/day");
    let message = error(&text);
    assert!(message.starts_with("line 10: implant.prescription: "), "{message}");
    assert!(message.contains("24 mL/day"), "{message}");
    let weak = HEAD.replace("2000 micrograms/mL", "5 micrograms/mL");
    let message = error(&weak);
    assert!(message.starts_with("line 9: implant.concentration: "), "{message}");
}

#[test]
fn syntax_and_shape_errors_name_their_line() {
    let typo = HEAD.replace("catheter_cm", "catheter_length");
    let message = error(&typo);
    assert!(message.contains("line 7"), "{message}");
    let prescription = HEAD.replace("400 micrograms/day", "0.4 mg/day");
    let message = error(&prescription);
    assert!(message.starts_with("line 10: implant.prescription"), "{message}");
    assert!(message.contains("milligrams"), "{message}");
    let unknown = with_actions("[[actions]]\nat = \"5 day\"\naction = \"refil\"\n");
    let message = error(&unknown);
    assert!(message.starts_with("line 15: actions[1].action: "), "{message}");
    assert!(message.contains("refill"), "{message}");
}
