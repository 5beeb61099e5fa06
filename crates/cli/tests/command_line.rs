//! Black-box tests of the command line itself: unknown commands and flags, help and exit codes.

mod common;

use common::itb;

/// A wrong command line: exit code 2, nothing on stdout, and exactly `expected` on stderr.
fn wrong(args: &[&str], expected: &str) {
    let output = itb(args);
    assert_eq!(output.status.code(), Some(2), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
    assert!(output.stdout.is_empty(), "{args:?} printed {}", String::from_utf8_lossy(&output.stdout));
    assert_eq!(String::from_utf8_lossy(&output.stderr), format!("{expected}\n"), "{args:?}");
}

#[test]
fn an_unknown_command_is_named_with_a_suggestion() {
    wrong(&["programme"], "itb: 'programme' is not a command of itb; did you mean 'program'? See itb --help");
    wrong(
        &["program", "--pump", "127.0.0.1:7410", "--key", "programmer.key", "interogate"],
        "itb: 'interogate' is not a command of itb program; did you mean 'interrogate'? See itb program --help",
    );
    wrong(&["calc", "refil"], "itb: 'refil' is not a command of itb calc; did you mean 'refill'? See itb calc --help");
    wrong(
        &["pump", "batery"],
        "itb: 'batery' is not a command of itb pump; did you mean 'battery'? See itb pump --help",
    );
    wrong(&["serv"], "itb: 'serv' is not a command of itb; did you mean 'user' or 'serve'? See itb --help");
    wrong(
        &["program", "--pump", "127.0.0.1:7410", "--key", "programmer.key"],
        "itb: a command is missing after 'itb program': see itb program --help for the commands",
    );
}

#[test]
fn a_wrong_flag_is_named_with_what_to_do() {
    let refill = ["calc", "refill", "--fill-ml", "20", "--concentration", "2000"];
    let with = |extra: &[&'static str]| refill.iter().copied().chain(extra.iter().copied()).collect::<Vec<_>>();
    wrong(
        &with(&["--dsoe", "400"]),
        "itb: --dsoe is not a flag of itb calc refill; did you mean --dose? See itb calc refill --help",
    );
    wrong(
        &with(&["--dose", "400", "--frobnicate"]),
        "itb: --frobnicate is not a flag of itb calc refill. See itb calc refill --help",
    );
    wrong(
        &["pump", "battery", "extra"],
        "itb: 'extra' is not expected by itb pump battery; it takes only flags. See itb pump battery --help",
    );
    wrong(
        &with(&["--dose", "400", "--dose", "500"]),
        "itb: --dose <MICROGRAMS_PER_DAY> was given more than once: give it once",
    );
    wrong(
        &["calc", "refill", "--concentration", "2000"],
        "itb: missing --fill-ml <ML> and --dose <MICROGRAMS_PER_DAY>: give them, or see itb calc refill --help",
    );
    wrong(&with(&["--dose"]), "itb: --dose <MICROGRAMS_PER_DAY> needs a value: give it, or see itb calc refill --help");
    wrong(
        &["pump", "provision", "--state", "/nonexistent/itb", "--catheter-cm", "abc"],
        "itb: --catheter-cm <CM>: 'abc' is not accepted; give a whole number",
    );
    wrong(
        &["pump", "run", "--state", "/nonexistent/itb", "--listen", "127.0.0.1:0", "--speed", "-3"],
        "itb: -3 is negative: itb pump run takes no negative values; give 0 or more",
    );
    wrong(
        &["calc", "titrate", "--current", "400", "--proposed", "500", "--origin", "spine"],
        "itb: --origin <ORIGIN>: 'spine' is not accepted; use one of: spinal, cerebral",
    );
}

#[test]
fn a_missing_command_shows_the_help_and_exits_2() {
    for args in [&[][..], &["calc"][..], &["pump"][..]] {
        let output = itb(args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(output.stdout.is_empty(), "{args:?}");
        assert!(String::from_utf8_lossy(&output.stderr).contains("Usage: itb"), "{args:?}");
    }
    // Asked for, help goes to stdout and exits 0, with the exit codes.
    for args in [&["--help"][..], &["calc", "refill", "--help"][..], &["pump", "provision", "--help"][..]] {
        let output = itb(args);
        assert_eq!(output.status.code(), Some(0), "{args:?}");
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(text.contains("Exit codes:") && text.contains("  2  the command line is wrong"), "{args:?}: {text}");
    }
}

/// The `code meaning` pairs of the "Exit codes:" block of a command's help.
fn exit_codes_in_help(args: &[&str]) -> Vec<(String, String)> {
    let output = itb(args);
    let help = String::from_utf8_lossy(&output.stdout).into_owned();
    let block = help.split("Exit codes:\n").nth(1).expect("an exit codes block");
    let mut codes: Vec<(String, String)> = Vec::new();
    for line in block.lines().take_while(|line| line.starts_with("  ")) {
        let line = line.trim();
        match line.split_once("  ") {
            Some((code, meaning)) if code.chars().all(|c| c.is_ascii_digit()) => {
                codes.push((code.to_owned(), meaning.trim().to_owned()));
            }
            _ => {
                if let Some((_, meaning)) = codes.last_mut() {
                    meaning.push(' ');
                    meaning.push_str(line);
                }
            }
        }
    }
    codes
}

#[test]
fn the_readme_lists_the_exit_codes_the_help_gives() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
        .expect("README")
        .replace('`', "");
    for args in [&["calc", "refill", "--help"][..], &["pump", "battery", "--help"][..], &["program", "--help"][..]] {
        let codes = exit_codes_in_help(args);
        assert!(codes.len() >= 3, "{args:?}: {codes:?}");
        for (code, meaning) in codes {
            assert!(readme.contains(&format!("| {code} | {meaning} |")), "{args:?}: '{code}  {meaning}' not in README");
        }
    }
}
