//! `--help` teaches: every command's long help carries its whole description, and its
//! line in `airlock --help` is the one-line summary.

use crate::common::TestContext;

/// The commands `airlock --help` lists, with their summary lines.
fn commands(t: &TestContext) -> Vec<(String, String)> {
    let top = t.run(&["--help"]).ok().stdout;
    let list = top.split("Commands:\n").nth(1).expect("a command list").split("\n\n").next().unwrap();
    // A command's line is indented two spaces; a summary wrapped onto the next line is
    // indented further, and belongs to the command above it.
    let mut commands: Vec<(String, String)> = Vec::new();
    for l in list.lines() {
        if l.starts_with("   ") {
            let last = commands.last_mut().expect("a continuation after a command");
            last.1 = format!("{} {}", last.1, l.trim());
        } else if let Some((name, summary)) = l.trim().split_once(' ') {
            commands.push((name.to_string(), summary.trim().to_string()));
        }
    }
    commands.into_iter().filter(|(name, _)| name != "help").collect()
}

#[test]
fn every_command_help_is_its_whole_description_and_its_summary_is_one_line() {
    let t = TestContext::new();
    let commands = commands(&t);
    assert!(commands.len() >= 10, "{commands:?}");
    for (name, summary) in commands {
        let short = t.run(&[&name, "-h"]).ok().stdout;
        let long = t.run(&[&name, "--help"]).ok().stdout;
        let first = short.split("\n\n").next().unwrap().split_whitespace().collect::<Vec<_>>().join(" ");
        assert_eq!(first, summary, "`airlock {name} -h` does not start with its summary");
        if name == "key" || name == "trust" {
            continue; // their subcommands carry the descriptions
        }
        let about = |help: &str| help.split("\nUsage:").next().unwrap().trim().to_string();
        assert!(
            about(&long).len() > about(&short).len() + 80,
            "`airlock {name} --help` says no more than its summary:\n{}",
            about(&long)
        );
    }
}
