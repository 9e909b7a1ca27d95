//! `--help` teaches: every command's long help carries its whole description, and its
//! line in `airlock --help` is the one-line summary.

use crate::common::TestContext;

/// The commands `airlock --help` lists, with their summary lines.
fn commands(t: &TestContext) -> Vec<(String, String)> {
    let top = t.run(&["--help"]).ok().stdout;
    let list = top.split("Commands:\n").nth(1).expect("a command list").split("\n\n").next().unwrap();
    list.lines()
        .filter_map(|l| {
            let l = l.trim();
            let (name, summary) = l.split_once(' ')?;
            Some((name.to_string(), summary.trim().to_string()))
        })
        .filter(|(name, _)| name != "help")
        .collect()
}

#[test]
fn every_command_help_is_its_whole_description_and_its_summary_is_one_line() {
    let t = TestContext::new();
    let commands = commands(&t);
    assert!(commands.len() >= 10, "{commands:?}");
    for (name, summary) in commands {
        let short = t.run(&[&name, "-h"]).ok().stdout;
        let long = t.run(&[&name, "--help"]).ok().stdout;
        assert_eq!(short.lines().next(), Some(summary.as_str()), "`airlock {name} -h` does not start with its summary");
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
